"""What both models' training shares (an interrupted run resumes, shown on the quicker
localizer run), the participant-disjoint split, and ``train_model.py``'s command line."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from signdigits import training
from signdigits.data import Dataset, split_indices
from signdigits.localizer_training import train_localizer
from signdigits.model import load_model
from signdigits.serving import LOCALIZER
from signdigits.training import LocalizerConfig, TrainConfig
from tests.conftest import tiny_data_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_an_interrupted_run_resumes_to_the_same_weights(tiny_arrays, tmp_path, monkeypatch):
    def config(name, resume=False):
        return LocalizerConfig(**tiny_data_args(tiny_arrays), output=str(tmp_path / name), epochs=3,
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
