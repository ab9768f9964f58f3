"""The command line as ``pip install -r requirements.txt`` leaves it: no TensorFlow, Keras
or h5py (``tests/without_tensorflow`` makes them unimportable). Reading photos works; what
needs the train extra says so in one line with the install command, never a traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signdigits import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = Path(__file__).resolve().parent / "without_tensorflow"
INSTALL_HINT = "pip install -r requirements-train.txt"

pytestmark = pytest.mark.timeout(300)


def run(*args, cwd, **variables):
    env = {**os.environ, **variables, "PYTHONPATH": f"{WITHOUT_TENSORFLOW}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip


def one_error_line(done) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and INSTALL_HINT in lines[0], done.stderr
    return lines[0]


def test_tensorflow_is_really_missing_there(tmp_path):
    done = run("-c", "import tensorflow", cwd=tmp_path)
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr


def test_predict_reads_a_photo(tmp_path):
    done = run("-m", "signdigits", "predict", ROOT / "examples" / "3.jpg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.startswith("file,digit,") and row.split(",")[1] == "3"


def test_training_says_what_to_install(tmp_path):
    assert "TensorFlow" in one_error_line(run(ROOT / "train_model.py", "--localizer", cwd=tmp_path))


def test_a_model_without_its_serving_file_says_what_to_install(tmp_path):
    own = tmp_path / "own.h5"
    shutil.copyfile(DEFAULT_MODEL_PATH, own)
    line = one_error_line(run("-m", "signdigits", "predict", "--model", own, ROOT / "examples" / "3.jpg",
                              cwd=tmp_path))  # fmt: skip
    assert "own.h5 has no current serving file" in line
    assert not own.with_suffix(".tflite").exists()


def test_the_keras_runtime_and_bench_say_what_to_install(tmp_path):
    keras_run = run("-m", "signdigits", "predict", ROOT / "examples" / "3.jpg", cwd=tmp_path,
                    SIGNDIGITS_RUNTIME="keras")  # fmt: skip
    assert "Keras runtime" in one_error_line(keras_run)
    assert "Keras runtime" in one_error_line(run("-m", "signdigits", "bench", cwd=tmp_path))
