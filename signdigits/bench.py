"""``python -m signdigits bench``: latency and throughput, as ratios against a baseline.

Single image: bytes -> decode -> find the hand -> crop -> classifier (crop and mirror)
-> digit, warm, through the models' compiled calls; the same without the localizer (the
whole picture as the box); and, as the baseline, the whole picture through Keras'
``model.predict``, all in the same run. Batch: 1,000 images (decoding and localization
included) through ``Classifier.predict_many``: the photos under ``--photos`` if given,
else generated JPEGs. Timings on shared machines are noisy: read the ratios.
"""

import io
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH
from signdigits.sources import IMAGE_SUFFIXES

TARGETS = {"single_ms_median": 3.0, "batch_images_per_s": 1000.0}


def sample_images(count: int, photos_dir=None) -> tuple[list[bytes], str]:
    """``count`` image files' bytes: the photos under ``photos_dir`` (cycled), or generated
    JPEGs when it is None or holds none."""
    found = sorted(Path(photos_dir).rglob("*")) if photos_dir else []
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


def _time_ms(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def run_benchmark(
    model_path=DEFAULT_MODEL_PATH, json_path=None, images: int = 1000, photos_dir=None,
    out=print, localizer_path=DEFAULT_LOCALIZER_PATH,
) -> dict:  # fmt: skip
    from signdigits.classifier import Classifier
    from signdigits.preprocess import open_image, preprocess

    classifier = Classifier(model_path, localizer_path)
    batch, source = sample_images(images, photos_dir)
    one = batch[0]
    whole = (0, 0, *open_image(one).size)

    def fast():
        return classifier.predict(one).digit

    def without_localizer():
        return classifier.predict(one, box=whole).digit

    def baseline():
        probs = classifier.model.predict(preprocess(one)[None, ..., None], verbose=0)
        return classifier.index_to_digit[int(probs.argmax())]

    for _ in range(20):
        fast(), without_localizer(), baseline()
    single = _time_ms(fast, 300)
    unlocalized = _time_ms(without_localizer, 300)
    keras_predict = _time_ms(baseline, 60)

    list(classifier.predict_many((str(i), b) for i, b in enumerate(batch[:256])))  # warm-up
    start = time.perf_counter()
    results = list(classifier.predict_many((str(i), b) for i, b in enumerate(batch)))
    batch_seconds = time.perf_counter() - start
    assert all(r.ok for r in results)

    figures = {
        "images": source,
        "single_ms_median": statistics.median(single),
        "single_ms_p95": float(np.percentile(single, 95)),
        "no_localizer_ms_median": statistics.median(unlocalized),
        "predict_ms_median": statistics.median(keras_predict),
        "batch_images": len(batch),
        "batch_images_per_s": len(batch) / batch_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
    figures["speedup"] = figures["predict_ms_median"] / figures["single_ms_median"]
    figures["localizer_cost"] = figures["single_ms_median"] / figures["no_localizer_ms_median"]
    rows = [
        ("single image, median (ms)", "single_ms_median", "<= 3"),
        ("single image, p95 (ms)", "single_ms_p95", ""),
        ("same without localizer (ms)", "no_localizer_ms_median", ""),
        ("with / without localizer (x)", "localizer_cost", ""),
        ("whole image via model.predict (ms)", "predict_ms_median", ""),
        ("speed-up over model.predict (x)", "speedup", ""),
        (f"batch of {len(batch)}, images/s", "batch_images_per_s", ">= 1000"),
        ("peak memory (MB)", "peak_rss_mb", ""),
    ]
    out(f"signdigits bench — {Path(model_path).name}, {source}")
    out(f"{'measure':<34}{'value':>12}  target")
    for label, key, target in rows:
        out(f"{label:<34}{figures[key]:>12.2f}  {target}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
