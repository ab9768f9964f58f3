"""Lean serving: the app and the CLI on both runtimes, in the same run, as ratios.

    python benchmarks/serving.py [--sessions 8] [--photos 100] [--cli-photos 1096] [--json serving.json]

Each runtime is chosen with ``SIGNDIGITS_RUNTIME``: ``keras`` (TensorFlow, the baseline)
and ``litert`` (the serving files, the default). For each:

- CLI: ``python -m signdigits predict`` on 1,096 photos, wall time with start-up, peak RSS;
- app start: seconds from ``streamlit run`` to the title in a browser;
- app, one session: the server's peak memory over the page and a 100-photo batch;
- app, 8 sessions of 100 photos at once: the server's peak memory (load_app.py's sessions).

``python -m signdigits bench`` measures single images and batches inside one process.
Photos are copied from ../shared/sign-language-digits into a temp folder at run time.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MemorySampler, copy_photos, shared_photos  # noqa: E402
from batch_memory import cli_peak  # noqa: E402
from load_app import drive  # noqa: E402

from tests.e2e.launch import CHROMIUM_LAUNCH, streamlit_server  # noqa: E402

RUNTIMES = ("keras", "litert")
TITLE_TIMEOUT_MS = 120_000
#: Issue #8's targets for the served runtime: (figure, at most).
TARGETS = {"cli_seconds": 3.0, "cli_peak_mb": 350.0, "title_seconds": 3.0,
           "one_session_peak_mb": 400.0, "sessions_peak_mb": 600.0}  # fmt: skip


def title_seconds(log: Path, env: dict) -> float:
    """From ``streamlit run`` to the app's title in the page (the browser started before)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**CHROMIUM_LAUNCH)
        try:
            page = browser.new_page()
            started = time.perf_counter()
            with streamlit_server(log, env, poll_seconds=0.05) as server:
                page.goto(server.url)
                page.get_by_role("heading", name="signdigits").first.wait_for(timeout=TITLE_TIMEOUT_MS)
                return time.perf_counter() - started
        finally:
            browser.close()


def app_peak_mb(log: Path, env: dict, folders: list[Path]) -> float:
    """The server's peak memory (its processes' VmRSS summed, sampled) while ``folders``
    are classified by one browser session each, all at once."""
    with streamlit_server(log, env) as server:
        sampler = MemorySampler(server.process.pid).start()
        try:
            results = asyncio.run(drive(server.url, folders))
        finally:
            sampler.stop()
    failed = [r.get("error") for r in results if r.get("error") or not r["rows"]]
    if failed:
        raise RuntimeError(f"sessions failed: {failed}")
    return sampler.peak_rss_kb / 1024


def measure(runtime: str, tmp: Path, cli_folder: Path, folders: list[Path]) -> dict:
    env = {"SIGNDIGITS_RUNTIME": runtime}
    cli = cli_peak(cli_folder, tmp / f"{runtime}.csv", env)
    return {
        "cli_seconds": cli["seconds"],
        "cli_peak_mb": cli["peak_rss_mb"],
        "title_seconds": title_seconds(tmp / f"{runtime}-title.log", env),
        "one_session_peak_mb": app_peak_mb(tmp / f"{runtime}-one.log", env, folders[:1]),
        "sessions_peak_mb": app_peak_mb(tmp / f"{runtime}-all.log", env, folders),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--photos", type=int, default=100, help="photos per session")
    parser.add_argument("--cli-photos", type=int, default=1096)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    photos = shared_photos()
    with tempfile.TemporaryDirectory(prefix="signdigits-serving-") as tmp:
        tmp = Path(tmp)
        cli_folder = tmp / "cli"
        copy_photos(photos, args.cli_photos, cli_folder)
        folders = []
        for s in range(args.sessions):
            folders.append(tmp / f"session{s}" / "photos")
            copy_photos(photos, args.photos, folders[-1], start=s * args.photos)
        figures = {runtime: measure(runtime, tmp, cli_folder, folders) for runtime in RUNTIMES}
    base, served = (figures[r] for r in RUNTIMES)
    labels = {"cli_seconds": f"CLI, {args.cli_photos} photos, wall (s)",
              "cli_peak_mb": "CLI peak memory (MB)",
              "title_seconds": "app: streamlit run -> title (s)",
              "one_session_peak_mb": f"app peak, 1 session x {args.photos} (MB)",
              "sessions_peak_mb": f"app peak, {args.sessions} sessions x {args.photos} (MB)"}  # fmt: skip
    print(f"{'measure':<36}{RUNTIMES[0]:>9}{RUNTIMES[1]:>9}{'gain':>8}  target")
    for key, label in labels.items():
        gain = base[key] / served[key]
        print(f"{label:<36}{base[key]:>9.2f}{served[key]:>9.2f}{gain:>7.1f}x  <= {TARGETS[key]:g}")
    figures["gain"] = {key: base[key] / served[key] for key in labels}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    met = all(served[key] <= target for key, target in TARGETS.items())
    print("all targets met" if met else "some targets missed", f"(on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
