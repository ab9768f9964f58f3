"""Training material made on the fly: deterministic, in range, plain at strength 0."""

import numpy as np
import pytest
import tensorflow as tf

from signdigits.augment import _inverse_rows, _rotation, _sampled_warp, _warp, hand_crops, hand_scenes, real_frames
from signdigits.preprocess import LOCATOR_SIZE

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def batch(drawn_hand):
    photo, truth = drawn_hand
    photos = np.stack([photo, photo[:, ::-1]] * 4).astype(np.float32)
    masks = np.stack([truth, truth[:, ::-1]] * 4)[..., None].astype(np.float32)
    boxes = np.asarray([(35, 15, 65, 100), (35, 15, 65, 100)] * 4, np.float32)
    rng = np.random.default_rng(0)
    bank = rng.integers(0, 256, (5, 64, 64, 3)).astype(np.float32)
    return photos, masks, boxes, bank


def crops(batch, seed, strength=1.0):
    photos, masks, boxes, bank = batch
    gray_bank = bank.mean(axis=-1, keepdims=True)
    return hand_crops(photos, masks, boxes, gray_bank, tf.constant(seed), strength).numpy()


def test_crops_are_model_inputs_and_reproducible(batch):
    first = crops(batch, [1, 2])
    assert first.shape == (8, 64, 64, 1) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal(first, crops(batch, [1, 2]))
    assert not np.array_equal(first, crops(batch, [1, 3]))


def test_every_crop_of_a_batch_is_varied_its_own_way(batch):
    made = crops(batch, [0, 7])
    assert len({made[i].tobytes() for i in range(0, 8, 2)}) == 4  # same photo, other crops


def test_strength_zero_is_the_plain_crop_around_the_box(batch):
    plain = crops(batch, [4, 4], strength=0.0)
    assert np.array_equal(plain, crops(batch, [5, 5], strength=0.0))  # no randomness left
    first = 1.0 - plain[0, ..., 0]  # gray in [0, 1]
    # the box is centred, 1.2 times its height: the hand spans the middle 1/1.2 of the crop
    rows = np.flatnonzero((first < 0.75).any(axis=1))
    assert rows[0] == pytest.approx(64 * (1 - 1 / 1.2) / 2, abs=2)
    assert np.allclose(plain[1, ..., 0], plain[0, :, ::-1, 0], atol=0.02)  # the mirrored photo


@pytest.mark.parametrize("fill_mode", ["NEAREST", "REFLECT"])
def test_the_sampled_warp_is_the_kernel_in_gathers(fill_mode):
    images = tf.constant(np.random.default_rng(1).uniform(0, 255, (3, 50, 40, 2)), tf.float32)
    angle = tf.constant([0.0, 0.4, -1.0])
    matrix = _rotation(angle) * tf.constant([1.0, 0.7, 1.6])[:, None, None]  # turned, zoomed
    rows = _inverse_rows(matrix, tf.constant([[20.0, 25.0], [10.0, 30.0], [35.0, 5.0]]), tf.fill([3, 2], 31.5))
    kernel, sampled = (warp(images, rows, 64, fill_mode).numpy() for warp in (_warp, _sampled_warp))
    assert np.abs(kernel - sampled).max() < 0.01  # of 255


def test_compiled_crops_are_the_crops_on_streams_of_their_own(batch):
    from signdigits.classifier_training import compiled_crops

    photos, masks, boxes, bank = batch
    gray_bank = bank.mean(axis=-1, keepdims=True)

    def compiled(seed, strength):
        return compiled_crops(photos, masks, boxes, gray_bank, tf.constant(seed), strength, tf.constant(1.0)).numpy()

    assert np.abs(compiled([4, 4], 0.0) - crops(batch, [4, 4], strength=0.0)).max() < 1e-4
    varied = compiled([1, 2], 1.0)  # XLA draws other numbers than the kernels from a seed
    assert np.array_equal(varied, compiled([1, 2], 1.0)) and 0.0 <= varied.min() <= varied.max() <= 1.0
    assert len({varied[i].tobytes() for i in range(0, 8, 2)}) == 4


def test_scenes_come_with_exact_boxes(batch):
    photos, masks, boxes, bank = batch
    images, targets = hand_scenes(photos, masks, boxes, bank, tf.constant([3, 3]))
    images, targets = images.numpy(), targets.numpy()
    assert images.shape == (8, LOCATOR_SIZE, LOCATOR_SIZE, 3)
    assert 0.0 <= images.min() and images.max() <= 1.0
    for x0, y0, x1, y1, present in targets:
        assert present in (0.0, 1.0)
        if present:
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert y1 - y0 >= 0.15  # the hand is at least a fifth of the frame (minus rounding)
    again = hand_scenes(photos, masks, boxes, bank, tf.constant([3, 3]))[1].numpy()
    assert np.array_equal(targets, again)


def test_scenes_include_empty_ones(batch):
    photos, masks, boxes, bank = batch
    many = [hand_scenes(photos, masks, boxes, bank, tf.constant([s, 0]))[1].numpy() for s in range(8)]
    present = np.concatenate(many)[:, 4]
    assert 0.02 < 1 - present.mean() < 0.35


@pytest.mark.parametrize("side", [128, 256])  # 256: training keeps frames sharper than its input
def test_views_of_real_frames_keep_every_hand_whole_in_its_box(side):
    """Frames (black, each hand a white block) viewed at random: every hand's pixels stay
    in the view and inside its moved box, and the same seed gives the same views."""
    frames = np.zeros((3, side, side, 3), np.uint8)
    targets = np.zeros((3, 2, 5), np.float32)
    for i, hands in enumerate([[(10, 20, 40, 70)], [(60, 30, 100, 110), (5, 5, 30, 40)], [(0, 0, 128, 128)]]):
        for k, box in enumerate(hands):
            x0, y0, x1, y1 = (v * side // 128 for v in box)
            frames[i, y0:y1, x0:x1] = 255
            targets[i, k] = (x0 / side, y0 / side, x1 / side, y1 / side, 1.0)
    for seed in range(6):
        images, moved = real_frames(tf.constant(frames), tf.constant(targets), tf.constant([seed, 1]), 12)
        images, moved = images.numpy(), moved.numpy()
        assert images.shape == (12, LOCATOR_SIZE, LOCATOR_SIZE, 3) and 0 <= images.min() and images.max() <= 1
        again = real_frames(tf.constant(frames), tf.constant(targets), tf.constant([seed, 1]), 12)[1].numpy()
        np.testing.assert_array_equal(moved, again)
        for image, hands in zip(images, moved):
            bright = image.max(axis=-1) > 0.6  # the blocks (grey or not, in any light)
            inside = np.zeros_like(bright)
            for x0, y0, x1, y1, present in hands:
                if present:
                    assert -0.02 <= x0 < x1 <= 1.02 and -0.02 <= y0 < y1 <= 1.02
                    inside[max(0, int(y0 * 128) - 2) : int(np.ceil(y1 * 128)) + 2,
                           max(0, int(x0 * 128) - 2) : int(np.ceil(x1 * 128)) + 2] = True  # fmt: skip
            assert hands[:, 4].sum() >= 1 and bright.any()
            assert not (bright & ~inside).any()
