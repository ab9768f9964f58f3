"""Shared plumbing of the browser tests: a Streamlit server and Debian's chromium.

``server`` runs ``streamlit run app.py`` once per module on a free loopback port, in its
own process group, killed at the end; a module can override ``server_env`` to add
environment variables. ``browser`` is Playwright driving /usr/bin/chromium, and skips
(with the reason) when chromium or the playwright package is missing.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 90_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    """Whether the server at ``url`` answers ``ok`` on ``/_stcore/health``."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
            return answer.read().strip() == b"ok"
    except OSError:
        return False


def settle(page):
    """Wait until the script has finished running and charts have drawn."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"] button')", timeout=WAIT_MS)
    page.wait_for_timeout(800)


class Server(NamedTuple):
    url: str
    process: subprocess.Popen


@contextmanager
def streamlit_server(log_path: Path, extra_env: dict[str, str] | None = None,
                     start_timeout: float = 120):
    """``streamlit run app.py`` on 127.0.0.1:<free port>, on the bundled model (plus
    ``extra_env``); yields a ``Server`` once it is healthy, always stops it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SIGNDIGITS_MODEL"}
    env.update(extra_env or {})
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while not healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start; see {log_path}")
                time.sleep(0.5)
            yield Server(url, process)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


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


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through Playwright (never ``playwright install``)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
