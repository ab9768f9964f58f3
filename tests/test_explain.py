"""Grad-CAM heatmaps and overlays (signdigits.explain)."""

import numpy as np
import pytest
from PIL import Image

from signdigits import IMAGE_SIZE, explain
from signdigits.preprocess import model_input_to_image, preprocess


def test_feature_layer_is_the_last_conv_block(classifier):
    conv = explain.last_conv_layer(classifier.model)
    assert isinstance(conv, explain.CONV_TYPES)
    later = classifier.model.layers[classifier.model.layers.index(conv) + 1:]
    assert not any(isinstance(layer, explain.CONV_TYPES) for layer in later)
    features = explain.feature_layer(classifier.model)
    assert features is conv or isinstance(features, explain.BLOCK_TYPES)
    assert features.output.shape[1:3] == conv.output.shape[1:3]


def test_grad_cam_of_a_real_photo_is_a_normalised_map(classifier, photo_paths):
    model_input = preprocess(photo_paths[0])
    digit = int(classifier.probabilities(model_input[None])[0].argmax())
    heatmap = explain.grad_cam(classifier, model_input, digit)
    assert heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    assert heatmap.std() > 0.01  # it points somewhere, not everywhere


@pytest.mark.parametrize("digit", range(10))
def test_grad_cam_for_every_digit_stays_in_range(classifier, digit):
    rng = np.random.default_rng(digit)
    model_input = rng.random((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    heatmap = explain.grad_cam(classifier, model_input, digit)
    assert heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert np.all(np.isfinite(heatmap)) and 0.0 <= heatmap.min() <= heatmap.max() <= 1.0


def test_grad_cam_of_a_blank_input_is_finite(classifier):
    heatmap = explain.grad_cam(classifier, np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32), 3)
    assert np.all(np.isfinite(heatmap)) and heatmap.max() <= 1.0


def test_grad_cam_refuses_a_digit_outside_0_to_9(classifier):
    with pytest.raises(ValueError):
        explain.grad_cam(classifier, np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32), 10)


def test_a_model_without_conv_layers_cannot_be_explained():
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="no convolutional layer"):
        explain.last_conv_layer(keras.Model(inputs, outputs))


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
