"""Why did the model say that? Grad-CAM heatmaps and their overlay on the input picture.

Grad-CAM (Selvaraju et al., 2017) weighs each channel of the last convolutional block's
feature maps by the mean gradient of the chosen digit's log-probability with respect to
it; the weighted sum, kept where positive, shows which parts of the picture pushed the
model towards that digit. The feature maps are taken after the batch norm and ReLU that
follow the last Conv2D (a raw pre-normalisation conv output can have either sign and
often yields an empty map). Pure TensorFlow/NumPy/Pillow: the app and any other front end call this.
"""

import threading
import weakref

import matplotlib
import numpy as np
from PIL import Image

from signdigits import IMAGE_SIZE
from signdigits.backend import keras, tf
from signdigits.labels import digit_to_index

CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
#: Element-wise layers that belong to a conv block (their output is the block's feature map).
BLOCK_TYPES = (keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU)

# One gradient model per Keras model, built on first use and dropped with the model.
_grad_models: "weakref.WeakKeyDictionary[keras.Model, tuple]" = weakref.WeakKeyDictionary()
_grad_lock = threading.Lock()


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The model's last convolutional layer (found by type, not by name)."""
    convs = [layer for layer in model.layers if isinstance(layer, CONV_TYPES)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no convolutional layer to explain")
    return convs[-1]


def feature_layer(model: keras.Model) -> keras.layers.Layer:
    """The last conv layer, or the batch norm/activation right after it (its feature map)."""
    layers = list(model.layers)
    index = layers.index(last_conv_layer(model))
    while index + 1 < len(layers) and isinstance(layers[index + 1], BLOCK_TYPES):
        index += 1
    return layers[index]


def _grad_model(model: keras.Model):
    """``(keras.Model(input -> [feature map, probabilities]), traced gradient step)``, cached.

    Built under a lock: app sessions share one model, and Keras model construction is not
    thread-safe.
    """
    with _grad_lock:
        return _build_grad_model(model)


def _build_grad_model(model: keras.Model):
    if model not in _grad_models:
        features = feature_layer(model)
        both = keras.Model(model.inputs[0], [features.output, model.output])

        @tf.function(input_signature=[
            tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32), tf.TensorSpec([], tf.int32)
        ])
        def step(x, class_index):
            with tf.GradientTape() as tape:
                features, probabilities = both(x, training=False)
                score = tf.math.log(probabilities[:, class_index] + 1e-9)
            return features, tape.gradient(score, features)

        _grad_models[model] = (both, step)
    return _grad_models[model]


def grad_cam(classifier, model_input: np.ndarray, digit: int) -> np.ndarray:
    """Grad-CAM of ``digit`` for a preprocessed (64, 64) input: a (64, 64) map in [0, 1].

    ``classifier`` is a :class:`signdigits.classifier.Classifier` (its ``model`` and
    ``index_to_digit`` are used). An all-zero map means nothing pushed towards ``digit``.
    """
    _, step = _grad_model(classifier.model)
    class_index = digit_to_index(digit, classifier.index_to_digit)
    x = tf.constant(np.asarray(model_input, np.float32).reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1))
    features, gradients = step(x, tf.constant(class_index, tf.int32))
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # (1, channels)
    cam = tf.nn.relu(tf.reduce_sum(features * weights[:, None, None, :], axis=-1))[0].numpy()
    heatmap = Image.fromarray(np.nan_to_num(cam).astype(np.float32), mode="F")
    heatmap = np.asarray(heatmap.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))
    peak = float(heatmap.max())
    if peak <= 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    return np.clip(heatmap / peak, 0.0, 1.0).astype(np.float32)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45,
            colormap: str = "jet") -> Image.Image:
    """``image`` (any mode/size) with ``heatmap`` (values in [0, 1]) blended on top, RGB."""
    base = image.convert("RGB")
    heat = Image.fromarray(np.clip(np.asarray(heatmap, np.float32), 0, 1), mode="F")
    heat = np.asarray(heat.resize(base.size, Image.Resampling.BILINEAR), np.float32)
    colored = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3]
    colored = Image.fromarray((colored * 255).astype(np.uint8), mode="RGB")
    return Image.blend(base, colored, alpha)
