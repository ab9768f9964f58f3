"""The localizer's grid of cells is read back as the likeliest hand's box and probability."""

import numpy as np
import pytest

from signdigits.hand_grid import CHANNELS, GRID, OUTPUTS, grid_outputs, read_hand


@pytest.mark.parametrize("box", [(0.1, 0.2, 0.5, 0.9), (0.0, 0.0, 1.0, 1.0), (0.7, 0.05, 0.99, 0.3)])
def test_a_box_written_to_the_grid_reads_back(box):
    boxes, scores = read_hand(grid_outputs(box, 0.8)[None])
    np.testing.assert_allclose(boxes[0], box, atol=1e-6)
    assert scores[0] == pytest.approx(0.8)


def test_the_likeliest_cell_wins_and_boxes_stay_in_the_picture():
    cells = np.zeros((2, GRID, GRID, CHANNELS), np.float32)
    cells[0, 1, 1] = (0.4, 0.5, 0.5, 0.2, 0.2)  # a doubtful hand top left
    cells[0, 6, 5] = (0.9, 0.5, 0.5, 0.3, 0.3)  # a sure one bottom right
    cells[1, 0, 0] = (0.2, 0.0, 0.0, 0.9, 0.9)  # a box running out of the picture
    boxes, scores = read_hand(cells.reshape(2, OUTPUTS))
    cx, cy = 5.5 / GRID, 6.5 / GRID
    np.testing.assert_allclose(boxes[0], [cx - 0.15, cy - 0.15, cx + 0.15, cy + 0.15], atol=1e-6)
    assert scores.tolist() == pytest.approx([0.9, 0.2])
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
