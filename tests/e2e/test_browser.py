"""The real app in a real browser: `streamlit run app.py` driven by Debian's chromium.

One server for the module (own process group, loopback only, killed at the end). Each
test also writes a screenshot of its page to docs/screenshots/.
"""

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 90_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free loopback port; yields its URL, stops it at the end."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "streamlit.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "SIGNDIGITS_MODEL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server)
    page.get_by_role("tab", name="One photo").wait_for()
    yield page
    context.close()


@pytest.fixture(scope="module")
def confident_photos(classifier, photo_paths) -> dict[int, Path]:
    """For each digit, one photo the bundled model reads right with confidence >= 0.8."""
    found = {}
    for path in photo_paths:
        digit = int(path.parent.name)
        if digit not in found:
            prediction = classifier.predict(path)
            if prediction.digit == digit and prediction.confidence >= 0.8:
                found[digit] = path
    return found


def settle(page):
    """Wait until the script has finished running and charts have drawn."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"] button')", timeout=WAIT_MS)
    page.wait_for_timeout(800)


def screenshot(page, name: str, width: int = 1280):
    """The whole page (Streamlit scrolls inside its main block, so grow the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(500)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(int(height), 3000)})
    page.wait_for_timeout(1500)  # charts lay themselves out again
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def shown_digit(page) -> str:
    digit = page.locator(".sd-digit").first
    digit.wait_for(state="visible")
    return digit.inner_text().strip()


def test_upload_a_photo_and_read_the_digit(page, confident_photos):
    path = confident_photos.get(5) or next(iter(confident_photos.values()))
    page.locator(".st-key-photo input[type=file]").set_input_files(str(path))
    assert shown_digit(page) == path.parent.name
    page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
    settle(page)
    screenshot(page, "one_photo")
    screenshot(page, "one_photo_phone", width=390)


def test_draw_on_the_canvas_and_get_an_answer(page):
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    left, top = box["x"], box["y"]
    for start, end in [((150, 330), (150, 170)), ((185, 330), (185, 90)), ((215, 330), (220, 70)),
                       ((245, 330), (255, 95)), ((270, 330), (290, 140))]:
        page.mouse.move(left + start[0], top + start[1])
        page.mouse.down()
        for step in range(1, 11):
            x = start[0] + (end[0] - start[0]) * step / 10
            y = start[1] + (end[1] - start[1]) * step / 10
            page.mouse.move(left + x, top + y)
        page.mouse.up()
    assert shown_digit(page) in list("0123456789")
    page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
    settle(page)
    screenshot(page, "draw")


def test_batch_of_a_folder_with_one_corrupt_file(page, confident_photos, photo_paths, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photo_paths[::55][:29]:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is no photo")
    page.get_by_role("tab", name="Batch").click()
    page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(folder))
    page.get_by_text("Download CSV").wait_for()
    settle(page)
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("Images" in m and "30" in m for m in metrics), metrics
    assert any("Unreadable" in m and "1" in m for m in metrics), metrics
    screenshot(page, "batch")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert len(rows) == 30
    errors = [row for row in rows if row["error"]]
    assert [Path(row["file"]).name for row in errors] == ["broken.jpg"]
    assert all(row["digit"] in list("0123456789") for row in rows if not row["error"])


def test_model_page_shows_the_report(page):
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("Accuracy").first.wait_for()
    settle(page)
    screenshot(page, "model")
