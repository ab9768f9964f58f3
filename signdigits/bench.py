"""``python -m signdigits bench``: both runtimes on the same models, as ratios, in one run.

Each runtime (TensorFlow through Keras, the baseline; LiteRT, what the app and the CLI
serve with) is measured in a fresh process of its own, so that start-up and peak memory
are its alone: start-up (imports and loading both models), one image bytes -> digit with
and without the localizer (warm, the median of 300 calls over 30 pictures in turn, as
pictures differ in how closely the localizer looks), a batch of 1,000 images through
``Classifier.predict_many`` (decoding and localization included; the photos under
``--photos`` if given, else the ten example photos, each with a hand to read) and the
process's peak memory. Timings on shared machines are noisy: read the ratios, which come
from the same run.
"""

import io
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH
from signdigits.pictures import EXAMPLES_DIR
from signdigits.sources import IMAGE_SUFFIXES

BASELINE, SERVING = "keras", "litert"
SINGLE_REPEATS = 300
SINGLE_PICTURES = 30  # the one-image figures cycle through these first pictures
#: The measures, how each reads, whether less is better, and the target of the served runtime.
MEASURES = (
    ("startup_s", "start-up: imports and both models (s)", True, None),
    ("single_ms_median", "one image, median (ms)", True, 3.0),
    ("single_ms_p95", "one image, p95 (ms)", True, None),
    ("no_localizer_ms_median", "one image without localizer (ms)", True, None),
    ("batch_images_per_s", "batch, images/s", False, 600.0),
    ("peak_rss_mb", "peak memory (MB)", True, 200.0),
)


def sample_images(count: int, photos_dir=None) -> tuple[list[bytes], str]:
    """``count`` image files' bytes: the photos under ``photos_dir`` (default: the example
    photos), cycled; generated JPEGs (noise: no hand is found in them, so only the localizer
    runs) where it holds none."""
    photos_dir = EXAMPLES_DIR if photos_dir is None else photos_dir
    found = sorted(Path(photos_dir).rglob("*")) if Path(photos_dir).is_dir() else []
    photos = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if photos:
        data = [p.read_bytes() for p in photos[:count]]
        return [data[i % len(data)] for i in range(count)], f"photos from {photos_dir}"
    rng = np.random.default_rng(0)
    images = []
    for _ in range(min(count, 64)):
        pixels = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return [images[i % len(images)] for i in range(count)], "generated 100x100 JPEGs"


def _time_ms(function, items: list, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``function(item)``, cycling through ``items``."""
    times = []
    for i in range(repeats):
        item = items[i % len(items)]
        start = time.perf_counter()
        function(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure(runtime: str, model_path, localizer_path, images: int, photos_dir=None,
            repeats: int = SINGLE_REPEATS) -> dict:  # fmt: skip
    """One runtime's figures, measured in this process (best a fresh one)."""
    batch, source = sample_images(images, photos_dir)
    started = time.perf_counter()
    from signdigits.classifier import Classifier
    from signdigits.preprocess import open_image

    classifier = Classifier(model_path, localizer_path, runtime=runtime)
    startup = time.perf_counter() - started
    singles = [(one, (0, 0, *open_image(one).size)) for one in batch[:SINGLE_PICTURES]]
    for one, whole in singles:
        classifier.predict(one), classifier.predict(one, box=whole)
    single = _time_ms(lambda item: classifier.predict(item[0]), singles, repeats)
    unlocalized = _time_ms(lambda item: classifier.predict(item[0], box=item[1]), singles, repeats)
    list(classifier.predict_many((str(i), b) for i, b in enumerate(batch[:256])))  # warm-up
    start = time.perf_counter()
    results = list(classifier.predict_many((str(i), b) for i, b in enumerate(batch)))
    batch_seconds = time.perf_counter() - start
    if not all(r.ok or r.error for r in results):
        raise RuntimeError("a batch row has neither an answer nor an error")
    return {
        "images": source,
        "batch_images": len(batch),
        "startup_s": startup,
        "single_ms_median": statistics.median(single),
        "single_ms_p95": float(np.percentile(single, 95)),
        "no_localizer_ms_median": statistics.median(unlocalized),
        "batch_images_per_s": len(batch) / batch_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def _measure_in_child(runtime: str, model_path, localizer_path, images: int, photos_dir, repeats) -> dict:
    arguments = json.dumps([runtime, str(model_path), str(localizer_path), images,
                            photos_dir and str(photos_dir), repeats])  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "signdigits.bench", arguments],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"the {runtime} measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def run_benchmark(
    model_path=DEFAULT_MODEL_PATH, json_path=None, images: int = 1000, photos_dir=None,
    out=print, localizer_path=DEFAULT_LOCALIZER_PATH, runtimes=(BASELINE, SERVING),
    repeats: int = SINGLE_REPEATS,
) -> dict:  # fmt: skip
    """Measure each runtime in its own process; print one table with the ratios."""
    figures = {runtime: _measure_in_child(runtime, model_path, localizer_path, images, photos_dir, repeats)
               for runtime in runtimes}  # fmt: skip
    base, served = figures[runtimes[0]], figures[runtimes[-1]]
    out(f"signdigits bench — {Path(model_path).name} + {Path(localizer_path).name}, "
        f"{served['images']}, batch of {served['batch_images']}")  # fmt: skip
    out(f"{'measure':<38}{runtimes[0]:>10}{runtimes[-1]:>10}{'gain':>8}  target")
    ratios = {}
    for key, label, lower_is_better, target in MEASURES:
        ratios[key] = base[key] / served[key] if lower_is_better else served[key] / base[key]
        goal = "" if target is None else ("<= " if lower_is_better else ">= ") + f"{target:g}"
        out(f"{label:<38}{base[key]:>10.2f}{served[key]:>10.2f}{ratios[key]:>7.1f}x  {goal}")
    result = {**figures, "gain": ratios}
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":  # one runtime's measurement, for run_benchmark's child process
    print(json.dumps(measure(*json.loads(sys.argv[1]))))
