"""The one launcher of a Streamlit server for app.py and of Debian's chromium, shared by the
browser tests (tests/e2e/conftest.py) and the app benchmarks (benchmarks/). It needs
neither pytest nor signdigits.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: Keyword arguments of Playwright's ``chromium.launch``, sync or async API alike.
CHROMIUM_LAUNCH = {
    "executable_path": str(CHROMIUM),
    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
}  # fmt: skip
STOP_SECONDS = 15


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


class Server(NamedTuple):
    url: str
    process: subprocess.Popen


@contextmanager
def streamlit_server(log_path: Path, extra_env: dict[str, str] | None = None,
                     start_timeout: float = 120, poll_seconds: float = 0.5) -> Iterator[Server]:  # fmt: skip
    """``streamlit run app.py`` on 127.0.0.1:<free port> in its own process group, on the
    bundled model (plus ``extra_env``), its output in ``log_path``. Yields a ``Server`` once
    it is healthy (asked every ``poll_seconds``; RuntimeError if it does not get there) and
    always stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "SIGNDIGITS_MODEL"}
    env.update(extra_env or {})
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + start_timeout
            while not healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log_path}")
                time.sleep(poll_seconds)
            yield Server(url, process)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_SECONDS)
