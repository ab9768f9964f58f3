"""Why did the model say that? Occlusion sensitivity and its overlay on the input picture.

Occlusion sensitivity (Zeiler & Fergus, 2014): cover one square of the model input at a
time with the background, and see how much the chosen digit's probability falls. All
covered copies go through the model in one batched call, so the map needs forward passes
only (it runs on the served model, without TensorFlow), and it reads as a person would:
red where hiding the picture costs the answer most.
"""

import numpy as np
from PIL import Image

from signdigits import IMAGE_SIZE

#: Side of the covering square and its step, in model-input pixels.
PATCH = 16
STRIDE = 4


def saliency(classifier, model_input: np.ndarray, digit: int) -> np.ndarray:
    """How much covering each part of a (64, 64) model input lowers the probability of
    ``digit``: a (64, 64) map in [0, 1]; all zeros when no part lowers it.

    ``classifier`` is a :class:`signdigits.classifier.Classifier`.
    """
    if int(digit) not in range(10):
        raise ValueError(f"digit must be 0-9, not {digit!r}")
    picture = np.asarray(model_input, np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
    border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
    starts = range(0, IMAGE_SIZE - PATCH + 1, STRIDE)
    squares = [(top, left) for top in starts for left in starts]
    covered = np.repeat(picture[None], len(squares) + 1, axis=0)
    for k, (top, left) in enumerate(squares, start=1):
        covered[k, top : top + PATCH, left : left + PATCH] = np.median(border)
    probability = classifier.probabilities(covered)[:, digit]
    drops = np.maximum(probability[0] - probability[1:], 0.0)
    heat, counts = np.zeros_like(picture), np.zeros_like(picture)
    for drop, (top, left) in zip(drops, squares):
        heat[top : top + PATCH, left : left + PATCH] += drop
        counts[top : top + PATCH, left : left + PATCH] += 1
    heat /= np.maximum(counts, 1)
    peak = float(heat.max())
    return (heat / peak).astype(np.float32) if peak > 0 else np.zeros_like(picture)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> Image.Image:
    """``image`` (any mode/size) with ``heatmap`` (values in [0, 1]) blended on top, RGB."""
    import matplotlib  # only this view needs it

    base = image.convert("RGB")
    heat = Image.fromarray(np.clip(np.asarray(heatmap, np.float32), 0, 1), mode="F")
    heat = np.asarray(heat.resize(base.size, Image.Resampling.BILINEAR), np.float32)
    colored = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3]
    colored = Image.fromarray((colored * 255).astype(np.uint8), mode="RGB")
    return Image.blend(base, colored, alpha)
