"""The README's two set-up commands are the ones CI and users run."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def indented_commands() -> list[str]:
    return re.findall(r"^    (pip install .+)$", README, flags=re.MULTILINE)


def test_readme_has_the_app_and_the_test_command():
    commands = indented_commands()
    assert "pip install -r requirements.txt && streamlit run app.py" in commands
    assert any(c.startswith("pip install -r requirements-dev.txt && python -m pytest") for c in commands)


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run's own extraction of the command finds the README's, and runs what it found."""
    printed = subprocess.run(["bash", ".ci/run", "--print-test-command"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert printed.endswith("\n") and printed.strip() in indented_commands()
    assert printed.startswith("pip install -r requirements-dev.txt && python -m pytest")
    assert 'bash -c "$test_command"' in (ROOT / ".ci" / "run").read_text()


def test_requirements_pin_compatible_ranges():
    for name in ("requirements.txt", "requirements-train.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            if line and not line.startswith(("#", "-r ")):
                assert ">=" in line and "<" in line, f"{name}: {line!r} needs a compatible version range"
