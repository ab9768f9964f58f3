"""Shared pieces of the app benchmarks: photos copied at run time, a Streamlit server on a
free loopback port (own process group, always stopped), and a memory sampler for it.

Nothing here writes into the repository: photos, zips and logs go to a temp folder.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: The photos beside a checkout of this repository; they are never committed to it.
SHARED_DATA_DIR = ROOT.parent / "shared" / "sign-language-digits"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOG_LINE = "signdigits: loading the model from"


def shared_photos() -> list[Path]:
    photos = sorted(SHARED_DATA_DIR.glob("*/*.JPG"))
    if not photos:
        sys.exit(f"skipped: dataset folder {SHARED_DATA_DIR} is absent or empty")
    return photos


def copy_photos(photos, count: int, folder: Path, start: int = 0) -> list[Path]:
    """``count`` photos (cycling the shared set from ``start``) under distinct names."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        source = photos[(start + i) % len(photos)]
        target = folder / f"{i:05d}_{source.parent.name}_{source.name}"
        shutil.copyfile(source, target)
        out.append(target)
    return out


def zip_photos(photos, count: int, path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            source = photos[i % len(photos)]
            archive.write(source, f"photos/{i:05d}_{source.parent.name}_{source.name}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return found


class MemorySampler:
    """Samples VmRSS of a process and its children (sum) every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = 0
        self.hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current_kb(self) -> int:
        return sum(_status_kb(p, "VmRSS") for p in _descendants(self.pid))

    def _run(self):
        while not self._stop.is_set():
            self.peak_rss_kb = max(self.peak_rss_kb, self.current_kb())
            self.hwm_kb = max(self.hwm_kb, sum(_status_kb(p, "VmHWM") for p in _descendants(self.pid)))
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


class Server:
    """``streamlit run app.py`` on 127.0.0.1:<free port>; a context manager that always stops it."""

    def __init__(self, log_path: Path, start_timeout: float = 120):
        self.log_path, self.start_timeout = Path(log_path), start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as answer:
                return answer.read().strip() == b"ok"
        except OSError:
            return False

    def __enter__(self):
        self._log = self.log_path.open("w")
        env = {k: v for k, v in os.environ.items() if k != "SIGNDIGITS_MODEL"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        try:
            while not self.healthy():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {self.log_path}")
                time.sleep(0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log.close()
        return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def predicted_digits(paths) -> dict[str, int]:
    """file name -> digit, from ``Classifier.predict_many`` on the same files."""
    from signdigits.classifier import Classifier

    classifier = Classifier()
    items = [(Path(p).name, str(p)) for p in paths]
    return {p.name: p.digit for p in classifier.predict_many(items)}
