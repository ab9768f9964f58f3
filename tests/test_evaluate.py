"""``evaluate``: variants of photos as people take them, one table, calibration."""

import json

import numpy as np
import pytest
from PIL import Image

from signdigits.cli import main
from signdigits.evaluate import FIXED_VARIANTS, FRAME_VARIANTS, VARIANTS, calibration, evaluate, format_table, variants
from signdigits.real_scenes import Frame
from signdigits.scenes import hand_mask

pytestmark = pytest.mark.timeout(300)


def test_every_variant_is_built(drawn_hand, tmp_path):
    photo, truth = drawn_hand
    Image.fromarray(photo).save(tmp_path / "frame.jpg")
    frame = Frame(tmp_path / "frame.jpg", ((35.0, 15.0, 65.0, 100.0),))
    samples = variants([photo, photo], [truth, truth], [3, 4], seed=1, real_frames=[frame])
    names = [s.variant for s in samples]
    assert set(names) == set(VARIANTS)
    assert names.count("plain") == 2 and names.count("no hand") == 1
    assert names.count("real webcam") == names.count("real webcam in grey") == 1
    assert {s.digit for s in samples if s.variant not in ("no hand", *FRAME_VARIANTS)} == {3, 4}
    grey = next(np.asarray(s.image) for s in samples if s.variant == "grey")
    assert grey.shape == photo.shape and (grey[..., 0] == grey[..., 2]).all()
    grey_frame = next(s for s in samples if s.variant == "real webcam in grey")
    assert grey_frame.image.shape == photo.shape[:2] and grey_frame.hands == frame.boxes
    webcam = next(s for s in samples if s.variant == "webcam")
    assert Image.open(__import__("io").BytesIO(webcam.image)).size == (640, 480)
    again = variants([photo, photo], [truth, truth], [3, 4], seed=1, real_frames=[frame])
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(samples, again))


def test_held_out_photos_are_the_backgrounds_and_the_scenes_without_a_hand(drawn_hand):
    """With real photos given, the busy scenes and the hand-less scenes are cut from them."""
    photo, truth = drawn_hand
    red = np.zeros((120, 160, 3), np.uint8)
    red[..., 0] = 255
    samples = variants([photo] * 6, [truth] * 6, [3] * 6, seed=1, real_photos=[red])
    for sample in samples:
        if sample.variant in ("busy", "no hand"):
            image = np.asarray(sample.image, np.float32)
            assert np.median(image[..., 1]) < 40 and image[..., 0].max() > 60, sample.variant


def test_further_draws_add_only_the_pictures_made_at_random(drawn_hand):
    photo, truth = drawn_hand
    one = variants([photo, photo], [truth, truth], [3, 4], seed=1)
    three = variants([photo, photo], [truth, truth], [3, 4], seed=1, draws=3)
    assert [s.variant for s in three[: len(one)]] == [s.variant for s in one]
    in_one, in_three = [s.variant for s in one], [s.variant for s in three]
    for variant in VARIANTS:
        draws = 1 if variant in FIXED_VARIANTS else 3
        assert in_three.count(variant) == draws * in_one.count(variant), variant
    far = [np.asarray(s.image) for s in three if s.variant == "far"]
    assert not np.array_equal(far[0], far[2])  # another draw: another position


def test_calibration_of_perfect_and_overconfident_answers():
    assert calibration([1.0, 1.0], [1, 1])[0] == pytest.approx(0.0)
    ece, bins = calibration([0.9] * 10, [1] * 5 + [0] * 5)
    assert ece == pytest.approx(0.4) and bins[0]["count"] == 10


def test_evaluate_on_a_few_real_photos(classifier, photo_paths):
    photos = [np.asarray(Image.open(p).convert("RGB").resize((100, 100))) for p in photo_paths[::400]]
    digits = [int(p.parent.name) for p in photo_paths[::400]]
    samples = variants(photos, [hand_mask(p) for p in photos], digits, seed=0)
    result = evaluate(classifier, samples)
    assert set(result["variants"]) == set(VARIANTS) - set(FRAME_VARIANTS)  # no frames given
    assert result["variants"]["plain"]["accuracy"] >= 0.75
    assert 0.0 <= result["ece"] <= 1.0 and result["temperature"] == classifier.temperature
    table = format_table(result)
    assert "| plain |" in table and "calibration error" in table


def test_evaluate_command_on_a_tiny_set(built_dataset, tmp_path, capsys):
    out = tmp_path / "evaluation.json"
    x_path = str(built_dataset / "x.npy")
    assert main(["evaluate", "--x", x_path, "--limit", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert "| webcam |" in printed.out and "test participants" in printed.err
    figures = json.loads(out.read_text())
    assert figures["variants"]["plain"]["images"] == 4
