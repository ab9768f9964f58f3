"""The localizer's answer: a grid of cells over the picture, read back as one hand.

The localizer (:func:`signdigits.model.build_localizer`) sees the whole picture at
``LOCATOR_SIZE`` pixels and answers for each cell of a ``GRID`` x ``GRID`` grid (one per
``STRIDE`` pixels) five numbers in [0, 1]: the probability that a hand's centre lies in
the cell, where in the cell (x, y), and that hand's width and height as shares of the
picture (a centre heat map with a box per cell, as in CenterNet, Zhou et al. 2019). It
weighs every place of the picture instead of regressing one box, so two hands, a face
beside a hand or a hand in a corner each get a cell of their own. The answer is the cell
with the highest probability: its box, and that probability as the probability of a hand.
"""

import numpy as np

from signdigits.preprocess import LOCATOR_SIZE

STRIDE = 16
GRID = LOCATOR_SIZE // STRIDE
#: Per cell: hand probability, centre x and y in the cell, width and height.
CHANNELS = 5
OUTPUTS = GRID * GRID * CHANNELS


def read_hand(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Localizer outputs (N, OUTPUTS) -> the likeliest hand's box ``x0, y0, x1, y1`` (N, 4),
    shares of the picture, and its probability (N,)."""
    cells = np.asarray(outputs, np.float32).reshape(-1, GRID * GRID, CHANNELS)
    best = cells[..., 0].argmax(axis=1)
    picked = cells[np.arange(len(cells)), best]
    row, col = np.divmod(best, GRID)
    cx, cy = (col + picked[:, 1]) / GRID, (row + picked[:, 2]) / GRID
    half_w, half_h = picked[:, 3] / 2, picked[:, 4] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return np.clip(boxes, 0.0, 1.0), picked[:, 0]


def grid_outputs(box, score: float) -> np.ndarray:
    """The outputs (OUTPUTS,) that :func:`read_hand` reads as ``box`` (shares) with
    probability ``score``: for a localizer that always gives one answer (tests)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    col, row = min(int(cx * GRID), GRID - 1), min(int(cy * GRID), GRID - 1)
    cells = np.zeros((GRID, GRID, CHANNELS), np.float32)
    cells[row, col] = (score, cx * GRID - col, cy * GRID - row, x1 - x0, y1 - y0)
    return cells.reshape(-1)
