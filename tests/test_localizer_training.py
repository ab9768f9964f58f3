"""The localizer's training run (:mod:`signdigits.localizer_training`) on tiny data."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from signdigits import training
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.localizer_training import train_localizer
from signdigits.model import build_localizer, load_model
from signdigits.serving import LOCALIZER
from signdigits.training import LocalizerConfig
from tests.conftest import TEST_SEED, tiny_data_args


@pytest.fixture(scope="module")
def localizer_run(tiny_arrays, tmp_path_factory):
    output = tmp_path_factory.mktemp("localizer") / "loc.h5"
    config = LocalizerConfig(**tiny_data_args(tiny_arrays), output=str(output), epochs=2,
                             steps_per_epoch=3, batch_size=8, test_fraction=0.25, val_fraction=0.25,
                             seed=TEST_SEED)  # fmt: skip
    log = []
    return output, train_localizer(config, log=log.append), log


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


@pytest.mark.timeout(300)
def test_a_run_can_start_from_a_trained_localizer(localizer_run, tiny_arrays, make_tiny_model, tmp_path):
    """With ``init``, the weights start as that localizer's and move little (a tenth of the
    learning rate, one step); a classifier's file is refused with a sentence."""
    init, result, _ = localizer_run
    config = LocalizerConfig(**tiny_data_args(tiny_arrays), output=str(tmp_path / "go_on.h5"), init=str(init),
                             epochs=1, steps_per_epoch=1, batch_size=8, test_fraction=0.25,
                             val_fraction=0.25, seed=TEST_SEED)  # fmt: skip
    went_on = train_localizer(config, log=lambda message: None)
    assert went_on["config"]["learning_rate"] == pytest.approx(
        result["config"]["learning_rate"] * training.INIT_LEARNING_RATE_SHARE
    )
    shape = {"input_shape": LOCALIZER.input_shape, "outputs": LOCALIZER.outputs, "needs_table": False}
    start, after = (load_model(path, **shape)[0].get_weights() for path in (init, tmp_path / "go_on.h5"))
    fresh = build_localizer().get_weights()
    moved = max(float(np.abs(a - b).max()) for a, b in zip(after, start))
    apart = max(float(np.abs(a - b).max()) for a, b in zip(fresh, start))
    assert moved < apart / 10, (moved, apart)
    with pytest.raises(training.TrainingError, match="maps"):
        train_localizer(replace(config, init=str(make_tiny_model(INDEX_TO_DIGIT))), log=lambda message: None)
