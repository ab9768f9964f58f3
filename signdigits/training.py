"""Training: the hand localizer, then the classifier, both with ``model.fit``.

``train_model.py`` is the command-line front end. Test participants are set aside first
and never influence any choice; validation participants pick the best epoch and fit the
confidence temperature.

Every batch is made inside the training step from the step counter alone (which photos,
which background, which jitter: :mod:`signdigits.augment`), so a run is a function of its
seed, and a run resumed by :class:`keras.callbacks.BackupAndRestore` (which restores the
step counter) goes on with the batches it would have seen.

- :func:`train_localizer`: scenes with a pasted hand (or none) -> box and hand score.
- :func:`train`: the shipped three-conv-layer classifier on crops around the hand framed
  the way the localizer frames them, through :class:`Distiller` (as in Keras'
  knowledge-distillation example), which with ``teacher_epochs`` > 0 first trains a
  six-conv-layer teacher and distils from it (off by default: in ten minutes of CPU the
  student alone measured better).
"""

import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, report_dir_for
from signdigits.atomic import atomic_path
from signdigits.augment import hand_crops, hand_scenes, real_frames
from signdigits.backend import keras, tf
from signdigits.data import TEST_FRACTION, VAL_FRACTION, Dataset, load_dataset, split_indices
from signdigits.evaluate import TEST_DRAWS
from signdigits.hand_grid import CHANNELS, GRID, fit_calibration, read_hand
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import build_localizer, build_model, load_model, save_model
from signdigits.real_scenes import (
    DEFAULT_SCENES_DIR,
    MAX_HANDS,
    ScenesMissing,
    caltech_photos,
    frame_targets,
    hand_found,
    photo_arrays,
    squares,
    webcam_frames,
)  # fmt: skip
from signdigits.scenes import backgrounds, hand_mask, mask_box
from signdigits.serving import CLASSIFIER, LOCALIZER, ModelFileError, convert, write_serving

#: TensorFlow's thread pools, fixed so that a run's arithmetic does not depend on the
#: machine's core count (results still differ between CPU types and library versions);
#: SIGNDIGITS_TRAIN_THREADS sets the intra-op pool to another size (recorded in the report).
INTRA_OP_THREADS = int(os.environ.get("SIGNDIGITS_TRAIN_THREADS", "2"))
INTER_OP_THREADS = 1
BACKGROUNDS = 1500  # procedural backgrounds in the bank a run draws from (real photos join them)
#: Draws of the validation people's variants the temperature is fitted on: fitted on one
#: draw, it came out 0.545 where two other draws gave 0.50.
CALIBRATION_DRAWS = 3
BANK_SIDE = 128  # the side backgrounds and photos are kept at (the localizer's input)
FRAME_SIDE = 256  # training's webcam frames: a view closer in is sharp, as the closer looks are
#: Share of each localizer batch that is real webcam frames; the rest are scenes made of
#: the dataset's hands on backgrounds (real photos among them) or without a hand.
REAL_FRAME_SHARE = 0.375
RAMP_SHARE = 0.3  # augmentation grows from none to full over this share of a run's steps
#: A classifier run that goes on from a trained one (``init``) peaks at this share of the
#: learning rate: a second, gentler cosine cycle. The bundled classifier trained so for 150
#: epochs more read every validation row the same or better (docs/model.md).
INIT_LEARNING_RATE_SHARE = 0.1
VALIDATION_COPIES = 4  # augmented copies of each validation photo the best epoch is chosen on


class TrainingError(ValueError):
    """A run cannot go on as asked. The message says why and what to do."""


@dataclass
class LocalizerConfig:
    """Everything that determines a localizer training run (the classifier's adds to it)."""

    x_path: str | None = None
    y_path: str | None = None
    participants_path: str | None = None
    output: str = str(DEFAULT_LOCALIZER_PATH)
    epochs: int = 150  # on real frames too: 20 epochs found 83 % of the validation places' hands
    steps_per_epoch: int = 50
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    test_fraction: float = TEST_FRACTION
    val_fraction: float = VAL_FRACTION
    seed: int = 0
    split_seed: int = 0  # which people are held out; the same for both models by default
    resume: bool = False  # go on from the backup an interrupted run left
    scenes_dir: str = str(DEFAULT_SCENES_DIR)  # real webcam frames and photos (../shared/scenes)
    backgrounds: int = BACKGROUNDS
    command: str = field(default_factory=lambda: shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))


@dataclass
class TrainConfig(LocalizerConfig):
    """Everything that determines a classifier training run (recorded in the report)."""

    output: str = str(DEFAULT_MODEL_PATH)
    localizer: str = str(DEFAULT_LOCALIZER_PATH)
    epochs: int = 700  # 140 (ten minutes) left it undertrained; 420 gained 2-6 points, 700 2-4 more on unseen boards
    batch_size: int = 32
    teacher_epochs: int = 0  # a teacher trained in the same ten minutes is too weak to help
    init: str | None = None  # a classifier file whose weights the run starts from
    filters: tuple = (48, 96, 192)  # 1.5x (32, 64, 128): busy +1.7, webcam +1.0/+1.7 (validation, 2 seeds)
    pooled_blocks: int = 0  # every block strides: more steps in ten minutes beat a pooled first block
    teacher_pooled_blocks: int = 0  # the teacher strides everywhere: half the work
    teacher_filters: tuple = (32, 64, 128)
    dropout: float = 0.3
    label_smoothing: float = 0.1
    distill_weight: float = 0.7
    temperature: float = 2.0
    augment_strength: float = 1.0
    calibration_draws: int = CALIBRATION_DRAWS
    test_draws: int = TEST_DRAWS  # draws of the test people's pictures made at random


# ----------------------------------------------------------------------------- data


@dataclass
class Hands:
    """The colour photos with their hand masks and boxes, as training needs them."""

    photos: np.ndarray  # uint8 (N, 100, 100, 3)
    masks: np.ndarray  # float32 (N, 100, 100, 1)
    boxes: np.ndarray  # float32 (N, 4): x0, y0, x1, y1 in photo pixels

    @classmethod
    def of(cls, dataset: Dataset) -> "Hands":
        if dataset.photos is None:
            raise TrainingError(
                "training needs the colour photos (dataset/photos.npy) to cut the hands out; "
                "build them with `python -m signdigits build-dataset ../shared/sign-language-digits`."
            )
        masks = np.stack([hand_mask(photo) for photo in dataset.photos])
        boxes = np.asarray([mask_box(mask) for mask in masks], np.float32)
        return cls(dataset.photos, masks[..., None].astype(np.float32), boxes)


@dataclass
class RealScenes:
    """One side of the real scenes' split, squeezed to squares: webcam frames (``frame_side``)
    with their hands' targets (N, MAX_HANDS, 5), and photos without a hand (BANK_SIDE)."""

    frames: np.ndarray
    targets: np.ndarray
    photos: np.ndarray

    @classmethod
    def load(cls, scenes_dir, split: str, frames: bool = True, frame_side: int = BANK_SIDE) -> "RealScenes":
        """The ``split`` side; without ``frames``, its photos alone (the classifier's)."""
        try:
            found = webcam_frames(split, scenes_dir) if frames else []
            photos = caltech_photos(split, scenes_dir)
        except ScenesMissing as exc:
            raise TrainingError(f"{exc}; give their folder with --scenes.") from exc
        return cls(squares([f.path for f in found], frame_side), frame_targets(found), squares(photos, BANK_SIDE))


def _bank(config, real: RealScenes) -> np.ndarray:
    """The backgrounds a run pastes hands on: procedural ones, crops of the shipped
    pictures, and the real photos of training's side of the split."""
    return np.concatenate([backgrounds(config.backgrounds, BANK_SIDE, "train", config.seed), real.photos])


def _held_out(config, split: str) -> dict:
    """The real photos and webcam frames of ``split`` that ``evaluate.variants`` judges on."""
    return {"real_photos": photo_arrays(caltech_photos(split, config.scenes_dir)),
            "real_frames": webcam_frames(split, config.scenes_dir)}  # fmt: skip


def _prepare_run(config, log):
    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS)
    except RuntimeError:  # already initialised in this process (tests): keep what it has
        pass
    dataset = load_dataset(config.x_path, config.y_path, config.participants_path)
    hands = Hands.of(dataset)
    split = split_indices(dataset, config.test_fraction, config.val_fraction, config.split_seed)
    log(
        f"{len(dataset.x)} photos; split by {split[3]}: {len(split[0])} train / "
        f"{len(split[1])} validation / {len(split[2])} test"
    )
    return dataset, hands, split


def _optimizer(config, steps: int) -> keras.optimizers.Optimizer:
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
        alpha=0.01,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


def _steps():
    """What ``model.fit`` iterates over: nothing but a count; the step makes its batch."""
    return tf.data.Dataset.from_tensors(0).repeat()


def _callbacks(backup_dir: Path, resume: bool, log) -> list:
    """Best weights, backup and restore (``--resume``), one log line per epoch."""
    if not resume:
        shutil.rmtree(backup_dir, ignore_errors=True)
    # double_checkpoint: a run killed while it wrote its backup goes on from the epoch before
    backup = keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True)
    return [KeepBest(backup_dir), backup, EpochLog(log)]


def _seed_generators(model) -> list:
    """The random-number states of ``model``'s layers (dropout), nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        if getattr(layer, "seed_generator", None) is not None:
            found.append(layer.seed_generator)
        found += _seed_generators(layer)
    return found


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest validation loss, every epoch's
    figures and the layers' random-number states (dropout) in ``folder``, so that a resumed
    run knows them too; puts the best weights back when training ends. ``history`` then
    holds the whole run's figures. The record of the epoch before is kept as well, for a
    run that ``BackupAndRestore`` resumes from its previous checkpoint."""

    def __init__(self, folder: Path):
        super().__init__()
        self.weights, self.record = Path(folder) / "best.weights.h5", Path(folder) / "record.json"

    def on_train_begin(self, logs=None):
        saved = json.loads(self.record.read_text()) if self.record.exists() else {}
        self.previous = saved.get("previous")
        self._restore(saved.get("latest"))

    def _restore(self, record: dict | None):
        self.latest = record
        record = record or {}
        self.epochs, self.best = record.get("epochs", 0), record.get("best")
        self.history = {key: list(values) for key, values in record.get("history", {}).items()}
        for generator, state in zip(_seed_generators(self.model), record.get("seed_states", [])):
            generator.state.assign(np.asarray(state, generator.state.dtype))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epochs and self.previous and self.previous["epochs"] == epoch:
            self._restore(self.previous)  # the latest checkpoint was cut off mid-write

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                self.history.setdefault(key, []).append(float(value))
        loss = float(logs["val_loss"])
        self.weights.parent.mkdir(parents=True, exist_ok=True)
        if self.best is None or loss < self.best["val_loss"]:
            with atomic_path(self.weights, suffix=".part.weights.h5") as temporary:
                self.model.save_weights(temporary)
            self.best = {"val_loss": loss, "epoch": epoch + 1}
        record = {"epochs": epoch + 1, "best": self.best,
                  "history": {key: list(values) for key, values in self.history.items()},
                  "seed_states": [np.asarray(g.state.value).tolist()
                                  for g in _seed_generators(self.model)]}  # fmt: skip
        with atomic_path(self.record) as temporary:
            temporary.write_text(json.dumps({"latest": record, "previous": self.latest}))
        self.previous, self.latest, self.epochs = self.latest, record, epoch + 1

    def on_train_end(self, logs=None):
        if self.best is not None:
            self.model.load_weights(self.weights)


class EpochLog(keras.callbacks.Callback):
    """One line per epoch: its number, the logged figures and its duration."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        figures = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate")
        self.log(f"  epoch {epoch + 1:3d}  {figures}  ({time.perf_counter() - self.started:.1f}s)")


def backup_dir_for(output) -> Path:
    """Where a run writing ``output`` keeps its backup (hidden, beside it)."""
    output = Path(output)
    return output.with_name(f".{output.stem}.backup")


class BatchMaker:
    """Makes batch ``step`` of a run: which photos and how they are varied, from
    ``(seed, step)`` alone (``tf.random.experimental.stateless_fold_in``)."""

    def __init__(self, hands: Hands, rows, labels, bank, seed: int, batch_size: int):
        self.photos = tf.constant(hands.photos[rows])
        self.masks = tf.constant(hands.masks[rows])
        self.boxes = tf.constant(hands.boxes[rows])
        self.labels = tf.constant(labels)
        self.bank = tf.constant(bank)
        self.seed = tf.constant([seed, 0], tf.int32)
        self.batch_size = batch_size

    def pick(self, step):
        seed = tf.random.experimental.stateless_fold_in(self.seed, tf.cast(step, tf.int32))
        rows = tf.random.stateless_uniform(
            [self.batch_size], seed, 0, tf.shape(self.photos)[0], tf.int32
        )
        gather = lambda t: tf.gather(t, rows)  # noqa: E731
        return seed, gather(self.photos), gather(self.masks), gather(self.boxes), gather(self.labels)


# ----------------------------------------------------------------------------- localizer


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
    """Train the hand localizer and write it (with a small report) to ``config.output``."""
    started = time.perf_counter()
    dataset, hands, (train_rows, val_rows, test_rows, split_kind) = _prepare_run(config, log)
    real = RealScenes.load(config.scenes_dir, "train", frame_side=FRAME_SIDE)
    held_out = RealScenes.load(config.scenes_dir, "validation")  # as the localizer's first look sees them
    log(f"real scenes: {len(real.frames)} webcam frames and {len(real.photos)} photos to train on, "
        f"{len(held_out.frames)} and {len(held_out.photos)} held out for validation")
    batches = BatchMaker(hands, train_rows, dataset.y[train_rows], _bank(config, real), config.seed,
                         config.batch_size)  # fmt: skip
    val_bank = np.concatenate([backgrounds(config.backgrounds // 5, BANK_SIDE, "eval", config.seed), held_out.photos])
    val_images, val_targets, val_kinds = validation_scenes(hands, val_rows, val_bank, held_out, config.seed)
    keras.utils.set_random_seed(config.seed)  # just before the weights are drawn: see train()
    localizer = build_localizer()
    trainer = SceneTrainer(localizer, batches, real)
    trainer.compile(
        optimizer=_optimizer(config, config.epochs * config.steps_per_epoch),
        loss=localizer_loss, jit_compile=False,
    )  # fmt: skip
    log(f"localizer: {localizer.count_params():,} parameters, {config.epochs} epochs")
    trainer(val_images[:1])  # built before fit, as BackupAndRestore needs
    callbacks = _callbacks(backup_dir_for(config.output), config.resume, log)
    trainer.fit(
        _steps(), shuffle=False, epochs=config.epochs, steps_per_epoch=config.steps_per_epoch,
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


# ----------------------------------------------------------------------------- classifier


def _soften(probabilities, temperature):
    """Probabilities at a distillation temperature (softmax of log-probabilities / T)."""
    return tf.nn.softmax(tf.math.log(probabilities + 1e-7) / temperature)


#: The crops of a training step, compiled by XLA: they were most of a step, which takes
#: 0.67x the time so (150 -> 100 ms for a batch of 32 on 2 cores). XLA draws other random
#: numbers from a seed than TensorFlow's kernels do, just as reproducibly.
compiled_crops = tf.function(hand_crops, jit_compile=True)


class Distiller(keras.Model):
    """Trains ``student`` on crops made in each step (:func:`augment.hand_crops`), from the
    true labels and, when there is a ``teacher``, from its softened predictions on the
    same crops (Hinton et al. 2015; Keras' knowledge-distillation example)."""

    def __init__(self, student, batches: BatchMaker, teacher=None, strength=1.0,
                 distill_weight=0.7, temperature=2.0, label_smoothing=0.1, ramp_steps=1,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.student, self.teacher, self.batches = student, teacher, batches
        if teacher is not None:
            teacher.trainable = False
        self.ramp_steps = float(max(1, ramp_steps))
        self.strength, self.weight, self.temperature = strength, distill_weight, temperature
        self.smooth = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        self.kl_divergence = keras.losses.KLDivergence()

    def call(self, images, training=False):
        return self.student(images, training=training)

    def train_step(self, data):
        step = self.optimizer.iterations
        seed, photos, masks, boxes, labels = self.batches.pick(step)
        ramp = tf.minimum(1.0, tf.cast(step + 1, tf.float32) / self.ramp_steps)
        images = compiled_crops(photos, masks, boxes, self.batches.bank, seed, self.strength, ramp)
        return super().train_step((images, labels))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not training:  # validation: the plain cross-entropy of the compiled loss
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        loss = self.smooth(y, y_pred)
        if self.teacher is not None:
            teacher_soft = _soften(self.teacher(x, training=False), self.temperature)
            distill = self.kl_divergence(teacher_soft, _soften(y_pred, self.temperature))
            loss = (1 - self.weight) * loss + self.weight * distill * self.temperature**2
        return loss


def crop_boxes(hands: Hands, localizer_path) -> np.ndarray:
    """Each photo's hand box as the localizer finds it (the mask's where it finds none),
    so that the crops training learns from are framed like the ones it will be shown."""
    from signdigits.classifier import Localizer
    from signdigits.preprocess import decode

    localizer = Localizer(localizer_path)
    boxes, scores = localizer.find([decode(photo) for photo in hands.photos])
    return np.where((scores >= 0.5)[:, None], boxes, hands.boxes).astype(np.float32)


def validation_crops(hands: Hands, rows, labels, bank, seed, strength):
    """Fixed crops of the validation people: plain ones and augmented copies."""
    photos = hands.photos[rows].astype(np.float32)
    strengths = [0.0] + [strength] * VALIDATION_COPIES  # the plain crops, then the copies
    images = [hand_crops(photos, hands.masks[rows], hands.boxes[rows], bank,
                         tf.constant([seed, 2000 + copy]), copy_strength).numpy()
              for copy, copy_strength in enumerate(strengths)]  # fmt: skip
    return np.concatenate(images), np.concatenate([labels] * len(strengths))


def _fit_classifier(name, model, batches, val, config, epochs, teacher, log):
    log(f"{name}: {model.count_params():,} parameters, {epochs} epochs")
    distiller = Distiller(
        model, batches, teacher, config.augment_strength, config.distill_weight,
        config.temperature, config.label_smoothing,
        ramp_steps=RAMP_SHARE * epochs * config.steps_per_epoch,
    )  # fmt: skip
    distiller.compile(
        optimizer=_optimizer(config, epochs * config.steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"], jit_compile=False,
    )  # fmt: skip
    backup = backup_dir_for(config.output).with_name(backup_dir_for(config.output).name + f".{name}")
    distiller(val[0][:1])  # built before fit, as BackupAndRestore needs
    callbacks = _callbacks(backup, config.resume, log)
    distiller.fit(
        _steps(), shuffle=False, epochs=epochs, steps_per_epoch=config.steps_per_epoch,
        validation_data=val, validation_batch_size=256, verbose=0, callbacks=callbacks,
    )  # fmt: skip
    shutil.rmtree(backup, ignore_errors=True)
    return {**callbacks[0].history, "best_epoch": callbacks[0].best["epoch"]}


def _trained_weights(config: TrainConfig) -> list:
    """The weights of the classifier file ``config.init`` (checked as every model file is)."""
    if config.teacher_epochs > 0:
        raise TrainingError("a run that starts from a trained classifier (init) trains no teacher")
    try:
        return load_model(config.init)[0].get_weights()
    except ModelFileError as exc:
        raise TrainingError(str(exc)) from exc


def train(config: TrainConfig, log=lambda message: print(message, flush=True)) -> dict:
    """Train the classifier, calibrate it, evaluate it; write the model and its report.
    With ``config.init``, start from that classifier's weights at a share of the learning
    rate (:data:`INIT_LEARNING_RATE_SHARE`)."""
    from signdigits.classifier import Classifier
    from signdigits.evaluate import evaluate, fit_temperature, variants
    from signdigits.report import write_report

    init_weights = None
    if config.init:  # checked before the data is prepared; loaded before the seed is set
        init_weights = _trained_weights(config)
        config = replace(config, learning_rate=config.learning_rate * INIT_LEARNING_RATE_SHARE)

    started = time.perf_counter()
    if not Path(config.localizer).is_file():
        raise TrainingError(
            f"the hand localizer {config.localizer} is missing; train it first with "
            "`python train_model.py --localizer`."
        )
    dataset, hands, (train_rows, val_rows, test_rows, split_kind) = _prepare_run(config, log)
    hands.boxes[:] = crop_boxes(hands, config.localizer)
    bank = _bank(config, RealScenes.load(config.scenes_dir, "train", frames=False))
    gray_bank = (bank.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]))[..., None]
    batches = BatchMaker(hands, train_rows, dataset.y[train_rows], gray_bank, config.seed,
                         config.batch_size)  # fmt: skip
    val = validation_crops(hands, val_rows, dataset.y[val_rows], gray_bank, config.seed,
                           config.augment_strength)  # fmt: skip
    # Seeded just before the weights and dropout are drawn: loading a Keras model (the
    # localizer's first conversion to its serving file, above) draws from the same generators.
    keras.utils.set_random_seed(config.seed)
    teacher, teacher_history = None, None
    if config.teacher_epochs > 0:
        teacher = build_model(config.teacher_filters, convs_per_block=2, dropout=config.dropout,
                              pooled_blocks=config.teacher_pooled_blocks, name="teacher")  # fmt: skip
        teacher_history = _fit_classifier(
            "teacher", teacher, batches, val, config, config.teacher_epochs, None, log
        )
    model = build_model(config.filters, dropout=config.dropout, pooled_blocks=config.pooled_blocks)
    if init_weights is not None:
        try:
            model.set_weights(init_weights)
        except ValueError as exc:
            raise TrainingError(f"{config.init} is another network than this run's ({exc})") from exc
    history = _fit_classifier("model", model, batches, val, config, config.epochs, teacher, log)
    train_seconds = time.perf_counter() - started

    participants = dataset.participants
    info = {
        "seed": config.seed,
        "split": split_kind,
        "test_participants": sorted(int(p) for p in np.unique(participants[test_rows])),
        "temperature": 1.0,
    }
    output = save_model(model, config.output, INDEX_TO_DIGIT, info)
    convert(output, CLASSIFIER)
    classifier = Classifier(output, config.localizer)
    digits = dataset.digits
    val_set = variants(hands.photos[val_rows], hands.masks[val_rows, ..., 0], digits[val_rows], seed=config.seed + 1,
                       draws=config.calibration_draws, **_held_out(config, "validation"))  # fmt: skip
    info["temperature"] = fit_temperature(classifier, val_set)
    log(f"confidence temperature (fitted on the validation people): {info['temperature']:.3f}")
    test_set = variants(hands.photos[test_rows], hands.masks[test_rows, ..., 0], digits[test_rows],
                        seed=config.seed + 2, draws=config.test_draws, **_held_out(config, "test"))  # fmt: skip
    classifier.temperature = info["temperature"]
    evaluation = {**evaluate(classifier, test_set), "draws": config.test_draws}
    info["test_accuracy"] = evaluation["variants"]["plain"]["accuracy"]
    output = save_model(model, config.output, INDEX_TO_DIGIT, info)
    test_crops = [classifier.find_hand(hands.photos[row], box=hands.boxes[row]).model_input for row in test_rows]
    serving = write_serving(output, CLASSIFIER, np.stack(test_crops))
    seconds = time.perf_counter() - started
    report = {
        "model_file": output.name,
        "model_bytes": output.stat().st_size,
        "localizer_file": Path(config.localizer).name,
        "localizer_bytes": Path(config.localizer).stat().st_size,
        "parameters": int(model.count_params()),
        "split": {
            "kind": split_kind,
            "train_images": len(train_rows),
            "val_images": len(val_rows),
            "test_images": len(test_rows),
            "test_participants": info["test_participants"],
            "val_participants": sorted(int(p) for p in np.unique(participants[val_rows])),
        },
        "temperature": info["temperature"],
        "serving": serving,
        "test": evaluation,
        "history": history,
        "teacher_history": teacher_history,
        "training_seconds": round(train_seconds, 1),
        "total_seconds": round(seconds, 1),
        "config": asdict(config),
        "environment": environment(),
    }
    write_report(report, report_dir_for(output))
    plain = evaluation["variants"]["plain"]["accuracy"]
    log(
        f"on the test people: {plain:.2%} plain, ECE {evaluation['ece']:.3f}; wrote {output} "
        f"and {report_dir_for(output)}/ in {seconds / 60:.1f} min"
    )
    return report


#: Instruction sets by which TensorFlow's CPU kernels (oneDNN) pick their code, and so the
#: order of their sums: the same run on CPUs with other ones gives other weights.
KERNEL_ISAS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def cpu_name() -> str:
    """The processor's model name and the kernel instruction sets it has, where Linux says
    (``/proc/cpuinfo``), e.g. ``"AMD EPYC (x86_64; avx2)"``; else what ``platform`` knows."""
    machine = platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    if "model name" not in fields:
        return platform.processor() or machine
    isas = [isa for isa in KERNEL_ISAS if isa in fields.get("flags", "").split()]
    return f"{fields['model name']} ({machine}; {', '.join(isas) or 'none of ' + '/'.join(KERNEL_ISAS)})"


def environment() -> dict:
    """What a run's numbers depend on besides its seed."""
    import importlib.metadata as metadata

    versions = {}
    for package in ("tensorflow", "keras", "numpy", "pillow", "scipy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "threads": {"intra_op": INTRA_OP_THREADS, "inter_op": INTER_OP_THREADS},
    }
