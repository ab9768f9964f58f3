"""Training: a smoke run on a tiny synthetic set, the participant-disjoint split, the CLI's --help."""

import json
import runpy
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from signdigits import report_dir_for, training
from signdigits.data import Dataset, split_indices
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import build_model, load_model
from signdigits.serving import CLASSIFIER, LOCALIZER
from signdigits.training import LocalizerConfig, TrainConfig, train, train_localizer
from tests.conftest import SYNTHETIC_DIGITS as DIGITS
from tests.conftest import SYNTHETIC_PEOPLE as PARTICIPANTS
from tests.conftest import TEST_SEED, TINY_BANK

ROOT = Path(__file__).resolve().parents[1]


def data_args(paths) -> dict:
    return {"x_path": str(paths["x"]), "y_path": str(paths["y"]), "participants_path": str(paths["participants"]),
            "scenes_dir": str(paths["scenes"]), "backgrounds": TINY_BANK}  # fmt: skip


@pytest.fixture(scope="module")
def localizer_run(tiny_arrays, tmp_path_factory):
    output = tmp_path_factory.mktemp("localizer") / "loc.h5"
    config = LocalizerConfig(**data_args(tiny_arrays), output=str(output), epochs=2,
                             steps_per_epoch=3, batch_size=8, test_fraction=0.25, val_fraction=0.25,
                             seed=TEST_SEED)  # fmt: skip
    log = []
    return output, train_localizer(config, log=log.append), log


@pytest.fixture(scope="module")
def trained(tiny_arrays, make_tiny_localizer, tmp_path_factory):
    """A tiny run framed by a localizer that finds the hand filling each photo (a localizer
    trained for a few steps would frame noise)."""
    output = tmp_path_factory.mktemp("run") / "m.h5"
    config = TrainConfig(
        **data_args(tiny_arrays), output=str(output), localizer=str(make_tiny_localizer()),
        epochs=10, teacher_epochs=0, steps_per_epoch=60, batch_size=32, augment_strength=0.1,
        test_fraction=0.25, val_fraction=0.25, seed=TEST_SEED, calibration_draws=1, test_draws=1,
    )  # fmt: skip
    log = []
    report = train(config, log=log.append)
    return output, report, log


@pytest.mark.timeout(300)
def test_localizer_run_writes_a_loadable_localizer(localizer_run):
    from signdigits.classifier import Localizer

    output, result, log = localizer_run
    localizer = Localizer(output)
    assert localizer.info["test_participants"] == result["info"]["test_participants"]
    assert output.with_suffix(".tflite").is_file() and result["serving"]["max_difference"] <= LOCALIZER.tolerance
    assert set(result["info"]["validation"]) >= {"median_iou", "empty_scene_flagged"}
    assert result["environment"]["threads"] == {"intra_op": training.INTRA_OP_THREADS, "inter_op": 1}
    assert any("median IoU" in line for line in log)
    cpu_info = Path("/proc/cpuinfo")
    if cpu_info.is_file() and "model name" in cpu_info.read_text():
        # the processor by name and the instruction sets its kernels are picked by
        name = next(line.split(":", 1)[1].strip() for line in cpu_info.read_text().splitlines()
                    if line.startswith("model name"))  # fmt: skip
        assert result["environment"]["cpu"].startswith(name + " (")
        assert ("avx2" in result["environment"]["cpu"]) == (" avx2" in cpu_info.read_text())
    assert not any(p.name.startswith(".loc.backup") for p in output.parent.iterdir())


@pytest.mark.timeout(600)
def test_smoke_run_writes_model_and_report(trained):
    output, report, log = trained
    assert output.is_file()
    report_dir = report_dir_for(output)
    assert report_dir.name == "m_report"
    for name in ("report.json", "report.md", "confusion_matrix.png", "reliability.png",
                 "training_curves.png"):  # fmt: skip
        assert (report_dir / name).is_file() and (report_dir / name).stat().st_size > 0, name
    assert json.loads((report_dir / "report.json").read_text())["model_file"] == "m.h5"
    assert report["split"]["kind"] == "participant"
    assert set(report["test"]["variants"]) >= {"plain", "mirrored", "webcam", "no hand"}
    assert report["temperature"] > 0
    # the serving file beside it (int8 weights), checked against Keras on the test crops
    assert output.with_suffix(".tflite").is_file() and report["serving"]["file"] == "m.tflite"
    assert report["serving"]["max_difference"] <= CLASSIFIER.tolerance and report["serving"]["inputs"] > 0
    assert "Served as `m.tflite`" in (report_dir / "report.md").read_text()
    assert not [p for p in output.parent.iterdir() if ".part" in p.name or "backup" in p.name]
    assert any("on the test people" in line for line in log)


@pytest.mark.timeout(120)
def test_training_learns(trained):
    """Three shapes, six hundred steps: the training crops are learnt, and the held-out
    people's plain photos are read far above chance (1/3)."""
    _, report, _ = trained
    assert report["history"]["accuracy"][-1] >= 0.9, report["history"]["accuracy"]
    assert report["test"]["variants"]["plain"]["accuracy"] >= 0.55, report["test"]["variants"]["plain"]
    assert report["history"]["best_epoch"] in range(1, len(report["history"]["loss"]) + 1)


@pytest.mark.timeout(300)
def test_a_run_can_start_from_a_trained_classifier(trained, tiny_arrays, make_tiny_localizer, tmp_path):
    """With ``init``, the weights start as that file's and move little (a tenth of the
    learning rate, one step); another network is refused with a sentence."""
    init, report, _ = trained
    config = TrainConfig(**data_args(tiny_arrays), output=str(tmp_path / "go_on.h5"),
                         localizer=str(make_tiny_localizer()), init=str(init), epochs=1, steps_per_epoch=1,
                         batch_size=16, test_fraction=0.25, val_fraction=0.25, seed=TEST_SEED,
                         calibration_draws=1, test_draws=1)  # fmt: skip
    went_on = train(config, log=lambda message: None)
    assert went_on["config"]["learning_rate"] == pytest.approx(
        report["config"]["learning_rate"] * training.INIT_LEARNING_RATE_SHARE
    )
    start, after = (load_model(path)[0].get_weights() for path in (init, tmp_path / "go_on.h5"))
    fresh = build_model(report["config"]["filters"]).get_weights()
    moved = max(float(np.abs(a - b).max()) for a, b in zip(after, start))
    apart = max(float(np.abs(a - b).max()) for a, b in zip(fresh, start))
    assert moved < apart / 10, (moved, apart)
    other = replace(config, output=str(tmp_path / "other.h5"), filters=(8, 16, 32))
    with pytest.raises(training.TrainingError, match="another network"):
        train(other, log=lambda message: None)


@pytest.mark.timeout(300)
def test_distillation_from_a_teacher(tiny_arrays, make_tiny_localizer, tmp_path):
    """With teacher epochs, the six-conv-layer teacher trains first and the model learns
    from it through the Distiller; the report holds both histories."""
    config = TrainConfig(**data_args(tiny_arrays), output=str(tmp_path / "d.h5"),
                         localizer=str(make_tiny_localizer()), epochs=1, teacher_epochs=1,
                         steps_per_epoch=3, batch_size=16, test_fraction=0.25, val_fraction=0.25,
                         calibration_draws=1, test_draws=1)  # fmt: skip
    log = []
    report = train(config, log=log.append)
    assert len(report["teacher_history"]["loss"]) == 1 and len(report["history"]["loss"]) == 1
    assert any(line.startswith("teacher:") for line in log)


@pytest.mark.timeout(120)
def test_trained_model_carries_its_table_and_temperature(trained):
    output, report, _ = trained
    model, table, info = load_model(output)
    assert table == INDEX_TO_DIGIT
    assert info["test_participants"] == report["split"]["test_participants"]
    assert info["temperature"] == pytest.approx(report["temperature"])
    assert tuple(model.input_shape) == (None, 64, 64, 1)


@pytest.mark.timeout(120)
def test_report_split_is_participant_disjoint(trained):
    _, report, _ = trained
    split = report["split"]
    test, val = set(split["test_participants"]), set(split["val_participants"])
    assert test and val and not test & val
    per_person = len(DIGITS) * 3
    assert split["train_images"] + split["val_images"] + split["test_images"] == PARTICIPANTS * per_person
    assert split["test_images"] == per_person * len(test) and split["val_images"] == per_person * len(val)


@pytest.mark.timeout(600)
def test_an_interrupted_run_resumes_to_the_same_weights(tiny_arrays, localizer_run, tmp_path, monkeypatch):
    def config(name, resume=False):
        return LocalizerConfig(**data_args(tiny_arrays), output=str(tmp_path / name), epochs=3,
                               steps_per_epoch=2, batch_size=8, test_fraction=0.25,
                               val_fraction=0.25, resume=resume)  # fmt: skip

    train_localizer(config("whole.h5"), log=lambda m: None)
    original = training.EpochLog.on_epoch_end

    def stop_after_the_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.EpochLog, "on_epoch_end", stop_after_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_localizer(config("cut.h5"), log=lambda m: None)
    assert not (tmp_path / "cut.h5").exists() and training.backup_dir_for(tmp_path / "cut.h5").is_dir()
    monkeypatch.setattr(training.EpochLog, "on_epoch_end", original)
    log = []
    train_localizer(config("cut.h5", resume=True), log=log.append)
    assert sum(line.strip().startswith("epoch") for line in log) == 1  # only the third was left
    shape = {"input_shape": LOCALIZER.input_shape, "outputs": LOCALIZER.outputs, "needs_table": False}
    whole, _, _ = load_model(tmp_path / "whole.h5", **shape)
    resumed, _, _ = load_model(tmp_path / "cut.h5", **shape)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def dataset_with(participants):
    n = len(participants)
    y = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
    return Dataset(np.zeros((n, 64, 64), np.float32), y, np.asarray(participants, dtype=np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("people", [3, 6, 40])
def test_split_indices_by_participant(seed, people):
    rng = np.random.default_rng(seed)
    participants = rng.permutation(np.repeat(np.arange(people), 10))  # rows in any order
    dataset = dataset_with(participants)
    train_idx, val_idx, test_idx, kind = split_indices(dataset, 0.15, 0.12, seed)
    assert kind == "participant"
    parts = [set(participants[idx]) for idx in (train_idx, val_idx, test_idx)]
    assert all(parts)  # every side has someone
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    everything = np.concatenate([train_idx, val_idx, test_idx])
    assert sorted(everything) == list(range(len(participants)))  # each row exactly once


def test_split_is_reproducible():
    dataset = dataset_with(np.repeat(np.arange(20), 10))
    first = split_indices(dataset, 0.15, 0.12, 7)
    second = split_indices(dataset, 0.15, 0.12, 7)
    for a, b in zip(first[:3], second[:3]):
        np.testing.assert_array_equal(a, b)


def test_split_without_participant_ids_is_stratified():
    dataset = dataset_with(np.full(200, -1))
    train_idx, val_idx, test_idx, kind = split_indices(dataset, 0.15, 0.12, 0)
    assert kind.startswith("stratified")
    assert sorted(np.concatenate([train_idx, val_idx, test_idx])) == list(range(200))
    digits = dataset.y.argmax(axis=1)
    assert set(digits[test_idx]) == set(range(10)) and set(digits[val_idx]) == set(range(10))


def test_train_model_help(monkeypatch, capsys):
    """``python train_model.py --help`` (run in-process: TensorFlow is already loaded)."""
    monkeypatch.setattr(sys, "argv", ["train_model.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "train_model.py"), run_name="__main__")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    for option in ("--localizer", "--x", "--y", "--participants", "--output", "--epochs",
                   "--teacher-epochs", "--steps-per-epoch", "--batch-size", "--seed", "--resume"):  # fmt: skip
        assert option in out


def test_train_model_runs_take_each_models_defaults():
    """What is not on the command line takes each run's own default; what is, both runs share."""
    parse_args = runpy.run_path(str(ROOT / "train_model.py"))["parse_args"]
    (classifier,) = parse_args(["--seed", "3", "--localizer-file", "wide.h5"])
    assert (classifier.output, classifier.epochs, classifier.batch_size) == (
        TrainConfig.output, TrainConfig.epochs, TrainConfig.batch_size)
    assert (classifier.seed, classifier.localizer) == (3, "wide.h5")
    (localizer,) = parse_args(["--localizer", "--seed", "3", "--steps-per-epoch", "7"])
    assert isinstance(localizer, LocalizerConfig) and not isinstance(localizer, TrainConfig)
    assert (localizer.output, localizer.epochs, localizer.batch_size) == (
        LocalizerConfig.output, LocalizerConfig.epochs, LocalizerConfig.batch_size)
    assert (localizer.seed, localizer.steps_per_epoch) == (3, 7)
    first, second = parse_args(["--quick", "--seed", "1"])
    assert second.localizer == first.output and first.output != LocalizerConfig.output
    assert (first.seed, second.seed) == (1, 1) and second.epochs < TrainConfig.epochs
    assert first.epochs < LocalizerConfig.epochs and second.test_draws < TrainConfig.test_draws


def test_train_model_reports_dataset_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train_model.py", "--x", str(tmp_path / "x.npy"),
                                      "--output", str(tmp_path / "m.h5")])  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "train_model.py"), run_name="__main__")
    assert exited.value.code == 2
    assert "x.npy is missing" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()
