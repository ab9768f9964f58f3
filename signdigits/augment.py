"""Training material made on the fly, in TensorFlow: hand crops for the classifier and
whole scenes for the hand localizer, from the dataset's photos and their hand masks.

Everything is stateless and keyed by a seed pair; every random quantity has its own
stream, derived with ``tf.random.experimental.stateless_fold_in``, so a run (or a
resumed run) with the same seed sees exactly the same batches.

Crops (:func:`hand_crops`) imitate what the classifier is shown at run time: the square
around a found hand (:data:`signdigits.preprocess.CROP_SCALE` times its box), with the
box's error (shift and size jitter), any side (mirroring), angle (rotation), background
(the photo's own wall, a pasted-in background, or the canvas of a drawing), light and
camera (contrast, brightness, gamma, vignette, blur, low resolution, noise, occlusion).
Scenes (:func:`hand_scenes`) paste the hand anywhere in a frame, at 20-100 % of its
height, or draw it (filled or its outline), or leave it out, and give the hand's exact
box; views of real webcam frames (:func:`real_frames`) move their boxed hands with them.
A quarter of both are grey.

The crops use only operations XLA compiles (training compiles them); the scenes use
TensorFlow's image kernel, which is twice as fast there as the gathers compiled.
"""

import math

from signdigits import IMAGE_SIZE
from signdigits.backend import tf
from signdigits.preprocess import CROP_SCALE, LOCATOR_SIZE

# Crops: how far the localizer's box may be off, and the other variations.
CROP_ZOOM = 0.15  # log-scale jitter of the crop's size
CROP_SHIFT = 0.10  # jitter of its centre, as a share of its side
CROP_ASPECT = 0.08  # log-scale anisotropy (other hand shapes)
#: Share of crops whose box runs on down the forearm, as the localizer's box does where a
#: photo shows the arm, and by how much at most (a share of the hand's height).
ARM_IN_BOX_CHANCE, ARM_IN_BOX = 0.25, 0.6
ROTATION_DEGREES = 25.0
#: Widths of a drawn outline's line in a crop, pixels: a pen of 2-6 % of the hand's height.
PEN_PIXELS = (1, 2, 3)
# Shares of the crop's background: the photo's own wall, a pasted background, drawings.
OWN_WALL, PASTED, SILHOUETTE = 0.45, 0.4, 0.08  # the rest (0.07): outlines
# Scenes: hand box height as a share of the frame, empty frames, frames of a plain photo.
SCENE_MIN_HEIGHT, SCENE_MAX_HEIGHT = 0.2, 1.0
NO_HAND, PLAIN_PHOTO, DRAWN = 0.25, 0.15, 0.1
#: Half the drawn scenes are outlines, their line this many pixels wide (1-4 % of a hand
#: filling the frame, more of a smaller one).
SCENE_PEN_PIXELS = (2, 3, 5)
SCENE_ROTATION_DEGREES = 30.0
SCENE_STRETCH = 0.3  # log-scale anisotropy: photos of any aspect are squeezed to a square
ARM = 0.5  # share of hands whose forearm goes on past the photo's edge
GREY_SCENES = 0.25  # share of the localizer's scenes and frames shown grey
# Real frames: a view covers at least this share of the frame (and every hand), and a
# frame zoomed out into black borders fills down to 1 / FRAME_ZOOM_OUT of the view.
FRAME_CROP_LEAST, FRAME_ZOOM_OUT = 0.55, 1.4
ANTIALIAS_ZOOM = 0.75  # a view that shrinks its frame below this is blurred first
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's convert("L")
# Camera: shares of crops blurred (3x3 mean) or shot at half the resolution and scaled up.
BLUR_CHANCE, LOW_RES_CHANCE = 0.2, 0.15


def _stream(seed, salt):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), salt)


def _uniform(seed, salt, shape, low=-1.0, high=1.0):
    return tf.random.stateless_uniform(shape, seed=_stream(seed, salt), minval=low, maxval=high)


def _chance(seed, salt, n, probability):
    return _uniform(seed, salt, [n], 0.0, 1.0) < probability


def _warp(images, rows, output_size, fill_mode="NEAREST"):
    """Resample a (B, H, W, C) batch; ``rows`` (B, 6) map output pixels to input pixels:
    ``x_in = a0 x + a1 y + a2``, ``y_in = b0 x + b1 y + b2``."""
    transforms = tf.concat([rows, tf.zeros_like(rows[:, :2])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[output_size, output_size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode,
    )  # fmt: skip


def _sampled_warp(images, rows, output_size, fill_mode="NEAREST"):
    """:func:`_warp` (fill modes NEAREST and REFLECT) in plain gathers, which XLA compiles
    (it has no kernel for ``ImageProjectiveTransformV3``); the crops go through it,
    compiled in training."""
    height, width, channels = tf.shape(images)[1], tf.shape(images)[2], tf.shape(images)[3]
    fw, fh = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
    pixels = tf.cast(tf.range(output_size), tf.float32)
    r = rows[:, :, None, None]
    x = r[:, 0] * pixels[None, None, :] + r[:, 1] * pixels[None, :, None] + r[:, 2]
    y = r[:, 3] * pixels[None, None, :] + r[:, 4] * pixels[None, :, None] + r[:, 5]
    if fill_mode == "REFLECT":  # mirrored about the pixels' outer edges, as the kernel does
        def reflect(v, size):
            v = tf.math.floormod(v + 0.5, 2 * size) - 0.5
            return tf.where(v > size - 0.5, 2 * size - 1 - v, v)

        x, y = reflect(x, fw), reflect(y, fh)
    x, y = tf.clip_by_value(x, 0.0, fw - 1), tf.clip_by_value(y, 0.0, fh - 1)  # then the edge pixel
    flat = tf.reshape(images, [tf.shape(images)[0], -1, channels])

    def at(row, col):  # pixel (row, col) of each image, the last row and column continued
        index = (tf.cast(tf.minimum(row, fh - 1), tf.int32) * width
                 + tf.cast(tf.minimum(col, fw - 1), tf.int32))  # fmt: skip
        values = tf.gather(flat, tf.reshape(index, [tf.shape(images)[0], -1]), batch_dims=1)
        return tf.reshape(values, [-1, output_size, output_size, channels])

    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    return (1 - fy) * top + fy * bottom


def _inverse_rows(matrix, src_center, dst_center):
    """Warp rows for ``dst = dst_center + matrix @ (src - src_center)`` (matrix (B, 2, 2))."""
    inverse = tf.linalg.inv(matrix)
    offset = src_center - tf.linalg.matvec(inverse, dst_center)
    return tf.stack(
        [inverse[:, 0, 0], inverse[:, 0, 1], offset[:, 0],
         inverse[:, 1, 0], inverse[:, 1, 1], offset[:, 1]], axis=1,
    )  # fmt: skip


def _rotation(angle):
    cos, sin = tf.cos(angle), tf.sin(angle)
    return tf.stack([tf.stack([cos, -sin], -1), tf.stack([sin, cos], -1)], -2)


def _diag(x, y):
    zero = tf.zeros_like(x)
    return tf.stack([tf.stack([x, zero], -1), tf.stack([zero, y], -1)], -2)


def _box_center(boxes):
    """Box (x0, y0, x1, y1, pixel edges) -> its centre in pixel-centre coordinates."""
    return tf.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1) - 0.5


def _backgrounds(bank, seed, salt, n, size, warp=_warp):
    """``n`` random views (crop, zoom, mirror) of the (K, S, S, C) ``bank``, size x size."""
    index = tf.random.stateless_uniform([n], _stream(seed, salt), 0, tf.shape(bank)[0], tf.int32)
    source = tf.cast(tf.gather(bank, index), tf.float32)
    side = tf.cast(tf.shape(bank)[1], tf.float32)
    zoom = size / side * tf.exp(_uniform(seed, salt + 1, [n], -0.7, 0.7))
    flip = tf.where(_chance(seed, salt + 2, n, 0.5), -1.0, 1.0)
    shift = _uniform(seed, salt + 3, [n, 2]) * side / 2
    rows = _inverse_rows(_diag(flip * zoom, zoom), side / 2 + shift, tf.fill([n, 2], size / 2.0))
    return warp(source, rows, size, "REFLECT")


def _box_blur(images):
    """The 3x3 mean of a (B, H, W, C) batch, edges mirrored: sums of shifted copies, four
    times as fast as ``tf.nn.avg_pool2d`` on the scenes' three channels."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def _gray(rgb):
    return tf.reduce_sum(rgb * tf.constant(GRAY_WEIGHTS), axis=-1, keepdims=True)


def _outline(mask, width):
    """The band along the edge of a (B, H, W, 1) mask, ``width`` pixels wide."""
    grown = tf.nn.max_pool2d(mask, width, 1, "SAME")
    shrunk = -tf.nn.max_pool2d(-mask, width, 1, "SAME")
    return grown - shrunk


def _drawn_outline(mask, pens, seed, salt):
    """The outline of each (B, H, W, 1) mask as drawn with one of the ``pens`` (line
    widths in pixels), picked at random per mask."""
    pen = tf.random.stateless_uniform([tf.shape(mask)[0], 1, 1, 1], _stream(seed, salt), 0, len(pens), tf.int32)
    band = tf.zeros_like(mask)
    for index, width in enumerate(pens):
        band = tf.where(pen == index, _outline(mask, width), band)
    return band


def photometric(gray, seed, strength=1.0):
    """Other light and cameras on a (B, H, W, 1) batch of gray values in [0, 1]."""
    n, size = tf.shape(gray)[0], tf.shape(gray)[1]
    shape = [n, 1, 1, 1]
    mean = tf.reduce_mean(gray, axis=[1, 2, 3], keepdims=True)
    contrast = tf.exp(_uniform(seed, 10, shape) * 0.25 * strength)
    brightness = _uniform(seed, 11, shape) * 0.15 * strength
    gray = (gray - mean) * contrast + mean + brightness
    gamma = tf.exp(_uniform(seed, 12, shape) * 0.3 * strength)
    gray = tf.clip_by_value(gray, 0.0, 1.0) ** gamma

    coords = tf.linspace(-1.0, 1.0, size)
    radius2 = coords[None, :, None, None] ** 2 + coords[None, None, :, None] ** 2
    gray = gray * (1.0 - _uniform(seed, 13, shape, -0.15, 0.25) * strength * radius2 / 2.0)

    # a far-away or soft photo: blurred, or shot at half the resolution and scaled up
    blurred = _box_blur(gray)
    blur = tf.cast(_uniform(seed, 14, shape, 0.0, 1.0) < BLUR_CHANCE * strength, tf.float32)
    gray = blur * blurred + (1.0 - blur) * gray
    coarse = tf.image.resize(tf.nn.avg_pool2d(gray, 2, 2, "VALID"), [size, size])
    low_res = tf.cast(_uniform(seed, 15, shape, 0.0, 1.0) < LOW_RES_CHANCE * strength, tf.float32)
    gray = low_res * coarse + (1.0 - low_res) * gray

    sigma = _uniform(seed, 16, shape, 0.0, 0.04) * strength
    gray = gray + sigma * tf.random.stateless_normal(tf.shape(gray), seed=_stream(seed, 17))

    # random erasing: a patch of an eighth to a third of the side, on a tenth of the batch
    fsize = tf.cast(size, tf.float32)
    side = _uniform(seed, 18, shape, 0.12, 0.33) * fsize
    corner = _uniform(seed, 19, [n, 2], 0.0, 1.0) * (fsize - side[:, 0, 0])
    rows = tf.range(fsize)[None, :, None, None]
    cols = tf.range(fsize)[None, None, :, None]
    top, left = corner[:, 0, None, None, None], corner[:, 1, None, None, None]
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    erase = _uniform(seed, 20, shape, 0.0, 1.0) < 0.1 * strength
    return tf.clip_by_value(tf.where(inside & erase, mean, gray), 0.0, 1.0)


def hand_crops(photos, masks, boxes, bank, seed, strength=1.0, ramp=1.0):
    """Classifier inputs (B, 64, 64, 1), values ``1 - gray``, from a batch of photos.

    ``photos`` (B, H, W, 3) in [0, 255], ``masks`` (B, H, W, 1) in [0, 1], ``boxes``
    (B, 4) the hand's box in each photo, ``bank`` (K, S, S, 1) gray backgrounds in [0, 255].
    At ``strength`` 0 this is the plain crop of each photo around its box. ``ramp`` (a
    tensor in [0, 1]) scales ranges and the share of other backgrounds on top of it, so
    that training can start on easy crops (a curriculum).
    """
    n = tf.shape(photos)[0]
    mirror_chance = 0.5 if strength > 0 else 0.0
    strength = strength * tf.cast(ramp, tf.float32)
    arm = _uniform(seed, 21, [n], 0.0, ARM_IN_BOX) * (boxes[:, 3] - boxes[:, 1]) * strength
    arm = tf.where(_chance(seed, 22, n, ARM_IN_BOX_CHANCE), arm, 0.0)
    boxes = boxes + tf.stack([tf.zeros_like(arm)] * 3 + [arm], axis=1)
    side = CROP_SCALE * tf.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    side *= tf.exp(_uniform(seed, 1, [n]) * CROP_ZOOM * strength)
    center = _box_center(boxes) + _uniform(seed, 2, [n, 2]) * CROP_SHIFT * strength * side[:, None]
    angle = _uniform(seed, 3, [n]) * math.radians(ROTATION_DEGREES) * strength
    mirror = tf.where(_chance(seed, 4, n, mirror_chance), -1.0, 1.0)
    aspect = tf.exp(_uniform(seed, 5, [n]) * CROP_ASPECT * strength)
    scale = IMAGE_SIZE / side
    matrix = _rotation(angle) @ _diag(mirror * scale * aspect, scale / aspect)
    rows = _inverse_rows(matrix, center, tf.fill([n, 2], IMAGE_SIZE / 2.0 - 0.5))
    warped = _sampled_warp(tf.concat([tf.cast(photos, tf.float32), masks], -1), rows, IMAGE_SIZE)
    hand, alpha = _gray(warped[..., :3]) / 255.0, warped[..., 3:]

    mode = _uniform(seed, 6, [n, 1, 1, 1], 0.0, 1.0) * strength  # at 0: the photo's own wall
    background = _backgrounds(bank, seed, 30, n, IMAGE_SIZE, _sampled_warp) / 255.0
    pasted = alpha * hand + (1.0 - alpha) * background
    canvas = _uniform(seed, 7, [n, 1, 1, 1], 0.78, 1.0)
    ink = _uniform(seed, 8, [n, 1, 1, 1], 0.2, 0.8)
    solid = tf.cast(alpha > 0.5, tf.float32)
    silhouette = canvas + (ink - canvas) * solid
    outline = canvas + (ink - canvas) * _drawn_outline(solid, PEN_PIXELS, seed, 23)
    gray = tf.where(mode < OWN_WALL, hand,
                    tf.where(mode < OWN_WALL + PASTED, pasted,
                             tf.where(mode < OWN_WALL + PASTED + SILHOUETTE, silhouette, outline)))
    return 1.0 - photometric(gray, seed, strength)


def _camera(scenes, seed, salt):
    """Other light and cameras on RGB scenes (B, H, W, 3) in [0, 255]: white balance,
    exposure, blur, noise, and a grey picture now and then. Returns them in [0, 1]."""
    n = tf.shape(scenes)[0]
    scenes = scenes * tf.exp(_uniform(seed, salt, [n, 1, 1, 3]) * 0.12)
    scenes = scenes * tf.exp(_uniform(seed, salt + 1, [n, 1, 1, 1]) * 0.4)
    blur = _chance(seed, salt + 2, n, 0.3)[:, None, None, None]
    scenes = tf.where(blur, _box_blur(scenes), scenes)
    scenes += _uniform(seed, salt + 3, [n, 1, 1, 1], 0.0, 8.0) * tf.random.stateless_normal(
        tf.shape(scenes), seed=_stream(seed, salt + 4)
    )
    grey = _chance(seed, salt + 5, n, GREY_SCENES)[:, None, None, None]
    scenes = tf.where(grey, tf.tile(_gray(scenes), [1, 1, 1, 3]), scenes)
    return tf.clip_by_value(scenes, 0.0, 255.0) / 255.0


def real_frames(frames, targets, seed, n, size=LOCATOR_SIZE):
    """``n`` views of real frames (K, S, S, 3; uint8, squeezed to a square, S larger than
    ``size`` so that a view closer in stays sharp) whose hands' ``targets`` (K, H, 5) are
    known: ``(images (n, size, size, 3) in [0, 1], targets (n, H, 5))``.

    A view is a crop of the frame that keeps every hand whole, or the frame zoomed out
    into black borders, a mirror image or not, in other light (:func:`_camera`)."""
    index = tf.random.stateless_uniform([n], _stream(seed, 60), 0, tf.shape(frames)[0], tf.int32)
    images, targets = tf.cast(tf.gather(frames, index), tf.float32), tf.gather(targets, index)
    side = tf.cast(tf.shape(frames)[1], tf.float32)
    present = targets[..., 4] > 0.5
    lowest = lambda v: tf.reduce_min(tf.where(present, v, 1.0), axis=1)  # noqa: E731
    highest = lambda v: tf.reduce_max(tf.where(present, v, 0.0), axis=1)  # noqa: E731
    x0, y0, x1, y1 = (lowest(targets[..., 0]), lowest(targets[..., 1]),
                      highest(targets[..., 2]), highest(targets[..., 3]))  # fmt: skip
    # the view's side as a share of the frame: at least every hand, at most FRAME_ZOOM_OUT
    least = tf.math.log(tf.clip_by_value(tf.maximum(x1 - x0, y1 - y0), FRAME_CROP_LEAST, 1.0))
    view = tf.exp(least + _uniform(seed, 61, [n], 0.0, 1.0) * (math.log(FRAME_ZOOM_OUT) - least))

    def origin(low, high, salt):  # where the view starts: every hand inside it
        start = tf.maximum(high - view, tf.minimum(0.0, 1.0 - view))
        end = tf.maximum(start, tf.minimum(low, tf.maximum(0.0, 1.0 - view)))
        return start + _uniform(seed, salt, [n], 0.0, 1.0) * (end - start)

    ox, oy = origin(x0, x1, 62), origin(y0, y1, 63)
    flip = _chance(seed, 64, n, 0.5)
    sign = tf.where(flip, -1.0, 1.0)
    zoom = size / (side * view)  # output pixels per frame pixel
    # shrunk by a quarter or more: blurred first, as a picture squeezed to the localizer's input is
    images = tf.where((zoom < ANTIALIAS_ZOOM)[:, None, None, None], _box_blur(images), images)
    rows = _inverse_rows(_diag(sign * zoom, zoom), tf.stack([ox + view / 2, oy + view / 2], 1) * side - 0.5,
                         tf.fill([n, 2], size / 2.0 - 0.5))  # fmt: skip
    images = _warp(images, rows, size, "CONSTANT")
    bx0, bx1 = (targets[..., 0] - ox[:, None]) / view[:, None], (targets[..., 2] - ox[:, None]) / view[:, None]
    by0, by1 = (targets[..., 1] - oy[:, None]) / view[:, None], (targets[..., 3] - oy[:, None]) / view[:, None]
    flipped = flip[:, None]
    bx0, bx1 = tf.where(flipped, 1.0 - bx1, bx0), tf.where(flipped, 1.0 - bx0, bx1)
    boxes = tf.stack([bx0, by0, bx1, by1, targets[..., 4]], axis=-1)
    return _camera(images, seed, 65), tf.where(present[..., None], boxes, 0.0)


def hand_scenes(photos, masks, boxes, bank, seed, size=LOCATOR_SIZE):
    """Localizer training scenes: ``(images (B, size, size, 3) in [0, 1], targets (B, 5))``.

    A target is the hand's box ``x0, y0, x1, y1`` as shares of the frame, then 1 where a
    hand is in the frame (0: an empty scene, whose box is ignored). ``bank`` holds RGB
    backgrounds (K, S, S, 3) in [0, 255].
    """
    n = tf.shape(photos)[0]
    fsize = float(size)
    box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    height = tf.exp(_uniform(seed, 1, [n], math.log(SCENE_MIN_HEIGHT), math.log(SCENE_MAX_HEIGHT)))
    plain = _chance(seed, 2, n, PLAIN_PHOTO)
    height = tf.where(plain, _uniform(seed, 3, [n], 0.55, 1.0), height)
    scale = height * fsize / box_h
    angle = _uniform(seed, 4, [n]) * math.radians(SCENE_ROTATION_DEGREES)
    mirror = tf.where(_chance(seed, 5, n, 0.5), -1.0, 1.0)
    stretch = tf.exp(_uniform(seed, 6, [n]) * SCENE_STRETCH)
    matrix = _diag(stretch, 1.0 / stretch) @ _rotation(angle) @ _diag(mirror * scale, scale)
    # where the box's centre lands: anywhere that keeps most of the hand in the frame
    half = 0.5 * tf.abs(matrix) @ tf.stack([box_w, box_h], 1)[..., None]
    half = tf.minimum(half[..., 0], fsize / 2)
    target = half + _uniform(seed, 7, [n, 2], 0.0, 1.0) * (fsize - 2 * half)
    rows = _inverse_rows(matrix, _box_center(boxes), target - 0.5)
    photos = tf.cast(photos, tf.float32)
    extended = _warp(tf.concat([photos, masks], -1), rows, size)
    inside = _warp(masks, rows, size, "CONSTANT")
    hand = extended[..., :3]
    alpha = tf.where(_chance(seed, 8, n, ARM)[:, None, None, None], extended[..., 3:], inside)

    background = _backgrounds(bank, seed, 40, n, size)
    scene = alpha * hand + (1.0 - alpha) * background
    scene = tf.where(plain[:, None, None, None], hand, scene)
    drawn = _chance(seed, 9, n, DRAWN)[:, None, None, None]
    canvas = _uniform(seed, 10, [n, 1, 1, 3], 200.0, 255.0)
    ink = _uniform(seed, 11, [n, 1, 1, 3], 60.0, 230.0)
    solid = tf.cast(inside > 0.5, tf.float32)
    outline = _drawn_outline(solid, SCENE_PEN_PIXELS, seed, 19)
    inked = tf.where(_chance(seed, 20, n, 0.5)[:, None, None, None], outline, solid)
    scene = tf.where(drawn, canvas + (ink - canvas) * inked, scene)
    empty = _chance(seed, 12, n, NO_HAND)
    scene = _camera(tf.where(empty[:, None, None, None], background, scene), seed, 13)

    present = inside > 0.5
    cols = tf.reduce_any(present, axis=[1, 3])
    rows_any = tf.reduce_any(present, axis=[2, 3])
    found = tf.reduce_any(cols, axis=1) & ~empty

    def extent(any_line):
        first = tf.argmax(tf.cast(any_line, tf.int32), axis=1)
        last = size - tf.argmax(tf.cast(any_line[:, ::-1], tf.int32), axis=1)
        return tf.cast(first, tf.float32) / fsize, tf.cast(last, tf.float32) / fsize

    x0, x1 = extent(cols)
    y0, y1 = extent(rows_any)
    targets = tf.stack([x0, y0, x1, y1, tf.cast(found, tf.float32)], axis=1)
    return scene, targets
