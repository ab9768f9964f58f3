"""Training: a smoke run on a tiny synthetic set, the participant-disjoint split, the CLI's --help."""

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from signdigits import report_dir_for
from signdigits.data import Dataset
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import load_model
from signdigits.training import TrainConfig, split_indices, train

PARTICIPANTS = 6
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_arrays(tmp_path_factory):
    """60 random 64x64 images: 6 participants x the 10 digits, saved like build-dataset does."""
    folder = tmp_path_factory.mktemp("tiny_dataset")
    rng = np.random.default_rng(0)
    n = PARTICIPANTS * 10
    x = rng.random((n, 64, 64), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
    participants = np.repeat(np.arange(PARTICIPANTS, dtype=np.int64) + 100, 10)
    paths = {}
    for name, array in (("x", x), ("y", y), ("participants", participants)):
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], array)
    return paths


@pytest.fixture(scope="module")
def trained(tiny_arrays, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "m.h5"
    config = TrainConfig(
        x_path=str(tiny_arrays["x"]),
        y_path=str(tiny_arrays["y"]),
        participants_path=str(tiny_arrays["participants"]),
        output=str(output),
        epochs=1,
        teacher_epochs=1,
        batch_size=16,
    )
    log = []
    report = train(config, log=log.append)
    return output, report, log


@pytest.mark.timeout(240)
def test_smoke_run_writes_model_and_report(trained):
    output, report, log = trained
    assert output.is_file()
    report_dir = report_dir_for(output)
    assert report_dir.name == "m_report"
    for name in ("report.json", "report.md", "confusion_matrix.png", "training_curves.png"):
        assert (report_dir / name).is_file() and (report_dir / name).stat().st_size > 0, name
    assert json.loads((report_dir / "report.json").read_text())["model_file"] == "m.h5"
    assert report["split"]["kind"] == "participant"
    assert 0.0 <= report["test"]["accuracy"] <= 1.0
    assert not [p for p in output.parent.iterdir() if ".part" in p.name]
    assert any("test accuracy" in line for line in log)


@pytest.mark.timeout(120)
def test_trained_model_loads_safely(trained):
    output, report, _ = trained
    model, table, info = load_model(output)
    assert table == INDEX_TO_DIGIT
    assert info["test_participants"] == report["split"]["test_participants"]
    assert tuple(model.input_shape) == (None, 64, 64, 1)


@pytest.mark.timeout(120)
def test_report_split_is_participant_disjoint(trained):
    _, report, _ = trained
    split = report["split"]
    test, val = set(split["test_participants"]), set(split["val_participants"])
    assert test and val and not test & val
    assert split["train_images"] + split["val_images"] + split["test_images"] == PARTICIPANTS * 10
    assert split["test_images"] == 10 * len(test) and split["val_images"] == 10 * len(val)


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
    for option in ("--x", "--y", "--participants", "--output", "--epochs", "--teacher-epochs",
                   "--batch-size", "--seed"):  # fmt: skip
        assert option in out


def test_train_model_reports_dataset_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train_model.py", "--x", str(tmp_path / "x.npy"),
                                      "--output", str(tmp_path / "m.h5")])  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "train_model.py"), run_name="__main__")
    assert exited.value.code == 2
    assert "x.npy is missing" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()
