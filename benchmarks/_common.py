"""Shared pieces of the app benchmarks: photos copied at run time and a memory sampler.
The Streamlit server and chromium come from tests/e2e/launch.py, as in the browser tests.

Nothing here writes into the repository: photos, zips and logs go to a temp folder.
"""

import os
import shutil
import sys
import threading
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: The photos beside a checkout of this repository; they are never committed to it.
SHARED_DATA_DIR = ROOT.parent / "shared" / "sign-language-digits"

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


def predicted_digits(paths) -> dict[str, int]:
    """file name -> digit, from ``Classifier.predict_many`` on the same files."""
    from signdigits.classifier import Classifier

    classifier = Classifier()
    items = [(Path(p).name, str(p)) for p in paths]
    return {p.name: p.digit for p in classifier.predict_many(items)}
