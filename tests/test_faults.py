"""Faults with real processes: an interrupted ``predict --csv`` and an interrupted
``train_model.py`` never leave a partial or half-written file where the user asked for one
(nor temp debris beside it), and a repeated training run with the same seed reproduces its
report.

The photo folder is built at run time in a temp dir from ../shared/sign-language-digits
(skipped when absent); nothing from it is ever written into the repository.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from signdigits import DEFAULT_MODEL_PATH, report_dir_for
from tests.conftest import TEST_SEED, TINY_BANK

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def _default_sigint():
    """In the child: SIGINT does what it does in a terminal, even when the test run itself was
    started in the background (a shell starts background jobs with SIGINT ignored, and Python
    then never turns it into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Running:
    """A subprocess in its own session whose stdout and stderr are collected by threads."""

    def __init__(self, args, cwd, env=None):
        self.process = subprocess.Popen(
            args, cwd=cwd, env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=_default_sigint,
        )  # fmt: skip
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._drain, args=(stream, into), daemon=True)
                        for stream, into in ((self.process.stdout, self.out),
                                             (self.process.stderr, self.err))]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _drain(stream, into):
        while chunk := stream.read1(65536):
            into.append(chunk)

    def text(self, which="err") -> str:
        return b"".join(self.err if which == "err" else self.out).decode(errors="replace")

    def wait_for(self, predicate, timeout: float) -> bool:
        """Poll ``predicate(self)`` until it holds (True) or the process ends / time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if predicate(self):
                return True
            time.sleep(0.02)
        return False

    def finish(self, timeout: float = 60) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            for thread in self.threads:
                thread.join(timeout=10)
        return code

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.finish()


# ---------------------------------------------------------------- predict --csv


@pytest.fixture(scope="module")
def photo_folder(shared_dir, tmp_path_factory) -> Path:
    """Every shared photo copied once into a temp folder (1,666 files; ~3 s of predicting)."""
    folder = tmp_path_factory.mktemp("faults") / "photos"
    folder.mkdir()
    for path in sorted(shared_dir.glob("*/*.JPG")):
        shutil.copyfile(path, folder / f"{path.parent.name}_{path.name}")
    return folder


@pytest.fixture(scope="module")
def reference_csv(photo_folder, classifier, tmp_path_factory) -> str:
    """The CSV of an uninterrupted run (``cli.main`` in-process, the session's model)."""
    from signdigits import classifier as classifier_module
    from signdigits.cli import main

    out = tmp_path_factory.mktemp("reference") / "out.csv"
    real = classifier_module.Classifier
    classifier_module.Classifier = lambda model_path, localizer_path: classifier
    try:
        assert main(["predict", str(photo_folder), "--csv", str(out)]) == 0
    finally:
        classifier_module.Classifier = real
    return out.read_text(encoding="utf-8")


def predict(folder: Path, workdir: Path, pause_file: Path | None = None) -> Running:
    """``predict FOLDER --csv out.csv`` in ``workdir``; with ``pause_file``, the run holds
    before reading the middle photo, having created that file (signdigits.sources' hook)."""
    hold = {"SIGNDIGITS_TEST_PAUSE_FILE": str(pause_file),
            "SIGNDIGITS_TEST_PAUSE_AT": str(len(os.listdir(folder)) // 2)} if pause_file else {}
    return Running([sys.executable, "-m", "signdigits", "predict", str(folder),
                    "--csv", "out.csv"], cwd=workdir, env=hold)  # fmt: skip


def interrupt_while_held(run: Running, how: signal.Signals, pause_file: Path) -> int:
    """Send ``how`` while the run provably holds half-way, then let it go on."""
    try:
        assert run.wait_for(lambda run: pause_file.exists(), timeout=150), run.text()
        os.killpg(run.process.pid, how)
        pause_file.unlink()
        return run.finish()
    finally:
        run.kill()


@pytest.mark.timeout(300)
def test_interrupted_predict_leaves_no_partial_csv(photo_folder, reference_csv, tmp_path):
    total = len(list(photo_folder.iterdir()))
    killed, interrupted = tmp_path / "killed", tmp_path / "interrupted"
    killed.mkdir()
    interrupted.mkdir()
    # killed over the results of an earlier run, interrupted with no earlier file
    old = b"file,digit\nearlier.jpg,3\n"
    (killed / "out.csv").write_bytes(old)
    pause_files = {how: tmp_path / f"{how.name}.paused" for how in (signal.SIGKILL, signal.SIGINT)}
    runs = {how: predict(photo_folder, workdir, pause_files[how])  # both at once: one TF start-up
            for how, workdir in ((signal.SIGKILL, killed), (signal.SIGINT, interrupted))}
    codes = {how: interrupt_while_held(run, how, pause_files[how]) for how, run in runs.items()}

    # SIGKILL half-way: the earlier results stay exactly as they were, no debris
    assert codes[signal.SIGKILL] == -signal.SIGKILL
    assert sorted(os.listdir(killed)) == ["out.csv"]  # no temp files, hidden or not
    assert (killed / "out.csv").read_bytes() == old

    # SIGINT half-way: no file at all, a clear message, no traceback
    run = runs[signal.SIGINT]
    assert codes[signal.SIGINT] == 130, run.text()
    assert "interrupted" in run.text() and "Traceback" not in run.text()
    assert os.listdir(interrupted) == []

    # the rerun gives exactly the rows of an uninterrupted run
    run = predict(photo_folder, killed)
    try:
        assert run.finish(timeout=150) == 0, run.text()
    finally:
        run.kill()
    assert os.listdir(killed) == ["out.csv"]
    rerun = (killed / "out.csv").read_text(encoding="utf-8")
    assert len(rerun.splitlines()) == total + 1

    def rows(text):  # file names differ (absolute vs given path): compare rows by name
        return {Path(line.split(",", 1)[0]).name: line.split(",", 1)[1]
                for line in text.splitlines()[1:]}

    assert rows(rerun) == rows(reference_csv)


def test_failed_commit_leaves_nothing(tmp_path, monkeypatch):
    """An error while moving the rows into place (disk full, say) removes the .part file."""
    from signdigits import cli

    target = cli.AtomicCsv(tmp_path / "out.csv")
    target.stream.write("file,digit\n")

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        target.commit()
    target.close()
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- train_model.py


def start_training(arrays, output: Path, localizer: Path) -> Running:
    return Running([sys.executable, str(ROOT / "train_model.py"),
                    "--x", str(arrays["x"]), "--y", str(arrays["y"]),
                    "--participants", str(arrays["participants"]), "--scenes", str(arrays["scenes"]),
                    "--backgrounds", str(TINY_BANK),
                    "--output", str(output),
                    "--localizer-file", str(localizer), "--epochs", "2000",
                    "--steps-per-epoch", "2", "--batch-size", "8"],
                   cwd=output.parent)  # fmt: skip


def epochs_running(run: Running) -> bool:
    text = run.text("out")
    return "model: " in text and text.count("  epoch ") >= 2


@pytest.mark.timeout(240)
def test_killed_training_keeps_the_good_model(tiny_arrays, make_tiny_localizer, tmp_path):
    """SIGKILL and SIGINT (two runs at once) while the model's epochs run."""
    from signdigits.model import load_model

    localizer = make_tiny_localizer()
    good = DEFAULT_MODEL_PATH.read_bytes()  # a good model from an earlier run
    outputs, runs = {}, {}
    for how in (signal.SIGKILL, signal.SIGINT):
        outputs[how] = tmp_path / how.name / "model.h5"
        outputs[how].parent.mkdir()
        outputs[how].write_bytes(good)
    try:
        for how, output in outputs.items():
            runs[how] = start_training(tiny_arrays, output, localizer)
        codes = {}
        for how, run in runs.items():
            assert run.wait_for(epochs_running, timeout=150), run.text("out") + run.text()
            os.killpg(run.process.pid, how)
            codes[how] = run.finish()
    finally:
        for run in runs.values():
            run.kill()
    assert codes[signal.SIGKILL] == -signal.SIGKILL
    run = runs[signal.SIGINT]
    assert codes[signal.SIGINT] == 130, run.text()
    assert "was left as it was" in run.text()
    assert "Traceback" not in run.text() + run.text("out")
    for how, output in outputs.items():
        assert "on the test people" not in runs[how].text("out")  # stopped while epochs ran
        # no temp files, no report: only the hidden backup that --resume goes on from
        assert sorted(os.listdir(output.parent)) == [".model.backup.model", "model.h5"]
        # whole files to resume from (a kill mid-write leaves at most a hidden temporary)
        record = json.loads((output.parent / ".model.backup.model" / "record.json").read_text())
        assert record["latest"]["epochs"] >= 1
        assert output.read_bytes() == good
        _, table, _ = load_model(output)
        assert sorted(table) == list(range(10))


# ---------------------------------------------------------------- reproducibility


@pytest.mark.timeout(600)
def test_same_seed_reproduces_the_report_repeated_or_resumed(tiny_arrays, make_tiny_localizer, tmp_path):
    """One seed, three runs: straight through, interrupted after its second epoch then
    resumed with ``resume=True`` (its first two epochs a repeat of the first run's), and the
    same with the latest backup cut off mid-write (it goes on from the one before). All give
    equal report.json (but for timing, command, output path and the resume flag) and equal
    weights."""
    from signdigits.classifier_training import train
    from signdigits.model import load_model
    from signdigits.training import TrainConfig, backup_dir_for

    def interrupt_after(epoch_lines):
        seen = []

        def log(message):
            seen.append(message) if message.strip().startswith("epoch") else None
            if len(seen) == epoch_lines:
                raise KeyboardInterrupt

        return log

    localizer = str(make_tiny_localizer())
    reports, weights = [], []
    for run, stop_after in (("first", None), ("cut", 2), ("cut off mid-write", 2)):
        output = tmp_path / run / "m.h5"
        config = TrainConfig(
            x_path=str(tiny_arrays["x"]), y_path=str(tiny_arrays["y"]),
            participants_path=str(tiny_arrays["participants"]), scenes_dir=str(tiny_arrays["scenes"]),
            backgrounds=TINY_BANK,
            output=str(output), localizer=localizer, epochs=3, steps_per_epoch=3, batch_size=16,
            seed=3 + TEST_SEED, test_fraction=0.25, val_fraction=0.25, calibration_draws=1, test_draws=1,
        )  # fmt: skip
        backup = backup_dir_for(output).with_name(backup_dir_for(output).name + ".model")
        if stop_after:
            with pytest.raises(KeyboardInterrupt):
                train(config, log=interrupt_after(stop_after))
            assert not output.exists() and backup.is_dir()
            config.resume = True
        if run == "cut off mid-write":
            latest = backup / "latest.weights.h5"
            latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
        train(config, log=lambda message: None)
        assert not backup.exists()  # removed once the run is complete
        report = json.loads((report_dir_for(output) / "report.json").read_text())
        for key in ("training_seconds", "total_seconds"):
            report.pop(key)
        for key in ("command", "output", "resume"):
            report["config"].pop(key)
        reports.append(report)
        weights.append(load_model(output)[0].get_weights())
    for report, weight in zip(reports[1:], weights[1:]):
        assert report == reports[0]
        assert len(weight) == len(weights[0])
        for a, b in zip(weight, weights[0]):
            np.testing.assert_array_equal(a, b)
