"""What the two models' training runs share: their settings, the photos' hands, the real
scenes, the batches made inside each step from ``(seed, step)`` alone, the optimizer, and
the callbacks that keep the best epoch and let an interrupted run go on.

``train_model.py`` is the command-line front end; each model's training is a file of its
own: :mod:`signdigits.localizer_training` (first) and :mod:`signdigits.classifier_training`.
Test participants are set aside first and never influence any choice; validation
participants pick the best epoch and fit the confidence temperature.

Every batch is made inside the training step from the step counter alone (which photos,
which background, which jitter: :mod:`signdigits.augment`), so a run is a function of its
seed, and a run resumed by :class:`keras.callbacks.BackupAndRestore` (which restores the
step counter) goes on with the batches it would have seen.
"""

import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH
from signdigits.atomic import atomic_path
from signdigits.backend import keras, tf
from signdigits.data import TEST_FRACTION, VAL_FRACTION, Dataset, load_dataset, split_indices
from signdigits.evaluate import TEST_DRAWS
from signdigits.real_scenes import (
    DEFAULT_SCENES_DIR,
    ScenesMissing,
    caltech_photos,
    frame_targets,
    squares,
    webcam_frames,
)  # fmt: skip
from signdigits.scenes import backgrounds, hand_mask, mask_box
from signdigits.serving import ModelFileError, ModelKind, load_keras

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
VALIDATION_COPIES = 4  # augmented copies of each validation photo the best epoch is chosen on
#: A run that goes on from a trained model file (``init``) peaks at this share of the
#: learning rate: a second, gentler cosine cycle. The bundled classifier trained so for 150
#: epochs more read every validation row the same or better (docs/model.md).
INIT_LEARNING_RATE_SHARE = 0.1


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
    init: str | None = None  # a trained file of the same model whose weights the run starts from
    command: str = field(default_factory=lambda: shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))


@dataclass
class TrainConfig(LocalizerConfig):
    """Everything that determines a classifier training run (recorded in the report)."""

    output: str = str(DEFAULT_MODEL_PATH)
    localizer: str = str(DEFAULT_LOCALIZER_PATH)
    epochs: int = 700  # 140 (ten minutes) left it undertrained; 420 gained 2-6 points, 700 2-4 more on unseen boards
    batch_size: int = 32
    teacher_epochs: int = 0  # a teacher trained in the same ten minutes is too weak to help
    # 1.5x (32, 64, 128): busy +1.7, webcam +1.0/+1.7 (validation, 2 seeds); 2x against 1.5x: busy -0.7, far +2.6
    filters: tuple = (48, 96, 192)
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


def background_bank(config, real: RealScenes) -> np.ndarray:
    """The backgrounds a run pastes hands on: procedural ones, crops of the shipped
    pictures, and the real photos of training's side of the split."""
    return np.concatenate([backgrounds(config.backgrounds, BANK_SIDE, "train", config.seed), real.photos])


def prepare_run(config, log):
    """A run's start: TensorFlow deterministic on fixed thread pools, the dataset and its
    hands, and the split by person: ``(dataset, hands, (train, validation, test, kind))``."""
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


def starting_point(config, kind: ModelKind):
    """``(config, weights)``: for a run that goes on from ``config.init`` (checked as every
    ``kind`` file is), that file's weights and the learning rate at
    :data:`INIT_LEARNING_RATE_SHARE`; without one, ``config`` as it is and None. Call it
    before the data is prepared (a bad file fails at once) and before the seed is set."""
    if not config.init:
        return config, None
    try:
        model = load_keras(config.init, kind)[0]
    except ModelFileError as exc:
        raise TrainingError(str(exc)) from exc
    return replace(config, learning_rate=config.learning_rate * INIT_LEARNING_RATE_SHARE), model.get_weights()


def start_from(model: keras.Model, weights, config) -> None:
    """Put the weights :func:`starting_point` read into the run's new ``model``, if any."""
    if weights is None:
        return
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise TrainingError(f"{config.init} is another network than this run's ({exc})") from exc


def optimizer_for(config, steps: int) -> keras.optimizers.Optimizer:
    """AdamW on one cosine cycle over ``steps``, warmed up over its first twentieth."""
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
        alpha=0.01,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


def step_counter():
    """What ``model.fit`` iterates over: nothing but a count; the step makes its batch."""
    return tf.data.Dataset.from_tensors(0).repeat()


def run_callbacks(backup_dir: Path, resume: bool, log) -> list:
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
