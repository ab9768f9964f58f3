"""Hands cut out of the training photos, backgrounds, and scenes made of the two.

The dataset's photos show one hand in front of a plain light wall, so the hand is told
apart by its colour: its chroma (Cb, Cr) lies far from the chroma of the photo's border.
Pasting the cut-out hands onto other backgrounds at other sizes, places and angles
("copy-paste" augmentation, Dwibedi et al. 2017, Ghiasi et al. 2021) gives scenes whose
hand box is known exactly: training material for the hand localizer and the classifier
(in TensorFlow, :mod:`signdigits.augment`) and the variants of ``evaluate``
(here, in numpy and Pillow).

Backgrounds are procedural (colour fields, gradients, multi-scale noise, stripes, blobs,
light walls, dark versions of each) or crops of pictures that ship inside our
dependencies (scikit-learn's and matplotlib's sample photos: a temple, a flower, a
portrait). Training and evaluation draw from different regions of those pictures and
different random streams.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from signdigits.pictures import CANVAS_RGB, SKIN_RGB

#: Border width (pixels of a 100x100 photo) whose colour defines "wall".
BORDER = 2
#: Least chroma distance from the wall that counts as hand, whatever Otsu's threshold says.
MIN_CHROMA_DISTANCE = 4.0
#: Holes in the mask up to this size (pixels of a 100x100 photo) are filled.
MAX_SPECK_PIXELS = 12
#: Share of each shipped picture's width used for training backgrounds (the rest: evaluation).
TRAIN_REGION = 0.6
#: The side of a crop of a whole held-out photo (split "all"), as a share of its shorter side.
WHOLE_PICTURE_SHARE = (0.6, 1.0)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 2) Cb, Cr (ITU-R BT.601), brightness left out."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([cb, cr], axis=-1)


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    hist, edges = np.histogram(values.ravel(), bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(hist)
    above = below[-1] - below
    mass = np.cumsum(hist * centers)
    mean_below = mass / np.maximum(below, 1)
    mean_above = (mass[-1] - mass) / np.maximum(above, 1)
    return float(centers[np.argmax(below * above * (mean_below - mean_above) ** 2)])


def hand_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the hand in a dataset photo (RGB uint8, hand before a plain wall)."""
    chroma = _chroma(rgb)
    border = np.concatenate(
        [chroma[:BORDER].reshape(-1, 2), chroma[:, :BORDER].reshape(-1, 2),
         chroma[:, -BORDER:].reshape(-1, 2)]
    )  # fmt: skip  (the bottom edge is left out: the forearm crosses it)
    wall = np.median(border, axis=0)
    distance = np.linalg.norm(chroma - wall, axis=-1)
    wall_spread = np.percentile(np.linalg.norm(border - wall, axis=-1), 90)
    mask = distance > max(_otsu(distance), wall_spread + 2.0, MIN_CHROMA_DISTANCE)
    mask = ndimage.binary_opening(mask)
    labels, count = ndimage.label(mask)
    if count:
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    holes = ndimage.binary_fill_holes(mask) & ~mask
    labels, count = ndimage.label(holes)
    if count:  # specks inside the skin are hand; the wall seen through a ring is not
        sizes = ndimage.sum(holes, labels, range(1, count + 1))
        mask |= np.isin(labels, 1 + np.flatnonzero(sizes < MAX_SPECK_PIXELS))
    return mask


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The tight box ``(x0, y0, x1, y1)`` of a mask in pixels (x1, y1 exclusive)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return (0.0, 0.0, float(mask.shape[1]), float(mask.shape[0]))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


# ------------------------------------------------------------------------ backgrounds


def shipped_pictures() -> list[np.ndarray]:
    """Photos that ship inside our dependencies (RGB uint8): no download, ever."""
    import matplotlib
    import sklearn

    paths = [
        Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
        Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    ]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths if p.is_file()]


def _noise_field(rng, size: int) -> np.ndarray:
    """Multi-scale value noise in [0, 1], (size, size)."""
    field = np.zeros((size, size), np.float32)
    for octave, weight in ((2, 1.0), (4, 0.5), (8, 0.25), (16, 0.12)):
        grid = rng.random((octave + 1, octave + 1)).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
        field += weight * np.asarray(layer)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def _colour(rng, dark=False) -> np.ndarray:
    base = rng.random(3) * (0.35 if dark else 1.0)
    return (base * 255).astype(np.float32)


def _procedural(rng, size: int) -> np.ndarray:
    kind = rng.integers(0, 6)
    xs = np.linspace(-1, 1, size, dtype=np.float32)
    if kind == 0:  # colour field
        image = np.broadcast_to(_colour(rng), (size, size, 3)).copy()
    elif kind == 1:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xs[None, :] + np.sin(angle) * xs[:, None] + 1.5) / 3.0
        image = (1 - t[..., None]) * _colour(rng) + t[..., None] * _colour(rng)
    elif kind == 2:  # textured noise between two or three colours
        t = _noise_field(rng, size)[..., None]
        image = (1 - t) * _colour(rng) + t * _colour(rng)
        if rng.random() < 0.5:
            image = image * (0.7 + 0.6 * _noise_field(rng, size)[..., None])
    elif kind == 3:  # stripes or checks
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, size / 3)
        u = np.cos(angle) * xs[None, :] + np.sin(angle) * xs[:, None]
        v = -np.sin(angle) * xs[None, :] + np.cos(angle) * xs[:, None]
        t = (np.sin(u * size / period) > 0).astype(np.float32)
        if rng.random() < 0.4:
            t = np.logical_xor(t > 0, np.sin(v * size / period) > 0).astype(np.float32)
        image = (1 - t[..., None]) * _colour(rng) + t[..., None] * _colour(rng)
    elif kind == 4:  # blobs: shapes of many colours, like a cluttered room
        canvas = Image.new("RGB", (size, size), tuple(int(c) for c in _colour(rng)))
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(4, 14)):
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.08, 0.6, 2) * size
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x0 + w, y0 + h), fill=tuple(int(c) for c in _colour(rng)))
        image = np.asarray(canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2))), np.float32)
    else:  # a light wall with uneven light, like the dataset's
        level = rng.uniform(170, 250)
        r2 = xs[None, :] ** 2 + (xs[:, None] - rng.uniform(-0.5, 0.5)) ** 2
        tint = rng.uniform(-8, 8, 3)
        image = (level - rng.uniform(10, 70) * r2)[..., None] + tint
    noise = rng.normal(0, rng.uniform(0, 8), (size, size, 1)).astype(np.float32)
    return np.clip(image + noise, 0, 255)


def _picture_crop(rng, picture: np.ndarray, size: int, split: str) -> np.ndarray:
    height, width = picture.shape[:2]
    cut = int(width * TRAIN_REGION)
    region = {"train": picture[:, :cut], "eval": picture[:, cut:]}.get(split, picture)
    side = int(min(region.shape[:2]) * rng.uniform(*WHOLE_PICTURE_SHARE if split == "all" else (0.25, 1.0)))
    top = rng.integers(0, region.shape[0] - side + 1)
    left = rng.integers(0, region.shape[1] - side + 1)
    crop = Image.fromarray(region[top : top + side, left : left + side])
    crop = crop.resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, np.float32)


def background(rng, size, kind: str = "any", split: str = "train", pictures=None) -> np.ndarray:
    """One RGB uint8 background, ``size`` (side, or (width, height)): ``kind`` "natural"
    (a shipped picture, or one of ``pictures``), "dark", or "any"; ``split`` picks the
    pictures' region ("train", "eval", or "all" of a held-out photo)."""
    width, height = (size, size) if np.isscalar(size) else size
    side = max(width, height)
    pictures = shipped_pictures() if pictures is None else pictures
    natural = kind == "natural" or (kind == "any" and pictures and rng.random() < 0.4)
    if natural:
        image = _picture_crop(rng, pictures[rng.integers(len(pictures))], side, split)
    else:
        image = _procedural(rng, side)
    if kind == "dark" or (kind == "any" and rng.random() < 0.25):  # the same, in the dark
        image = image * rng.uniform(0.08, 0.4)
    top, left = (side - height) // 2, (side - width) // 2
    return np.clip(image[top : top + height, left : left + width], 0, 255).astype(np.uint8)


def backgrounds(count: int, size: int, split: str = "train", seed: int = 0) -> np.ndarray:
    """``count`` RGB uint8 backgrounds of ``size`` x ``size``; ``split`` picks the region
    of the shipped pictures ("train" or "eval") and the random stream."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    pictures = shipped_pictures()
    return np.stack([background(rng, size, "any", split, pictures) for _ in range(count)])


# ------------------------------------------------------------------------ scenes


def _affine_inverse(scale_x, scale_y, angle, mirror, src_center, dst_center):
    """Pillow AFFINE data mapping output pixels to source pixels for
    ``dst = dst_center + R(angle) @ diag(mirror*scale_x, scale_y) @ (src - src_center)``."""
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.diag([mirror * scale_x, scale_y])
    inverse = np.linalg.inv(forward)
    offset = np.asarray(src_center) - inverse @ np.asarray(dst_center)
    return (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])


def paste_hand(
    background: np.ndarray, photo: np.ndarray, mask: np.ndarray, box_height: float,
    center: tuple[float, float], angle: float = 0.0, mirror: bool = False, arm: bool = True,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Paste the hand of ``photo`` (its ``mask``) onto ``background``.

    The hand's box becomes ``box_height`` pixels tall, centred at ``center`` (x, y),
    turned by ``angle`` radians, mirrored if asked. With ``arm`` the forearm goes on past
    the photo's edge (its edge pixels repeated), as in a photo taken from further away.
    Returns the scene (RGB uint8) and the hand's tight box in it.
    """
    height, width = background.shape[:2]
    pad = max(photo.shape[:2]) if arm else 1
    mode = "edge" if arm else "constant"
    photo = np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    alpha = np.pad(mask.astype(np.uint8) * 255, pad, mode=mode)
    inside = np.pad(mask.astype(np.uint8) * 255, pad)  # the box counts the photo's part only
    x0, y0, x1, y1 = mask_box(mask)
    scale = box_height / max(1.0, y1 - y0)
    src_center = ((x0 + x1) / 2 + pad, (y0 + y1) / 2 + pad)
    data = _affine_inverse(scale, scale, angle, -1 if mirror else 1, src_center, center)

    def warp(array, mode):
        image = Image.fromarray(array, mode)
        return np.asarray(
            image.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
        )

    hand = warp(photo, "RGB").astype(np.float32)
    weight = ndimage.gaussian_filter(warp(alpha, "L").astype(np.float32) / 255, 0.6)[..., None]
    scene = weight * hand + (1 - weight) * background.astype(np.float32)
    return np.clip(scene, 0, 255).astype(np.uint8), mask_box(warp(inside, "L") > 127)


def drawing(mask: np.ndarray, size: int, outline_width: int = 0, rng=None) -> np.ndarray:
    """A hand as a person would draw it on the app's canvas: the filled silhouette in
    skin tone, or (``outline_width`` > 0) only its outline, on the canvas colour."""
    x0, y0, x1, y1 = mask_box(mask)
    side = max(x1 - x0, y1 - y0) * 1.25
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    shape = Image.fromarray(mask.astype(np.uint8) * 255).transform(
        (size, size), Image.Transform.EXTENT,
        (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), Image.Resampling.BILINEAR,
    )  # fmt: skip
    filled = np.asarray(shape) > 127
    if outline_width:
        grown = ndimage.binary_dilation(filled, iterations=outline_width // 2 + 1)
        filled = grown & ~ndimage.binary_erosion(filled, iterations=outline_width // 2 + 1)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = CANVAS_RGB
    canvas[filled] = SKIN_RGB
    return canvas
