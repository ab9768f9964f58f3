"""Commands print only our own lines: no TensorFlow start-up notices, no Keras format notice,
and no TensorFlow at all for ``--help`` of the signdigits command."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
# as a user runs it: no log level of ours in the environment
ENV = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, "PYTHONPATH": str(ROOT)}


def run(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=150)  # fmt: skip


def test_predict_prints_only_our_lines(tmp_path, photo_paths):
    (tmp_path / "good.jpg").write_bytes(photo_paths[0].read_bytes())
    buffer = io.BytesIO()
    Image.new("L", (30, 30), 200).save(buffer, "PNG")
    (tmp_path / "wall.png").write_bytes(buffer.getvalue())
    done = run("-m", "signdigits", "predict", "good.jpg", "wall.png", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr == "wall.png: no hand found\nclassified 1 of 2 images\n"
    assert done.stdout.splitlines()[1].startswith("good.jpg,")


def test_train_model_help_is_quiet():
    done = run(ROOT / "train_model.py", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: ")
    assert done.stderr == ""


def test_saving_a_model_is_quiet(tmp_path):
    code = ("from signdigits.model import build_model, save_model; "
            f"save_model(build_model(filters=(4,)), {str(tmp_path / 'm.h5')!r}, range(10))")
    done = run("-c", code)
    assert done.returncode == 0 and done.stderr == "" and (tmp_path / "m.h5").is_file()


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["build-dataset", "--help"]])
def test_help_imports_no_tensorflow(argv):
    code = ("import sys\nfrom signdigits.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))")
    done = run("-c", code, *argv)
    assert done.stdout.splitlines()[-1] == "[]" and done.stderr == ""


def test_predict_and_evaluate_import_no_tensorflow(photo_paths, built_dataset):
    """The CLI answers through the serving files: TensorFlow is never imported."""
    code = ("import sys\nfrom signdigits.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))")
    done = run("-c", code, "predict", photo_paths[0])
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    done = run("-c", code, "evaluate", "--x", built_dataset / "x.npy", "--limit", "5")
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr


def test_only_start_up_notices_are_dropped():
    """What else reaches file descriptor 2 while TensorFlow is imported is written back."""
    code = ("import os\nfrom signdigits.quiet import start_up_notices_dropped\n"
            "with start_up_notices_dropped():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called'\n"
            "                b' are written to STDERR\\n'\n"
            "                b'I0000 00:00:1795305448.837783    5421 port.cc:153] oneDNN custom ops\\n'\n"
            "                b'a real problem\\n')")
    done = run("-c", code)
    assert done.returncode == 0 and done.stderr == "a real problem\n"
