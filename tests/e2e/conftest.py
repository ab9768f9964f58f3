"""Shared plumbing of the browser tests: a Streamlit server and Debian's chromium.

``server`` runs ``streamlit run app.py`` once per module on a free loopback port, in its
own process group, killed at the end (tests/e2e/launch.py, shared with the benchmarks); a
module can override ``server_env`` to add environment variables. ``browser`` is
Playwright driving /usr/bin/chromium, and skips (with the reason) when chromium or the
playwright package is missing. ``screenshot`` writes docs/screenshots/NAME.png only when
asked for (``SIGNDIGITS_SCREENSHOTS=1``), so a test run leaves the tracked tree alone.
"""

import os
from contextlib import contextmanager

import pytest

from tests.e2e.launch import CHROMIUM, CHROMIUM_LAUNCH, ROOT, healthy, streamlit_server

__all__ = ["DESKTOP", "PHONE", "ROOT", "WAIT_MS", "camera_playing", "healthy", "screenshot", "settle"]

WAIT_MS = 90_000
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOTS_ENV = "SIGNDIGITS_SCREENSHOTS"
#: True once every Vega-Lite chart on the page has drawn its canvas.
CHARTS_DRAWN = (
    "[...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')]"
    ".every(chart => chart.querySelector('canvas, svg'))"
)


def screenshot(page, name: str):
    """The viewport as docs/screenshots/``name``.png, only with SIGNDIGITS_SCREENSHOTS=1."""
    if os.environ.get(SCREENSHOTS_ENV) != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # charts lay themselves out
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def settle(page):
    """Wait until the script has finished running and charts have drawn."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"] button')", timeout=WAIT_MS)
    page.wait_for_timeout(800)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra environment for the module's server (override in a module to change it)."""
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_env):
    """The app on a free loopback port for the whole module: ``(url, process)``."""
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log_path, server_env) as running:
        yield running


@contextmanager
def chromium(*extra_args: str):
    """Headless Debian chromium through Playwright (never ``playwright install``), with
    ``extra_args``; skips (with the reason) when chromium or the playwright package is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(**{**CHROMIUM_LAUNCH, "args": [*CHROMIUM_LAUNCH["args"], *extra_args]})
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium for the module."""
    with chromium() as running:
        yield running


def camera_playing(video):
    """Chromium whose camera (Chromium's fake one) plays the Y4M file ``video``, granted
    without asking."""
    return chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={video}")  # fmt: skip
