"""``python -m signdigits bench``: runs, prints its table, writes the JSON (no timing asserts)."""

import json

import pytest

from signdigits import bench
from signdigits import classifier as classifier_module

KEYS = ("single_ms_median", "single_ms_p95", "no_localizer_ms_median", "localizer_cost",
        "predict_ms_median", "speedup", "batch_images_per_s", "peak_rss_mb")  # fmt: skip


@pytest.mark.timeout(180)
def test_run_benchmark(classifier, tmp_path, monkeypatch):
    # reuse the session's bundled model rather than loading model.h5 again, and time fewer
    # repeats (300 + 60 by default): the figures are not asserted, only their presence
    monkeypatch.setattr(classifier_module, "Classifier", lambda path, localizer_path: classifier)
    time_ms = bench._time_ms
    monkeypatch.setattr(bench, "_time_ms", lambda function, repeats: time_ms(function, min(repeats, 20)))
    lines = []
    json_path = tmp_path / "bench.json"
    figures = bench.run_benchmark(images=50, json_path=json_path, out=lines.append)
    written = json.loads(json_path.read_text())
    for key in KEYS:
        assert isinstance(written[key], (int, float)) and written[key] > 0, key
        assert written[key] == pytest.approx(figures[key])
    assert written["batch_images"] == 50
    text = "\n".join(lines)
    assert lines[0].startswith("signdigits bench")
    for label in ("single image, median (ms)", "same without localizer", "speed-up over model.predict",
                  "batch of 50, images/s", "peak memory (MB)"):  # fmt: skip
        assert label in text


def test_sample_images_without_photos(tmp_path):
    for photos_dir in (None, tmp_path):  # none given, or a folder without images
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
