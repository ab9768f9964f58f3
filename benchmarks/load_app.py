"""Load benchmark: eight browser sessions batch-classify 100 photos each, at once.

    python benchmarks/load_app.py [--sessions 8] [--photos 100] [--json load.json]

One ``streamlit run app.py`` on a free loopback port and one Debian chromium with one
context per session, all driven concurrently (Playwright's async API). Each session opens
the Batch page, uploads its own folder of photos (copied at run time from
../shared/sign-language-digits into a temp folder), waits for the results and downloads
the CSV. Every row's digit is checked against ``Classifier.predict_many`` on the same file.
Prints wall time, the server's peak memory (VmRSS of streamlit and its children, sampled;
and their VmHWM) and how often the model was loaded (the app's log line). Bounded: every
wait has a timeout, and the server and browser are stopped even on failure.
"""

import argparse
import asyncio
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOG_LINE, MemorySampler, copy_photos, predicted_digits, shared_photos  # noqa: E402

from tests.e2e.launch import CHROMIUM_LAUNCH, healthy, streamlit_server  # noqa: E402

SESSION_TIMEOUT_MS = 300_000  # one session may take at most 5 minutes


async def session(browser, url: str, folder: Path, index: int) -> dict:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    started = time.perf_counter()
    context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                        accept_downloads=True)
    try:
        page = await context.new_page()
        page.set_default_timeout(SESSION_TIMEOUT_MS)
        await page.goto(f"{url}/batch")
        await page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(folder))
        await page.get_by_text("Download CSV").wait_for()
        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Download CSV").click()
        download = await download_info.value
        text = Path(await download.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        return {"session": index, "rows": rows, "seconds": time.perf_counter() - started}
    except PlaywrightTimeout as exc:
        return {"session": index, "rows": [], "seconds": time.perf_counter() - started,
                "error": f"timeout: {exc}"}
    finally:
        await context.close()


async def drive(url: str, folders: list[Path]) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**CHROMIUM_LAUNCH)
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(session(browser, url, f, i) for i, f in enumerate(folders))),
                timeout=SESSION_TIMEOUT_MS / 1000 + 60,
            )
        finally:
            await browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--photos", type=int, default=100, help="photos per session")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    photos = shared_photos()

    with tempfile.TemporaryDirectory(prefix="signdigits-load-") as tmp:
        tmp = Path(tmp)
        folders, files = [], []
        for s in range(args.sessions):  # distinct photos per session where the set allows
            folder = tmp / f"session{s}" / "photos"
            files += copy_photos(photos, args.photos, folder, start=s * args.photos)
            folders.append(folder)
        expected = predicted_digits(files)  # also warms nothing in the server: other process

        log = tmp / "streamlit.log"
        with streamlit_server(log) as server:
            sampler = MemorySampler(server.process.pid).start()
            idle_kb = sampler.current_kb()
            try:
                started = time.perf_counter()
                results = asyncio.run(drive(server.url, folders))
                wall = time.perf_counter() - started
            finally:
                sampler.stop()
            still_healthy = healthy(server.url)
            loads = log.read_text(errors="replace").count(LOG_LINE)

    rows = [row for result in results for row in result["rows"]]
    matches = sum(1 for row in rows if row["digit"] != "" and
                  int(row["digit"]) == expected.get(Path(row["file"]).name))
    figures = {
        "sessions": args.sessions,
        "photos_per_session": args.photos,
        "rows": len(rows),
        "rows_expected": args.sessions * args.photos,
        "digits_matching_predict_many": matches,
        "wall_seconds": round(wall, 2),
        "session_seconds": [round(r["seconds"], 2) for r in results],
        "session_errors": [r.get("error") for r in results if r.get("error")],
        "server_rss_before_mb": round(idle_kb / 1024, 1),
        "server_peak_rss_mb": round(sampler.peak_rss_kb / 1024, 1),
        "server_vmhwm_mb": round(sampler.hwm_kb / 1024, 1),
        "model_loads": loads,
        "server_healthy_after": still_healthy,
    }
    print(f"{'sessions x photos':28s} {args.sessions} x {args.photos}")
    print(f"{'rows returned':28s} {len(rows)} of {figures['rows_expected']}")
    print(f"{'digits = predict_many':28s} {matches} of {figures['rows_expected']}")
    print(f"{'wall time':28s} {wall:.1f} s (sessions {min(figures['session_seconds'])}"
          f"-{max(figures['session_seconds'])} s)")
    print(f"{'server RSS before (MB)':28s} {figures['server_rss_before_mb']}")
    print(f"{'server peak RSS (MB)':28s} {figures['server_peak_rss_mb']} (sampled every 0.1 s)")
    print(f"{'server VmHWM (MB)':28s} {figures['server_vmhwm_mb']}")
    print(f"{'model loads (log lines)':28s} {loads}")
    print(f"{'server healthy after':28s} {still_healthy}")
    for error in figures["session_errors"]:
        print("session error:", error)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = matches == figures["rows_expected"] and loads == 1 and still_healthy
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
