"""Training-time augmentation that imitates other people and other photos.

Everything is stateless and keyed by a seed pair, so a run (or a resumed run) with the
same seed sees exactly the same augmented batches.

Geometry: rotation, zoom, anisotropic scale, shear and shift in one affine warp (hands
of other sizes, held at other angles and places). Photometry: contrast, brightness and
gamma (other skin tones, lights and exposures), a vignette of random strength (other
lamps), blur and noise (other cameras), and a random erased patch (occlusions, rings,
sleeves).
"""

import math

from signdigits import IMAGE_SIZE
from signdigits.backend import tf


def _salted(seed, salt):
    return tf.convert_to_tensor(seed, dtype=tf.int32) + tf.constant([0, salt], dtype=tf.int32)


def _uniform(seed, shape, low, high, salt):
    return tf.random.stateless_uniform(shape, seed=_salted(seed, salt), minval=low, maxval=high)


def random_affine(images, seed, strength=1.0):
    """Warp each image of a (B, 64, 64, 1) batch by its own random affine transform."""
    n = tf.shape(images)[0]
    angle = _uniform(seed, [n], -1.0, 1.0, 1) * math.radians(15) * strength
    zoom = tf.exp(_uniform(seed, [n], -1.0, 1.0, 2) * 0.15 * strength)
    aspect = tf.exp(_uniform(seed, [n], -1.0, 1.0, 3) * 0.08 * strength)
    shear = _uniform(seed, [n], -1.0, 1.0, 4) * 0.1 * strength
    shift = _uniform(seed, [n, 2], -1.0, 1.0, 5) * 0.1 * IMAGE_SIZE * strength
    sx, sy = zoom * aspect, zoom / aspect
    cos, sin = tf.cos(angle), tf.sin(angle)
    # forward map A = R(angle) @ Shear @ diag(sx, sy); the op needs output -> input, A^-1
    a00, a01 = cos * sx, (cos * shear - sin) * sy
    a10, a11 = sin * sx, (sin * shear + cos) * sy
    det = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    center = (IMAGE_SIZE - 1) / 2.0
    ox, oy = center + shift[:, 0], center + shift[:, 1]
    transforms = tf.stack(
        [
            i00, i01, center - i00 * ox - i01 * oy,
            i10, i11, center - i10 * ox - i11 * oy,
            tf.zeros_like(i00), tf.zeros_like(i00),
        ],
        axis=1,
    )  # fmt: skip
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=[IMAGE_SIZE, IMAGE_SIZE],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


def random_photometric(images, seed, strength=1.0):
    """Random contrast, brightness, gamma, vignette, blur, noise and erasing (values 1 - gray)."""
    n = tf.shape(images)[0]
    gray = 1.0 - images
    mean = tf.reduce_mean(gray, axis=[1, 2, 3], keepdims=True)
    contrast = tf.exp(_uniform(seed, [n, 1, 1, 1], -1.0, 1.0, 10) * 0.35 * strength)
    brightness = _uniform(seed, [n, 1, 1, 1], -1.0, 1.0, 11) * 0.15 * strength
    gray = (gray - mean) * contrast + mean + brightness
    gamma = tf.exp(_uniform(seed, [n, 1, 1, 1], -1.0, 1.0, 12) * 0.4 * strength)
    gray = tf.clip_by_value(gray, 0.0, 1.0) ** gamma

    coords = (tf.range(IMAGE_SIZE, dtype=tf.float32) - (IMAGE_SIZE - 1) / 2.0) / (IMAGE_SIZE / 2.0)
    radius2 = coords[None, :, None, None] ** 2 + coords[None, None, :, None] ** 2
    vignette = _uniform(seed, [n, 1, 1, 1], -0.15, 0.25, 13) * strength
    gray = gray * (1.0 - vignette * radius2 / 2.0)

    blurred = tf.nn.avg_pool2d(gray, 3, 1, "SAME")
    blur = tf.cast(_uniform(seed, [n, 1, 1, 1], 0.0, 1.0, 14) < 0.3 * strength, tf.float32)
    gray = blur * blurred + (1.0 - blur) * gray

    sigma = _uniform(seed, [n, 1, 1, 1], 0.0, 0.04, 15) * strength
    gray = gray + sigma * tf.random.stateless_normal(tf.shape(gray), seed=_salted(seed, 16))

    # random erasing: a patch of 8-20 px, filled with the image mean, on a third of the batch
    size = _uniform(seed, [n, 1, 1, 1], 8.0, 20.0, 17)
    corner = _uniform(seed, [n, 2], 0.0, 1.0, 18) * (IMAGE_SIZE - size[:, 0, 0])
    rows = tf.range(IMAGE_SIZE, dtype=tf.float32)[None, :, None, None]
    cols = tf.range(IMAGE_SIZE, dtype=tf.float32)[None, None, :, None]
    top, left = corner[:, 0, None, None, None], corner[:, 1, None, None, None]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    erase = _uniform(seed, [n, 1, 1, 1], 0.0, 1.0, 19) < 0.33 * strength
    gray = tf.where(inside & erase, mean, gray)
    return 1.0 - tf.clip_by_value(gray, 0.0, 1.0)


def augment(images, seed, strength=1.0):
    """Geometric then photometric augmentation of a (B, 64, 64, 1) batch."""
    seed = tf.convert_to_tensor(seed, dtype=tf.int32)
    return random_photometric(random_affine(images, seed, strength), seed, strength)
