"""Training: participant-disjoint split, augmentation, optional distillation, report.

``train_model.py`` is the command-line front end; :func:`train` does the work.

Recipe (defaults): the held-out test participants are set aside first and never
influence any choice. A deeper teacher (six conv layers) is trained on the training
participants with strong augmentation; the shipped three-conv-layer student then learns
from the teacher's soft predictions on the same augmented batches (plus the true labels),
with AdamW, a warm-up + cosine schedule, and the weights of its best validation epoch.
"""

import hashlib
import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from signdigits import DEFAULT_MODEL_PATH, report_dir_for
from signdigits.augment import augment
from signdigits.backend import keras, tf
from signdigits.data import Dataset, load_dataset
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import build_model, save_model


class TrainingError(ValueError):
    """A run cannot go on as asked. The message says why and what to do."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (recorded in the report)."""

    x_path: str | None = None
    y_path: str | None = None
    participants_path: str | None = None
    output: str = str(DEFAULT_MODEL_PATH)
    epochs: int = 60
    teacher_epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    filters: tuple = (32, 64, 128)
    pooled_blocks: int = 1  # the model's first block max-pools, the others stride
    teacher_pooled_blocks: int = 0  # the teacher strides everywhere: half the work
    teacher_filters: tuple = (32, 64, 128)
    dropout: float = 0.3
    label_smoothing: float = 0.1
    distill_weight: float = 0.7
    temperature: float = 2.0
    augment_strength: float = 1.0
    test_fraction: float = 0.15
    val_fraction: float = 0.12
    seed: int = 0
    patience: int = 0  # 0: no early stop; keep the best validation epoch of the full schedule
    resume: bool = False  # go on from the checkpoint an interrupted run left
    command: str = field(default_factory=lambda: shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))


def _fingerprint(config: TrainConfig, *arrays) -> str:
    """What a checkpoint must share with the run that resumes it: settings and data."""
    values = asdict(config)
    for key in ("command", "output", "resume"):
        values.pop(key)
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    values["data_sha256"] = digest.hexdigest()
    return json.dumps(values, sort_keys=True, default=str)


def checkpoint_dir_for(output) -> Path:
    """Where a run writing ``output`` keeps its per-epoch checkpoints (hidden, beside it)."""
    output = Path(output)
    return output.with_name(f".{output.stem}.checkpoint")


# ----------------------------------------------------------------------------- split


def split_indices(dataset: Dataset, test_fraction, val_fraction, seed):
    """Train/val/test row indices. By participant when ids are known, else stratified.

    One person's images never sit on two sides of a split.
    """
    rng = np.random.default_rng(seed)
    ids = dataset.participants
    if np.all(ids >= 0):
        people = rng.permutation(np.unique(ids))
        n_test = max(1, round(len(people) * test_fraction))
        n_val = max(1, round(len(people) * val_fraction))
        test_people, val_people = people[:n_test], people[n_test : n_test + n_val]
        test = np.flatnonzero(np.isin(ids, test_people))
        val = np.flatnonzero(np.isin(ids, val_people))
        train = np.flatnonzero(~np.isin(ids, np.concatenate([test_people, val_people])))
        return train, val, test, "participant"
    from sklearn.model_selection import train_test_split

    labels = dataset.y.argmax(axis=1)
    rest, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
    )
    return np.sort(train), np.sort(val), np.sort(test), "stratified (no participant ids)"


# ----------------------------------------------------------------------------- fitting


def _optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(1, steps - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
        alpha=0.01,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


def _save_checkpoint(path: Path, epochs_done, history, best, model, optimizer, fingerprint):
    """Everything needed to go on after ``epochs_done`` epochs, written atomically."""
    arrays = {f"model_{i}": v.numpy() for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays.update({f"best_{i}": w for i, w in enumerate(best[1] or [])})
    meta = {"epochs_done": epochs_done, "history": history, "best_loss": best[0],
            "best_epoch": best[2], "config": fingerprint}  # fmt: skip
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    partial.replace(path)


def _load_checkpoint(path: Path, model, optimizer, fingerprint):
    """Restore a :func:`_save_checkpoint` file: ``(epochs_done, history, best)``."""
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        if meta["config"] != fingerprint:
            raise TrainingError(
                f"{path} was written by a run with other data or settings; "
                "run without --resume to start afresh."
            )
        for i, variable in enumerate(model.variables):
            variable.assign(saved[f"model_{i}"])
        for i, variable in enumerate(optimizer.variables):
            variable.assign(saved[f"optimizer_{i}"])
        best_weights = [saved[f"best_{i}"] for i in range(len(model.get_weights()))] \
            if "best_0" in saved else None
    return meta["epochs_done"], meta["history"], (meta["best_loss"], best_weights, meta["best_epoch"])


def _soften(probabilities, temperature):
    """Probabilities at a distillation temperature (softmax of log-probabilities / T)."""
    return tf.nn.softmax(tf.math.log(probabilities + 1e-7) / temperature)


def fit(
    model, x_train, y_train, x_val, y_val, config: TrainConfig, epochs, teacher=None,
    checkpoint: Path | None = None, log=print,
):  # fmt: skip
    """Train ``model`` in place; return its per-epoch history. Restores the best val epoch.

    After each epoch the state goes to ``checkpoint``; with ``config.resume`` a run
    continues from it, and (augmentation and shuffling being keyed by seed, epoch and
    step) ends exactly as an uninterrupted run would.
    """
    steps_per_epoch = int(np.ceil(len(x_train) / config.batch_size))
    optimizer = _optimizer(config, steps_per_epoch * epochs)
    optimizer.build(model.trainable_variables)
    fingerprint = _fingerprint(config, x_train, y_train, x_val, y_val)
    smooth = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    plain = keras.losses.CategoricalCrossentropy()
    kl_divergence = keras.losses.KLDivergence()
    temperature, weight = config.temperature, config.distill_weight

    images_spec = tf.TensorSpec([None, *x_train.shape[1:], 1], tf.float32)
    labels_spec = tf.TensorSpec([None, y_train.shape[1]], tf.float32)

    @tf.function(input_signature=[images_spec, labels_spec, tf.TensorSpec([2], tf.int32)])
    def train_step(images, labels, seed):
        images = augment(images, seed, config.augment_strength)
        teacher_soft = None if teacher is None else _soften(teacher(images, training=False), temperature)
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            loss = smooth(labels, probs)
            if teacher_soft is not None:
                distill = kl_divergence(teacher_soft, _soften(probs, temperature)) * temperature**2
                loss = (1 - weight) * loss + weight * distill
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        accuracy = tf.reduce_mean(
            tf.cast(tf.argmax(probs, 1) == tf.argmax(labels, 1), tf.float32)
        )
        return loss, accuracy

    @tf.function(input_signature=[images_spec, labels_spec])
    def evaluate(images, labels):
        probs = model(images, training=False)
        return plain(labels, probs), tf.reduce_mean(
            tf.cast(tf.argmax(probs, 1) == tf.argmax(labels, 1), tf.float32)
        )

    x_train = tf.constant(x_train[..., None])
    y_train = tf.constant(y_train)
    x_val, y_val = tf.constant(x_val[..., None]), tf.constant(y_val)
    history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    best, first_epoch = (np.inf, None, -1), 0
    if checkpoint and config.resume and checkpoint.exists():
        first_epoch, history, best = _load_checkpoint(checkpoint, model, optimizer, fingerprint)
        log(f"  resumed after epoch {first_epoch}")
    for epoch in range(first_epoch, epochs):
        started = time.perf_counter()
        order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
        losses, accuracies = [], []
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            loss, acc = train_step(
                tf.gather(x_train, batch),
                tf.gather(y_train, batch),
                tf.constant([config.seed, epoch * 10_000 + step], dtype=tf.int32),
            )
            losses.append(float(loss))
            accuracies.append(float(acc))
        val_loss, val_acc = (float(v) for v in evaluate(x_val, y_val))
        for key, value in zip(history, (np.mean(losses), np.mean(accuracies), val_loss, val_acc)):
            history[key].append(float(value))
        if val_loss < best[0]:
            best = (val_loss, model.get_weights(), epoch)
        stop = bool(config.patience) and epoch - best[2] >= config.patience
        if checkpoint:
            _save_checkpoint(checkpoint, epochs if stop else epoch + 1, history, best, model,
                             optimizer, fingerprint)  # fmt: skip
        log(
            f"  epoch {epoch + 1:3d}/{epochs}  loss {history['loss'][-1]:.4f}  "
            f"acc {history['accuracy'][-1]:.4f}  val_loss {val_loss:.4f}  val_acc {val_acc:.4f}  "
            f"({time.perf_counter() - started:.1f}s)"
        )
        if stop:
            log(f"  early stop: no better validation loss for {config.patience} epochs")
            break
    if best[1] is None:
        raise TrainingError(
            "validation loss was never finite; check the data (and that --epochs is at least 1)."
        )
    model.set_weights(best[1])
    history["best_epoch"] = best[2] + 1
    return history


# ----------------------------------------------------------------------------- run


def train(config: TrainConfig, log=lambda message: print(message, flush=True)) -> dict:
    """Run the whole recipe and write the model and its report. Returns the report dict."""
    from signdigits.report import evaluate_model, write_report

    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    dataset = load_dataset(config.x_path, config.y_path, config.participants_path)
    train_idx, val_idx, test_idx, split_kind = split_indices(
        dataset, config.test_fraction, config.val_fraction, config.seed
    )
    log(
        f"{len(dataset.x)} images; split by {split_kind}: "
        f"{len(train_idx)} train / {len(val_idx)} validation / {len(test_idx)} test"
    )
    x, y = dataset.x, dataset.y
    checkpoints = checkpoint_dir_for(config.output)
    if not config.resume:
        shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    teacher, teacher_history = None, None
    if config.teacher_epochs > 0:
        log(f"teacher: six conv layers {config.teacher_filters}, {config.teacher_epochs} epochs")
        teacher = build_model(
            config.teacher_filters, convs_per_block=2, dropout=config.dropout,
            pooled_blocks=config.teacher_pooled_blocks,
        )  # fmt: skip
        teacher_history = fit(
            teacher, x[train_idx], y[train_idx], x[val_idx], y[val_idx], config,
            config.teacher_epochs, checkpoint=checkpoints / "teacher.npz", log=log,
        )  # fmt: skip
    log(f"model: three conv layers {config.filters}, {config.epochs} epochs")
    model = build_model(config.filters, dropout=config.dropout, pooled_blocks=config.pooled_blocks)
    history = fit(
        model, x[train_idx], y[train_idx], x[val_idx], y[val_idx], config,
        config.epochs, teacher=teacher, checkpoint=checkpoints / "model.npz", log=log,
    )  # fmt: skip
    seconds = time.perf_counter() - started

    evaluation = evaluate_model(model, x[test_idx], y[test_idx], INDEX_TO_DIGIT)
    info = {
        "test_accuracy": evaluation["accuracy"],
        "test_participants": sorted(int(p) for p in np.unique(dataset.participants[test_idx])),
        "seed": config.seed,
        "split": split_kind,
    }
    output = save_model(model, config.output, INDEX_TO_DIGIT, info)
    report = {
        "model_file": output.name,
        "model_bytes": output.stat().st_size,
        "parameters": int(model.count_params()),
        "split": {
            "kind": split_kind,
            "train_images": len(train_idx),
            "val_images": len(val_idx),
            "test_images": len(test_idx),
            "test_participants": info["test_participants"],
            "val_participants": sorted(int(p) for p in np.unique(dataset.participants[val_idx])),
        },
        "test": evaluation,
        "history": history,
        "teacher_history": teacher_history,
        "training_seconds": round(seconds, 1),
        "config": {k: v for k, v in asdict(config).items()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_report(report, report_dir_for(output))
    shutil.rmtree(checkpoints, ignore_errors=True)
    log(
        f"test accuracy on {len(test_idx)} images of unseen participants: "
        f"{evaluation['accuracy']:.4f}; wrote {output} and {report_dir_for(output)}/ "
        f"in {seconds / 60:.1f} min"
    )
    return report

