"""The localizer's answer: a grid of cells over the picture, read back as the likeliest hands.

The localizer (:func:`signdigits.model.build_localizer`) sees the whole picture at
``LOCATOR_SIZE`` pixels and answers for each cell of a ``GRID`` x ``GRID`` grid (one per
``STRIDE`` pixels) five numbers in [0, 1]: the probability that a hand's centre lies in
the cell, where in the cell (x, y), and that hand's width and height as shares of the
picture (a centre heat map with a box per cell, as in CenterNet, Zhou et al. 2019). It
weighs every place of the picture instead of regressing one box, so two hands, a face
beside a hand or a hand in a corner each get a cell of their own. A candidate is the cell
with the highest probability (the next, the highest outside the boxes before it): its box,
and that probability as the probability of a hand, calibrated (Platt scaling, fitted on
the validation material when the localizer is trained and stored in its file): the heat
map's peak is trained with a focal loss, not to be a probability, and a clear hand peaked
near 0.93.
"""

import numpy as np

from signdigits.preprocess import LOCATOR_SIZE

STRIDE = 16
GRID = LOCATOR_SIZE // STRIDE
#: Per cell: hand probability, centre x and y in the cell, width and height.
CHANNELS = 5
OUTPUTS = GRID * GRID * CHANNELS


def read_hands(outputs: np.ndarray, calibration: dict | None = None, count: int = 1):
    """Localizer outputs (N, OUTPUTS) -> the ``count`` likeliest hands' boxes ``x0, y0, x1,
    y1`` (N, count, 4), shares of the picture, and their probabilities (N, count),
    calibrated by ``calibration`` (the ``slope`` and ``bias`` of :func:`fit_calibration`)
    where given. Each is the likeliest cell whose centre lies outside the boxes before it
    (one hand's neighbouring cells are the same hand); probability 0 where none is left."""
    cells = np.asarray(outputs, np.float32).reshape(-1, GRID * GRID, CHANNELS)
    row, col = np.divmod(np.arange(GRID * GRID), GRID)
    cx, cy = (col + cells[..., 1]) / GRID, (row + cells[..., 2]) / GRID
    half_w, half_h = cells[..., 3] / 2, cells[..., 4] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
    scores = cells[..., 0]
    if calibration:
        scores = np.exp(-np.logaddexp(0.0, -(calibration["slope"] * _logit(scores) + calibration["bias"])))
    pictures, picked = np.arange(len(cells)), []
    for _ in range(count):
        best = scores.argmax(axis=1)
        box = boxes[pictures, best]
        picked.append((box, scores[pictures, best]))
        inside = (cx >= box[:, :1]) & (cx <= box[:, 2:3]) & (cy >= box[:, 1:2]) & (cy <= box[:, 3:4])
        scores = np.where(inside, 0.0, scores)
        scores[pictures, best] = 0.0
    found = np.stack([box for box, _ in picked], axis=1)
    return np.clip(found, 0.0, 1.0), np.stack([score for _, score in picked], axis=1).astype(np.float32)


def with_mirror_image(outputs: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Localizer outputs (N, OUTPUTS) of pictures, and of their mirror images -> per cell,
    the higher of the two hand probabilities (a hand the picture hides from it, its mirror
    image may show) with the picture's own box."""
    cells = np.array(outputs, np.float32).reshape(-1, GRID, GRID, CHANNELS)
    flipped = np.asarray(mirrored, np.float32).reshape(-1, GRID, GRID, CHANNELS)[:, :, ::-1]  # columns back
    cells[..., 0] = np.maximum(cells[..., 0], flipped[..., 0])
    return cells.reshape(-1, OUTPUTS)


def read_hand(outputs: np.ndarray, calibration: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The likeliest hand of :func:`read_hands`: boxes (N, 4) and probabilities (N,)."""
    boxes, scores = read_hands(outputs, calibration)
    return boxes[:, 0], scores[:, 0]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def fit_calibration(scores: np.ndarray, has_hand: np.ndarray) -> dict:
    """The Platt scaling (``slope``, ``bias`` on the logit) that makes the peak ``scores``
    of pictures the probability that they show a hand (``has_hand``)."""
    from scipy.optimize import minimize

    logits, truth = _logit(scores), np.asarray(has_hand, np.float64)

    def loss(params):
        z = params[0] * logits + params[1]
        return float(np.mean(np.logaddexp(0.0, z) - truth * z))  # the cross-entropy of sigmoid(z)

    fitted = minimize(loss, x0=[1.0, 0.0], method="Nelder-Mead").x
    return {"slope": float(fitted[0]), "bias": float(fitted[1])}


def grid_outputs(box, score: float) -> np.ndarray:
    """The outputs (OUTPUTS,) that :func:`read_hand` reads as ``box`` (shares) with
    probability ``score``: for a localizer that always gives one answer (tests)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    col, row = min(int(cx * GRID), GRID - 1), min(int(cy * GRID), GRID - 1)
    cells = np.zeros((GRID, GRID, CHANNELS), np.float32)
    cells[row, col] = (score, cx * GRID - col, cy * GRID - row, x1 - x0, y1 - y0)
    return cells.reshape(-1)
