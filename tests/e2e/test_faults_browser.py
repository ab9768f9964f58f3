"""The app survives a user who leaves mid-batch, and writes nothing to disk.

A batch of 240 photos is started on the Batch page and the browser page is closed while the server
provably holds half-way through it (signdigits.sources' test hook); the server still
answers ``/_stcore/health``, and a new page that runs the same batch gets the same rows as
``python -m signdigits predict --csv``. Neither the repository, the uploaded folder nor
the server's temp folder changes.

One server for the module (own process group, loopback only, killed at the end), started
by conftest.py; photos are copied at run time from ../shared into a temp folder.
"""

import csv
import io
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, WAIT_MS, healthy, settle

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PHOTOS = 240
SKIPPED_PARTS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", "runs", "e2e-artifacts"}


def snapshot(root: Path, skip=frozenset()) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file under ``root`` (``skip``: folder names)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = Path(folder) / name
            try:
                info = path.stat()
            except OSError:
                continue
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server_tmp")


@pytest.fixture(scope="module")
def pause_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pause") / "paused"


@pytest.fixture(scope="module")
def server_env(server_tmp, pause_file) -> dict[str, str]:
    """The server's TMPDIR is an empty folder we can inspect; its first batch holds before
    reading the middle photo, having created ``pause_file``, until that file is removed."""
    return {"TMPDIR": str(server_tmp), "SIGNDIGITS_TEST_PAUSE_FILE": str(pause_file),
            "SIGNDIGITS_TEST_PAUSE_AT": str(PHOTOS // 2)}


def appears(path: Path, seconds: float = WAIT_MS / 1000) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


@pytest.fixture(scope="module")
def batch_folder(photo_paths, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("upload") / "photos"
    folder.mkdir()
    for i in range(PHOTOS):
        path = photo_paths[(i * 7) % len(photo_paths)]  # spread over all ten digits
        shutil.copyfile(path, folder / f"{i:04d}_{path.parent.name}_{path.name}")
    return folder


def open_batch_tab(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/batch")
    return context, page


def cli_rows(folder: Path, classifier, tmp_path, monkeypatch) -> dict[str, dict]:
    from signdigits import classifier as classifier_module
    from signdigits.cli import main

    monkeypatch.setattr(classifier_module, "Classifier", lambda model_path, localizer_path: classifier)
    out = tmp_path / "cli.csv"
    assert main(["predict", str(folder), "--csv", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        return {Path(row["file"]).name: row for row in csv.DictReader(fh)}


def test_closing_the_page_mid_batch(browser, server, batch_folder, server_tmp, pause_file,
                                    classifier, tmp_path, monkeypatch):  # fmt: skip
    url, process = server
    repo_before = snapshot(ROOT, SKIPPED_PARTS)
    upload_before = snapshot(batch_folder)

    # start the batch and leave while the server holds half-way through it
    context, page = open_batch_tab(browser, url)
    try:
        page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(batch_folder))
        assert appears(pause_file), "the batch never reached its middle photo"
        assert not page.get_by_text("Download CSV").is_visible()
    finally:
        context.close()
        pause_file.unlink(missing_ok=True)  # the server's run goes on, with nobody watching
    assert healthy(url) and process.poll() is None

    # a new page runs the same batch to the end
    context, page = open_batch_tab(browser, url)
    try:
        page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(batch_folder))
        page.get_by_text("Download CSV").wait_for()
        settle(page)
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download CSV").click()
        text = Path(download_info.value.path()).read_text(encoding="utf-8")
    finally:
        context.close()
    app_rows = {Path(row["file"]).name: row for row in csv.DictReader(io.StringIO(text))}

    expected = cli_rows(batch_folder, classifier, tmp_path, monkeypatch)
    assert len(app_rows) == PHOTOS and sorted(app_rows) == sorted(expected)
    assert sum(row["error"] == "" for row in expected.values()) >= PHOTOS - 2  # nearly all have a hand found
    for name, row in expected.items():
        got = app_rows[name]
        assert got["digit"] == row["digit"] and got["error"] == row["error"], name
        for column in ["confidence", *(f"p{d}" for d in range(10))]:
            if row[column]:  # empty where no hand was found
                assert float(got[column]) == pytest.approx(float(row[column]), abs=2e-6), name

    # nothing was written: not in the repository, the uploaded folder, or the server's TMPDIR
    assert healthy(url)
    assert snapshot(ROOT, SKIPPED_PARTS) == repo_before
    assert snapshot(batch_folder) == upload_before
    assert snapshot(server_tmp) == {}
