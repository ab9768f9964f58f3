"""The localizer's grid of cells is read back as the likeliest hand's box and probability."""

import numpy as np
import pytest

from signdigits.hand_grid import (
    CHANNELS,
    GRID,
    OUTPUTS,
    fit_calibration,
    grid_outputs,
    read_hand,
    read_hands,
    with_mirror_image,
)


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


def test_the_next_candidate_is_another_place_not_the_same_hand():
    """A face first, the same face's neighbouring cell (inside its box) skipped, the hand
    second; a picture with one peak has no second candidate."""
    cells = np.zeros((2, GRID, GRID, CHANNELS), np.float32)
    cells[0, 2, 2] = (0.8, 0.5, 0.5, 0.3, 0.3)  # a face
    cells[0, 2, 3] = (0.7, 0.5, 0.5, 0.3, 0.3)  # the same face, one cell over
    cells[0, 5, 6] = (0.6, 0.5, 0.5, 0.2, 0.3)  # the hand
    cells[1, 4, 4] = (0.9, 0.5, 0.5, 1.0, 1.0)  # one hand filling the picture
    boxes, scores = read_hands(cells.reshape(2, OUTPUTS), count=2)
    assert boxes.shape == (2, 2, 4) and scores[0].tolist() == pytest.approx([0.8, 0.6])
    assert (boxes[0, 1, 0] + boxes[0, 1, 2]) / 2 == pytest.approx(6.5 / GRID)
    assert scores[1, 1] == 0.0
    np.testing.assert_array_equal(read_hand(cells.reshape(2, OUTPUTS))[0], boxes[:, 0])


def test_a_hand_its_mirror_image_shows_counts_where_it_is_with_the_pictures_own_box():
    """The mirror image's columns run the other way: its cell in column GRID - 1 - c is the
    picture's cell in column c. The surer of the two probabilities counts, the box stays."""
    seen = np.zeros((GRID, GRID, CHANNELS), np.float32)
    seen[3, 1] = (0.3, 0.5, 0.5, 0.2, 0.4)  # a doubtful hand in column 1
    seen[6, 6] = (0.6, 0.2, 0.5, 0.1, 0.1)  # something its mirror image doubts
    mirrored = np.zeros_like(seen)
    mirrored[3, GRID - 2] = (0.9, 0.1, 0.9, 0.5, 0.5)  # the same hand, sure, seen mirrored
    mirrored[6, 1] = (0.2, 0.5, 0.5, 0.1, 0.1)
    cells = with_mirror_image(seen.reshape(1, OUTPUTS), mirrored.reshape(1, OUTPUTS)).reshape(GRID, GRID, CHANNELS)
    np.testing.assert_allclose(cells[3, 1], (0.9, 0.5, 0.5, 0.2, 0.4))
    np.testing.assert_allclose(cells[6, 6], seen[6, 6])
    boxes, scores = read_hand(cells.reshape(1, OUTPUTS))
    np.testing.assert_allclose(boxes[0], [0.0875, 0.2375, 0.2875, 0.6375], atol=1e-6)
    assert scores[0] == pytest.approx(0.9)


def test_calibration_makes_peaks_probabilities():
    """Peaks that are hands mostly above 0.5, the others mostly below (they overlap): the
    fitted scaling reads a peak of 0.93 as nearly sure, 0.3 as unlikely, keeping the order."""
    rng = np.random.default_rng(0)
    hands, empty = rng.uniform(0.45, 0.97, 300), rng.uniform(0.05, 0.55, 300)
    calibration = fit_calibration(np.concatenate([hands, empty]), np.r_[np.ones(300), np.zeros(300)])
    grid = np.stack([grid_outputs((0.2, 0.2, 0.6, 0.8), s) for s in (0.3, 0.6, 0.93)])
    raw = read_hand(grid)[1]
    scaled = read_hand(grid, calibration)[1]
    assert scaled[2] > 0.97 > raw[2] and scaled[0] < 0.1 and np.all(np.diff(scaled) > 0)
