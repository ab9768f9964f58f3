"""The classifier's training: the shipped three-conv-layer network on crops around the
hand, framed the way the localizer frames them, through :class:`Distiller` (as in Keras'
knowledge-distillation example), which with ``teacher_epochs`` > 0 first trains a
six-conv-layer teacher and distils from it (off by default: in ten minutes of CPU the
student alone measured better). :func:`train` calibrates and evaluates the result and
writes ``model.h5`` with its report.
"""

import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from signdigits import report_dir_for
from signdigits.augment import hand_crops
from signdigits.backend import keras, tf
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import build_model, save_model
from signdigits.real_scenes import caltech_photos, photo_arrays, webcam_frames
from signdigits.serving import CLASSIFIER, convert, write_serving
from signdigits.training import (
    VALIDATION_COPIES,
    BatchMaker,
    Hands,
    RealScenes,
    TrainConfig,
    TrainingError,
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

RAMP_SHARE = 0.3  # augmentation grows from none to full over this share of a run's steps


def _held_out(config, split: str) -> dict:
    """The real photos and webcam frames of ``split`` that ``evaluate.variants`` judges on."""
    return {"real_photos": photo_arrays(caltech_photos(split, config.scenes_dir)),
            "real_frames": webcam_frames(split, config.scenes_dir)}  # fmt: skip


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
        optimizer=optimizer_for(config, epochs * config.steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"], jit_compile=False,
    )  # fmt: skip
    backup = backup_dir_for(config.output).with_name(backup_dir_for(config.output).name + f".{name}")
    distiller(val[0][:1])  # built before fit, as BackupAndRestore needs
    callbacks = run_callbacks(backup, config.resume, log)
    distiller.fit(
        step_counter(), shuffle=False, epochs=epochs, steps_per_epoch=config.steps_per_epoch,
        validation_data=val, validation_batch_size=256, verbose=0, callbacks=callbacks,
    )  # fmt: skip
    shutil.rmtree(backup, ignore_errors=True)
    return {**callbacks[0].history, "best_epoch": callbacks[0].best["epoch"]}


def train(config: TrainConfig, log=lambda message: print(message, flush=True)) -> dict:
    """Train the classifier, calibrate it, evaluate it; write the model and its report.
    With ``config.init``, start from that classifier's weights at a share of the learning
    rate (:func:`training.starting_point`)."""
    from signdigits.classifier import Classifier
    from signdigits.evaluate import evaluate, fit_temperature, variants
    from signdigits.report import write_report

    if config.init and config.teacher_epochs > 0:
        raise TrainingError("a run that starts from a trained classifier (init) trains no teacher")
    config, init_weights = starting_point(config, CLASSIFIER)

    started = time.perf_counter()
    if not Path(config.localizer).is_file():
        raise TrainingError(
            f"the hand localizer {config.localizer} is missing; train it first with "
            "`python train_model.py --localizer`."
        )
    dataset, hands, (train_rows, val_rows, test_rows, split_kind) = prepare_run(config, log)
    hands.boxes[:] = crop_boxes(hands, config.localizer)
    bank = background_bank(config, RealScenes.load(config.scenes_dir, "train", frames=False))
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
    start_from(model, init_weights, config)
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


