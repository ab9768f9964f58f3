"""Hands cut out of the dataset's photos, backgrounds, and scenes made of both."""

import numpy as np
import pytest
from PIL import Image

from signdigits.pictures import CANVAS_RGB, SKIN_RGB
from signdigits.scenes import (
    background,
    backgrounds,
    drawing,
    hand_mask,
    mask_box,
    paste_hand,
    shipped_pictures,
)  # fmt: skip


def test_hand_mask_of_a_drawn_hand(drawn_hand):
    photo, truth = drawn_hand
    mask = hand_mask(photo)
    assert (mask == truth).mean() > 0.98
    assert mask_box(mask) == pytest.approx((35, 15, 65, 100), abs=1)


def test_hand_mask_of_real_photos(photo_paths):
    for path in photo_paths[::150]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        mask = hand_mask(photo)
        assert 0.1 < mask.mean() < 0.8, path  # a hand, not the wall and not nothing
        x0, y0, x1, y1 = mask_box(mask)
        assert y1 - y0 > 40 and x1 - x0 > 15, path


def test_mask_box_of_an_empty_mask_is_the_whole_picture():
    assert mask_box(np.zeros((30, 40), bool)) == (0.0, 0.0, 40.0, 30.0)


@pytest.mark.parametrize("angle", [0.0, 0.4])
@pytest.mark.parametrize("arm", [True, False])
def test_pasted_hand_lands_where_asked(angle, arm, drawn_hand):
    photo, truth = drawn_hand
    scene_bg = np.zeros((200, 300, 3), np.uint8)
    scene, box = paste_hand(scene_bg, photo, truth, 80, (150, 90), angle, mirror=True, arm=arm)
    assert scene.shape == (200, 300, 3)
    x0, y0, x1, y1 = box
    assert (x0 + x1) / 2 == pytest.approx(150, abs=12) and (y0 + y1) / 2 == pytest.approx(90, abs=12)
    if angle == 0:
        assert y1 - y0 == pytest.approx(80, abs=2)
    skin = (scene[..., 0] > 150) & (scene[..., 2] > 80)
    inside = skin[int(y0) : int(y1), int(x0) : int(x1)].sum()
    assert inside > (0.4 if arm else 0.95) * skin.sum()
    if arm and angle == 0:
        assert skin[int(y1) + 5 :, :].any()  # the forearm goes on below the box


def test_backgrounds_are_varied_and_reproducible():
    first = backgrounds(12, 32, "train", seed=3)
    assert first.shape == (12, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, backgrounds(12, 32, "train", seed=3))
    assert not np.array_equal(first, backgrounds(12, 32, "eval", seed=3))
    assert len({int(image.mean()) for image in first}) > 6


def test_background_kinds_and_sizes():
    rng = np.random.default_rng(0)
    assert background(rng, (64, 48), "natural").shape == (48, 64, 3)
    dark = [background(rng, 32, "dark").mean() for _ in range(10)]
    assert max(dark) < 110


def test_shipped_pictures_come_with_our_dependencies():
    pictures = shipped_pictures()
    assert len(pictures) >= 2 and all(p.ndim == 3 and p.shape[2] == 3 for p in pictures)


@pytest.mark.parametrize("width", [0, 8])
def test_drawing_uses_the_canvas_colours(width, drawn_hand):
    _, truth = drawn_hand
    picture = drawing(truth, 120, outline_width=width)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert colours == {CANVAS_RGB, SKIN_RGB}
    skin = (picture == SKIN_RGB).all(axis=-1)
    assert 0.05 < skin.mean() < 0.6
    palm_centre = skin[85, 60]  # the palm's middle: filled in a silhouette, empty in an outline
    assert palm_centre == (width == 0)
