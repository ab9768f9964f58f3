"""The hand localizer's training: scenes with a pasted hand (or none) and real webcam
frames -> a grid of hand probabilities and boxes (:mod:`signdigits.hand_grid`), its
CenterNet-style loss, and :func:`train_localizer`, which writes ``localizer.h5``.
"""

import shutil
import time
from dataclasses import asdict

import numpy as np

from signdigits.augment import hand_scenes, real_frames
from signdigits.backend import keras, tf
from signdigits.hand_grid import CHANNELS, GRID, fit_calibration, read_hand
from signdigits.model import build_localizer, save_model
from signdigits.real_scenes import MAX_HANDS, hand_found
from signdigits.scenes import backgrounds
from signdigits.serving import LOCALIZER, write_serving
from signdigits.training import (
    BANK_SIDE,
    VALIDATION_COPIES,
    BatchMaker,
    Hands,
    LocalizerConfig,
    RealScenes,
    background_bank,
    backup_dir_for,
    environment,
    optimizer_for,
    prepare_run,
    run_callbacks,
    start_from,
    starting_point,
    step_counter,
)

FRAME_SIDE = 256  # training's webcam frames: a view closer in is sharp, as the closer looks are
#: Share of each localizer batch that is real webcam frames; the rest are scenes made of
#: the dataset's hands on backgrounds (real photos among them) or without a hand.
REAL_FRAME_SHARE = 0.375


def localizer_loss(targets, outputs):
    """The localizer's loss for targets (B, MAX_HANDS, 5) (boxes as shares, 1 per hand) and
    its grid of outputs (:mod:`signdigits.hand_grid`): the focal loss of the centre heat
    map, each hand's centre cell a positive and the cells around it forgiven by a Gaussian
    of the hand's size (CenterNet, Zhou et al. 2019), plus, at each hand's centre cell, L1
    and 1 - IoU of the box read there."""
    cells = tf.reshape(outputs, [-1, GRID, GRID, CHANNELS])
    p = tf.clip_by_value(cells[..., 0], 1e-6, 1.0 - 1e-6)
    present, boxes = targets[..., 4], targets[..., :4]
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    col = tf.clip_by_value(tf.floor(cx * GRID), 0.0, GRID - 1.0)
    row = tf.clip_by_value(tf.floor(cy * GRID), 0.0, GRID - 1.0)
    centres = (tf.range(GRID, dtype=tf.float32) + 0.5) / GRID
    spread_x = tf.maximum(width / 6, 0.5 / GRID)[..., None, None]
    spread_y = tf.maximum(height / 6, 0.5 / GRID)[..., None, None]
    dx = centres[None, None, None, :] - cx[..., None, None]
    dy = centres[None, None, :, None] - cy[..., None, None]
    heat = tf.exp(-(dx**2) / (2 * spread_x**2) - dy**2 / (2 * spread_y**2)) * present[..., None, None]
    heat = tf.reduce_max(heat, axis=1)  # (B, GRID, GRID)
    centre_cell = tf.cast(row * GRID + col, tf.int32)  # (B, MAX_HANDS)
    positive = tf.one_hot(centre_cell, GRID * GRID) * present[..., None]
    positive = tf.reshape(tf.reduce_max(positive, axis=1), [-1, GRID, GRID])
    focal = (positive * (1 - p) ** 2 * tf.math.log(p)
             + (1 - positive) * (1 - heat) ** 4 * p**2 * tf.math.log(1 - p))  # fmt: skip
    hands = tf.maximum(tf.reduce_sum(present, axis=1), 1.0)
    heat_loss = -tf.reduce_sum(focal, axis=[1, 2]) / hands

    at = tf.gather(tf.reshape(cells, [-1, GRID * GRID, CHANNELS]), centre_cell, batch_dims=1)
    px, py = (col + at[..., 1]) / GRID, (row + at[..., 2]) / GRID
    read = tf.stack([px - at[..., 3] / 2, py - at[..., 4] / 2, px + at[..., 3] / 2, py + at[..., 4] / 2], -1)
    box_loss = 4.0 * tf.reduce_sum(tf.abs(read - boxes), axis=-1) + (1.0 - box_iou(boxes, read))
    return heat_loss + tf.reduce_sum(present * box_loss, axis=1) / hands


def one_hand(targets):
    """Targets (B, 5) of scenes with at most one hand -> (B, MAX_HANDS, 5), the rest empty."""
    return tf.pad(targets[:, None, :], [[0, 0], [0, MAX_HANDS - 1], [0, 0]])


def box_iou(a, b):
    """IoU of boxes ``x0, y0, x1, y1`` (last axis), elementwise."""
    width = tf.nn.relu(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]))
    height = tf.nn.relu(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]))
    inter = width * height
    area = lambda box: tf.nn.relu(box[..., 2] - box[..., 0]) * tf.nn.relu(box[..., 3] - box[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter + 1e-6)


class SceneTrainer(keras.Model):
    """Fits the localizer on batches made in each step: scenes of the dataset's hands
    (:func:`augment.hand_scenes`) and views of real webcam frames (:func:`augment.real_frames`)."""

    def __init__(self, localizer: keras.Model, batches: BatchMaker, real: RealScenes, **kwargs):
        super().__init__(**kwargs)
        self.localizer = localizer
        self.batches = batches
        self.frames, self.frame_targets = tf.constant(real.frames), tf.constant(real.targets)
        self.real_count = round(REAL_FRAME_SHARE * batches.batch_size) if len(real.frames) else 0

    def call(self, images, training=False):
        return self.localizer(images, training=training)

    def train_step(self, data):
        seed, photos, masks, boxes, _ = self.batches.pick(self.optimizer.iterations)
        made = self.batches.batch_size - self.real_count
        images, targets = hand_scenes(photos[:made], masks[:made], boxes[:made], self.batches.bank, seed)
        if self.real_count:
            frames, frame_targets = real_frames(self.frames, self.frame_targets, seed, self.real_count)
            images, targets = tf.concat([images, frames], 0), tf.concat([one_hand(targets), frame_targets], 0)
        else:
            targets = one_hand(targets)
        return super().train_step((images, targets))


def validation_scenes(hands: Hands, rows, bank, real: RealScenes, seed: int, copies: int = VALIDATION_COPIES):
    """Fixed validation material, made once: ``(images, targets, kinds)``: scenes of the
    validation people's hands on the validation side's backgrounds ("made"), the validation
    side's real webcam frames as they are ("frames") and its real photos ("photos", no hand)."""
    images, targets = [], []
    for copy in range(copies):
        made = hand_scenes(
            tf.constant(hands.photos[rows]), tf.constant(hands.masks[rows]),
            tf.constant(hands.boxes[rows]), tf.constant(bank), tf.constant([seed, 1000 + copy]),
        )  # fmt: skip
        images.append(made[0].numpy())
        targets.append(one_hand(made[1]).numpy())
    kinds = ["made"] * sum(len(t) for t in targets) + ["frames"] * len(real.frames) + ["photos"] * len(real.photos)
    images += [real.frames / np.float32(255), real.photos / np.float32(255)]
    targets += [real.targets, np.zeros((len(real.photos), MAX_HANDS, 5), np.float32)]
    return np.concatenate(images).astype(np.float32), np.concatenate(targets), np.asarray(kinds)


def localizer_quality(outputs, targets, kinds, calibration=None) -> dict:
    """How well the localizer's answers (``outputs``, their scores calibrated by
    ``calibration``) meet ``targets``, per kind of validation material (:func:`validation_scenes`)."""
    boxes, scores = read_hand(outputs, calibration)
    has_hand = targets[:, 0, 4] > 0.5
    made = kinds == "made"
    iou = box_iou(targets[made & has_hand, 0, :4], boxes[made & has_hand].astype(np.float32)).numpy()
    frames = np.flatnonzero(kinds == "frames")
    found = [scores[i] >= 0.5 and hand_found(boxes[i], targets[i]) for i in frames]
    return {
        "validation_scenes": int(made.sum()),
        "median_iou": float(np.median(iou)),
        "iou_at_least_0.7": float(np.mean(iou >= 0.7)),
        "hand_found": float(np.mean(scores[made & has_hand] >= 0.5)),
        "empty_scene_flagged": float(np.mean(scores[made & ~has_hand] < 0.5)),
        "real_frames": len(frames),
        "real_frames_hand_found": float(np.mean(found)) if len(frames) else None,
        "real_photos": int((kinds == "photos").sum()),
        "real_photos_flagged": float(np.mean(scores[kinds == "photos"] < 0.5)) if (kinds == "photos").any() else None,
    }


def train_localizer(config: LocalizerConfig, log=lambda m: print(m, flush=True)) -> dict:
    """Train the hand localizer and write it (with a small report) to ``config.output``.
    With ``config.init``, start from that localizer's weights at a share of the learning
    rate (:func:`training.starting_point`)."""
    config, init_weights = starting_point(config, LOCALIZER)
    started = time.perf_counter()
    dataset, hands, (train_rows, val_rows, test_rows, split_kind) = prepare_run(config, log)
    real = RealScenes.load(config.scenes_dir, "train", frame_side=FRAME_SIDE)
    held_out = RealScenes.load(config.scenes_dir, "validation")  # as the localizer's first look sees them
    log(f"real scenes: {len(real.frames)} webcam frames and {len(real.photos)} photos to train on, "
        f"{len(held_out.frames)} and {len(held_out.photos)} held out for validation")
    batches = BatchMaker(hands, train_rows, dataset.y[train_rows], background_bank(config, real), config.seed,
                         config.batch_size)  # fmt: skip
    val_bank = np.concatenate([backgrounds(config.backgrounds // 5, BANK_SIDE, "eval", config.seed), held_out.photos])
    val_images, val_targets, val_kinds = validation_scenes(hands, val_rows, val_bank, held_out, config.seed)
    keras.utils.set_random_seed(config.seed)  # just before the weights are drawn: see train()
    localizer = build_localizer()
    start_from(localizer, init_weights, config)
    trainer = SceneTrainer(localizer, batches, real)
    trainer.compile(
        optimizer=optimizer_for(config, config.epochs * config.steps_per_epoch),
        loss=localizer_loss, jit_compile=False,
    )  # fmt: skip
    log(f"localizer: {localizer.count_params():,} parameters, {config.epochs} epochs")
    trainer(val_images[:1])  # built before fit, as BackupAndRestore needs
    callbacks = run_callbacks(backup_dir_for(config.output), config.resume, log)
    trainer.fit(
        step_counter(), shuffle=False, epochs=config.epochs, steps_per_epoch=config.steps_per_epoch,
        validation_data=(val_images, val_targets), validation_batch_size=256, verbose=0,
        callbacks=callbacks,
    )  # fmt: skip
    outputs = localizer.predict(val_images, batch_size=256, verbose=0)
    calibration = fit_calibration(read_hand(outputs)[1], val_targets[:, 0, 4] > 0.5)
    quality = localizer_quality(outputs, val_targets, val_kinds, calibration)
    info = {"seed": config.seed, "validation": quality, "split": split_kind, "hand_score": calibration,
            "test_participants": sorted(int(p) for p in np.unique(dataset.participants[test_rows]))}
    save_model(localizer, config.output, None, info)
    serving = write_serving(config.output, LOCALIZER, val_images)
    shutil.rmtree(backup_dir_for(config.output), ignore_errors=True)
    seconds = time.perf_counter() - started
    log(
        f"localizer on {quality['validation_scenes']} validation scenes: median IoU "
        f"{quality['median_iou']:.3f}, IoU >= 0.7 for {quality['iou_at_least_0.7']:.1%}, "
        f"empty scenes flagged {quality['empty_scene_flagged']:.1%}; real webcam frames: hand found in "
        f"{quality['real_frames_hand_found']:.1%} of {quality['real_frames']}; real photos without a hand "
        f"flagged: {quality['real_photos_flagged']:.1%} of {quality['real_photos']}; wrote {config.output} and "
        f"{serving['file']} (differs from it by {serving['max_difference']:.1g}) in {seconds / 60:.1f} min"
    )
    return {"info": info, "history": callbacks[0].history, "training_seconds": round(seconds, 1),
            "serving": serving,
            "config": asdict(config), "environment": environment()}


