"""Memory for big batches: 1,000 vs 5,000 images, through the CLI and through the app.

    python benchmarks/batch_memory.py [--small 1000] [--big 5000] [--json memory.json]
                                      [--skip-app]

CLI: ``python -m signdigits predict DIR --csv out.csv`` as a subprocess of a small
wrapper, whose ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that run's peak RSS. App: a
fresh ``streamlit run app.py`` per size on a free loopback port; one browser session
uploads a .zip of the photos on the Batch page and waits for the table; the server's peak
memory is VmRSS of streamlit and its children, sampled every 0.1 s. Photos are copied
(cycling the 1,666 shared ones, distinct names) into a temp folder at run time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, MemorySampler, copy_photos, shared_photos, zip_photos  # noqa: E402

from tests.e2e.launch import CHROMIUM_LAUNCH, streamlit_server  # noqa: E402

WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,"
    " timeout=600).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
)
APP_TIMEOUT_MS = 480_000


def cli_peak(folder: Path, out: Path, extra_env: dict | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **(extra_env or {}))
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "signdigits", "predict",
         str(folder), "--csv", str(out)],
        capture_output=True, text=True, env=env, timeout=660, check=True,
    )  # fmt: skip
    code, peak_kb, seconds = done.stdout.split()
    rows = len(out.read_text().splitlines()) - 1
    return {"exit": int(code), "rows": rows, "peak_rss_mb": round(int(peak_kb) / 1024, 1),
            "seconds": round(float(seconds), 2)}


def app_peak(archive: Path, count: int, log: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with streamlit_server(log) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**CHROMIUM_LAUNCH)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(APP_TIMEOUT_MS)
            page.goto(f"{server.url}/batch")
            page.get_by_text("Results appear here").wait_for()  # model loaded, page drawn
            sampler = MemorySampler(server.process.pid).start()
            before_kb = sampler.current_kb()
            started = time.perf_counter()
            try:
                page.locator(".st-key-batch_files input[type=file]").set_input_files(str(archive))
                page.get_by_text("Download CSV").wait_for()
                page.wait_for_timeout(2000)  # the table reaches the browser
                metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
            finally:
                sampler.stop()
            seconds = time.perf_counter() - started
            context.close()
        finally:
            browser.close()
    images = next((m.split()[-1] for m in metrics if m.startswith("Images")), "?")
    return {"images_shown": images, "zip_mb": round(archive.stat().st_size / 2**20, 1),
            "rss_before_mb": round(before_kb / 1024, 1),
            "peak_rss_mb": round(sampler.peak_rss_kb / 1024, 1),
            "growth_mb": round((sampler.peak_rss_kb - before_kb) / 1024, 1),
            "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--skip-app", action="store_true", help="only the CLI")
    args = parser.parse_args(argv)
    photos = shared_photos()
    figures = {"cli": {}, "app": {}}
    with tempfile.TemporaryDirectory(prefix="signdigits-memory-") as tmp:
        tmp = Path(tmp)
        for count in (args.small, args.big):
            folder = tmp / f"photos{count}"
            copy_photos(photos, count, folder)
            figures["cli"][count] = cli_peak(folder, tmp / f"out{count}.csv")
            print(f"cli {count:>6}: {figures['cli'][count]}", flush=True)
        if not args.skip_app:
            for count in (args.small, args.big):
                archive = zip_photos(photos, count, tmp / f"photos{count}.zip")
                figures["app"][count] = app_peak(archive, count, tmp / f"streamlit{count}.log")
                print(f"app {count:>6}: {figures['app'][count]}", flush=True)

    small, big = args.small, args.big
    print()
    print(f"{'':8s} {'images':>7s} {'peak RSS MB':>12s} {'growth MB':>10s} {'seconds':>8s}")
    for count in (small, big):
        c = figures["cli"][count]
        print(f"{'CLI':8s} {count:7d} {c['peak_rss_mb']:12.1f} {'':>10s} {c['seconds']:8.1f}")
    for count in (small, big) if figures["app"] else ():
        a = figures["app"][count]
        print(f"{'app':8s} {count:7d} {a['peak_rss_mb']:12.1f} {a['growth_mb']:10.1f} {a['seconds']:8.1f}")
    figures["cli_ratio"] = round(figures["cli"][big]["peak_rss_mb"] / figures["cli"][small]["peak_rss_mb"], 2)
    print(f"CLI peak ratio {big}/{small}: {figures['cli_ratio']}")
    if figures["app"]:
        figures["app_ratio"] = round(figures["app"][big]["peak_rss_mb"] / figures["app"][small]["peak_rss_mb"], 2)
        growth = figures["app"][small]["growth_mb"]
        figures["app_growth_ratio"] = round(figures["app"][big]["growth_mb"] / growth, 2) if growth > 0 else None
        print(f"app peak ratio {big}/{small}: {figures['app_ratio']} "
              f"(growth over the idle server: {figures['app_growth_ratio']})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
