"""Occlusion-sensitivity maps and overlays (signdigits.explain)."""

import numpy as np
import pytest
from PIL import Image

from signdigits import IMAGE_SIZE, explain
from signdigits.preprocess import model_input_to_image


def test_saliency_of_a_real_photo_points_at_the_hand(classifier, photo_paths):
    reading = classifier.find_hand(photo_paths[0])
    digit = int(classifier.probabilities(reading.model_input[None])[0].argmax())
    heatmap = explain.saliency(classifier, reading.model_input, digit)
    assert heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    assert heatmap.std() > 0.01  # it points somewhere, not everywhere
    # the crop's centre (the hand) matters more than its corners (the background)
    centre = heatmap[16:48, 16:48].mean()
    corners = np.concatenate([heatmap[:8, :8], heatmap[:8, -8:], heatmap[-8:, :8], heatmap[-8:, -8:]])
    assert centre > corners.mean()


@pytest.mark.parametrize("digit", range(10))
def test_saliency_for_every_digit_stays_in_range(classifier, digit):
    rng = np.random.default_rng(digit)
    model_input = rng.random((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    heatmap = explain.saliency(classifier, model_input, digit)
    assert heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert np.all(np.isfinite(heatmap)) and 0.0 <= heatmap.min() <= heatmap.max() <= 1.0


def test_saliency_of_a_blank_input_is_all_zero(classifier):
    heatmap = explain.saliency(classifier, np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32), 3)
    assert not heatmap.any()  # covering a blank picture with its own background changes nothing


def test_saliency_refuses_a_digit_outside_0_to_9(classifier):
    with pytest.raises(ValueError):
        explain.saliency(classifier, np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32), 10)


def test_overlay_keeps_the_image_size_and_blends():
    gray = model_input_to_image(np.full((IMAGE_SIZE, IMAGE_SIZE), 0.5, np.float32))
    picture = gray.resize((192, 192))
    heatmap = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    heatmap[:32] = 1.0
    blended = explain.overlay(picture, heatmap)
    assert blended.size == (192, 192) and blended.mode == "RGB"
    top, bottom = np.asarray(blended)[10, 96], np.asarray(blended)[180, 96]
    assert not np.array_equal(top, bottom)  # hot and cold halves are coloured differently
    unchanged = explain.overlay(picture, heatmap, alpha=0.0)
    assert np.array_equal(np.asarray(unchanged), np.asarray(picture.convert("RGB")))


def test_overlay_accepts_rgba_pictures():
    picture = Image.new("RGBA", (50, 80), (200, 150, 120, 128))
    blended = explain.overlay(picture, np.ones((IMAGE_SIZE, IMAGE_SIZE)))
    assert blended.size == (50, 80) and blended.mode == "RGB"
