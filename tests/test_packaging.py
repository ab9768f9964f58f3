"""signdigits is a package: pyproject.toml mirrors requirements.txt, ``pip install .`` gives a
``signdigits`` command that works from any folder with the model and label table inside."""

import os
import re
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

import signdigits

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirements(name: str) -> list[str]:
    """The requirement lines of ``name``: no comments, no ``-r`` includes."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith(("#", "-r "))]


def test_dependencies_are_requirements_txt():
    assert PYPROJECT["project"]["dependencies"] == requirements("requirements.txt")


def test_the_train_extra_is_requirements_train_txt_and_the_app_needs_no_tensorflow():
    assert PYPROJECT["project"]["optional-dependencies"]["train"] == requirements("requirements-train.txt")
    assert "-r requirements.txt" in (ROOT / "requirements-train.txt").read_text()
    assert "-r requirements-train.txt" in (ROOT / "requirements-dev.txt").read_text()
    app_packages = {re.split(r"[<>=\[ ]", line)[0].lower() for line in requirements("requirements.txt")}
    assert not app_packages & {"tensorflow", "keras", "h5py", "tf-keras"}


def test_console_script_is_the_cli_main():
    assert PYPROJECT["project"]["scripts"] == {"signdigits": "signdigits.cli:main"}


def test_bundled_files_are_looked_up_in_the_package_first(tmp_path, monkeypatch):
    package = tmp_path / "site" / "signdigits"
    package.mkdir(parents=True)
    monkeypatch.setattr(signdigits, "PACKAGE_DIR", package)
    assert signdigits.bundled_file("model.h5") == tmp_path / "site" / "model.h5"  # a checkout
    (package / "model.h5").write_bytes(b"")
    assert signdigits.bundled_file("model.h5") == package / "model.h5"  # installed


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_install_then_the_command_from_another_folder(tmp_path):
    """A throwaway venv that sees the installed requirements; the checkout is not on its path."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python, command = env_dir / "bin" / "python", env_dir / "bin" / "signdigits"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    installed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--quiet", ROOT], env=env,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args):
        return subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)

    done = run(command, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: signdigits "), done.stderr
    done = run(python, "-c", "import signdigits as s, signdigits.labels as l; "
                             "print(s.DEFAULT_MODEL_PATH, s.DEFAULT_MODEL_PATH.is_file(), l.INDEX_TO_DIGIT)")
    assert done.returncode == 0, done.stderr
    model_path, exists, table = done.stdout.split(" ", 2)
    assert Path(model_path).is_relative_to(env_dir) and exists == "True"
    assert re.fullmatch(r"\(9, 0, 7, 6, 1, 8, 4, 3, 2, 5\)\n", table)
