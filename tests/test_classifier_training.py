"""The classifier's training run (:mod:`signdigits.classifier_training`) on tiny data:
what it writes, that it learns, ``init``, distillation, and the report's split."""

import json
from dataclasses import replace

import numpy as np
import pytest

from signdigits import report_dir_for
from signdigits.classifier_training import train
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import build_model, load_model
from signdigits.serving import CLASSIFIER
from signdigits.training import INIT_LEARNING_RATE_SHARE, TrainConfig, TrainingError
from tests.conftest import SYNTHETIC_DIGITS as DIGITS
from tests.conftest import SYNTHETIC_PEOPLE as PARTICIPANTS
from tests.conftest import TEST_SEED, tiny_data_args


@pytest.fixture(scope="module")
def trained(tiny_arrays, make_tiny_localizer, tmp_path_factory):
    """A tiny run framed by a localizer that finds the hand filling each photo (a localizer
    trained for a few steps would frame noise)."""
    output = tmp_path_factory.mktemp("run") / "m.h5"
    config = TrainConfig(
        **tiny_data_args(tiny_arrays), output=str(output), localizer=str(make_tiny_localizer()),
        epochs=10, teacher_epochs=0, steps_per_epoch=60, batch_size=32, augment_strength=0.1,
        test_fraction=0.25, val_fraction=0.25, seed=TEST_SEED, calibration_draws=1, test_draws=1,
    )  # fmt: skip
    log = []
    report = train(config, log=log.append)
    return output, report, log


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
    config = TrainConfig(**tiny_data_args(tiny_arrays), output=str(tmp_path / "go_on.h5"),
                         localizer=str(make_tiny_localizer()), init=str(init), epochs=1, steps_per_epoch=1,
                         batch_size=16, test_fraction=0.25, val_fraction=0.25, seed=TEST_SEED,
                         calibration_draws=1, test_draws=1)  # fmt: skip
    went_on = train(config, log=lambda message: None)
    assert went_on["config"]["learning_rate"] == pytest.approx(
        report["config"]["learning_rate"] * INIT_LEARNING_RATE_SHARE
    )
    start, after = (load_model(path)[0].get_weights() for path in (init, tmp_path / "go_on.h5"))
    fresh = build_model(report["config"]["filters"]).get_weights()
    moved = max(float(np.abs(a - b).max()) for a, b in zip(after, start))
    apart = max(float(np.abs(a - b).max()) for a, b in zip(fresh, start))
    assert moved < apart / 10, (moved, apart)
    other = replace(config, output=str(tmp_path / "other.h5"), filters=(8, 16, 32))
    with pytest.raises(TrainingError, match="another network"):
        train(other, log=lambda message: None)


@pytest.mark.timeout(300)
def test_distillation_from_a_teacher(tiny_arrays, make_tiny_localizer, tmp_path):
    """With teacher epochs, the six-conv-layer teacher trains first and the model learns
    from it through the Distiller; the report holds both histories."""
    config = TrainConfig(**tiny_data_args(tiny_arrays), output=str(tmp_path / "d.h5"),
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
