"""``python -m signdigits bench``: runs, prints its table, writes the JSON (no timing asserts)."""

import json

import pytest

from signdigits import bench
from signdigits.pictures import EXAMPLES_DIR


@pytest.mark.timeout(300)
def test_run_benchmark_measures_both_runtimes(tmp_path):
    # fewer repeats than the 300 by default: the figures are not asserted, only their presence
    lines = []
    json_path = tmp_path / "bench.json"
    figures = bench.run_benchmark(images=50, json_path=json_path, out=lines.append, repeats=20)
    written = json.loads(json_path.read_text())
    for runtime in (bench.BASELINE, bench.SERVING):
        for key, *_ in bench.MEASURES:
            assert isinstance(written[runtime][key], (int, float)) and written[runtime][key] > 0, key
            assert written[runtime][key] == pytest.approx(figures[runtime][key])
        assert written[runtime]["batch_images"] == 50
    assert set(written["gain"]) == {key for key, *_ in bench.MEASURES}
    text = "\n".join(lines)
    assert lines[0].startswith("signdigits bench") and "keras" in lines[1] and "litert" in lines[1]
    for _, label, *_ in bench.MEASURES:
        assert label in text


def test_sample_images_default_to_the_example_photos():
    images, source = bench.sample_images(25)
    examples = [path.read_bytes() for path in sorted(EXAMPLES_DIR.glob("*.jpg"))]
    assert len(examples) == 10 and source == f"photos from {EXAMPLES_DIR}"
    assert images == (examples * 3)[:25]


def test_sample_images_without_photos(tmp_path):
    for photos_dir in (tmp_path, tmp_path / "missing"):  # a folder without images, or none there
        images, source = bench.sample_images(70, photos_dir)
        assert len(images) == 70 and source == "generated 100x100 JPEGs"
        assert all(image[:2] == b"\xff\xd8" for image in images)


def test_sample_images_from_a_folder_of_photos(tmp_path):
    (tmp_path / "3").mkdir()
    for i, name in enumerate(["3/a.JPG", "b.png", "notes.txt"]):
        (tmp_path / name).write_bytes(bytes([i]) * 10)
    images, source = bench.sample_images(5, tmp_path)
    assert source == f"photos from {tmp_path}"
    assert images == [b"\0" * 10, b"\1" * 10] * 2 + [b"\0" * 10]  # cycled, the text file left out
