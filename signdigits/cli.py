"""The signdigits command (also python -m signdigits): predict, evaluate, bench and build-dataset."""

import argparse
import contextlib
import errno
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from signdigits import DATASET_DIR, DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, DEFAULT_SCENES_DIR
from signdigits.atomic import atomic_path


def _stderr(message: str):
    print(message, file=sys.stderr, flush=True)


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, stream=None, min_total: int = 50):
        # sys.stderr is looked up now, not at import, so a redirected stderr gets the bar
        self.total, self.stream, self.done = total, stream or sys.stderr, 0
        self.enabled = total >= min_total
        self.started = self.last = time.perf_counter()

    def update(self, count: int = 1):
        self.done += count
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            width = 30
            filled = int(width * self.done / max(1, self.total))
            rate = self.done / max(1e-9, now - self.started)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"images  {rate:,.0f}/s"
            )
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


class AtomicCsv:
    """Rows for ``--csv PATH`` that appear at ``PATH`` only once the run is complete.

    Rows go to an anonymous temporary file (``O_TMPFILE``, or created and unlinked at once)
    in the destination folder, so a run killed even with SIGKILL leaves nothing to see
    there, and an older file at ``PATH`` stays as it was. :meth:`commit` copies the rows
    into place through :func:`signdigits.atomic.atomic_path`.
    """

    def __init__(self, path):
        path = os.path.realpath(path)  # through a symlink to the file it names
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        self.path = path
        self.stream = tempfile.TemporaryFile(
            "w+", newline="", encoding="utf-8", dir=os.path.dirname(path), prefix=".signdigits-"
        )

    def commit(self):
        self.stream.flush()
        self.stream.seek(0)
        with atomic_path(self.path) as part, open(part, "w", newline="", encoding="utf-8") as target:
            shutil.copyfileobj(self.stream, target, 1 << 20)
        self.close()

    def close(self):
        self.stream.close()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C (``finally`` blocks run) while rows are written."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_predict(args) -> int:
    from signdigits.classifier import Classifier
    from signdigits.results import csv_writer, to_row
    from signdigits.serving import ModelFileError
    from signdigits.sources import iter_paths

    try:
        classifier = Classifier(args.model, args.localizer)
    except ModelFileError as exc:
        _stderr(f"error: {exc}")
        return 2
    items = list(iter_paths(args.paths, note=_stderr))
    if not items:
        _stderr("error: no images found in the given paths")
        return 1
    try:
        # --csv: rows reach the named file only when all are written (see AtomicCsv)
        target = AtomicCsv(args.csv) if args.csv else None
    except OSError as exc:
        _stderr(f"error: cannot write {args.csv} ({exc.strerror or exc})")
        return 2
    out = target.stream if target else sys.stdout
    classified = 0
    progress = Progress(len(items))
    try:
        with _sigterm_as_interrupt():
            writer = csv_writer(out)
            for prediction in classifier.predict_many(items):
                writer.writerow(to_row(prediction))
                if prediction.ok:
                    classified += 1
                else:
                    _stderr(f"\n{prediction.name}: {prediction.error}" if progress.enabled else
                            f"{prediction.name}: {prediction.error}")
                progress.update()
            if target:
                try:
                    target.commit()
                except OSError as exc:
                    _stderr(f"error: cannot write {args.csv} ({exc.strerror or exc})")
                    return 2
    finally:
        if target:
            target.close()
    _stderr(f"classified {classified} of {len(items)} images"
            + (f"; results in {args.csv}" if args.csv else ""))
    return 0 if classified else 1


def cmd_evaluate(args) -> int:
    import json

    import numpy as np

    from signdigits.classifier import Classifier
    from signdigits.data import DatasetError, load_dataset
    from signdigits.evaluate import TEST_DRAWS, evaluate, format_table, variants
    from signdigits.real_scenes import ScenesMissing, caltech_photos, photo_arrays, webcam_frames
    from signdigits.scenes import hand_mask
    from signdigits.serving import ModelFileError

    try:
        classifier = Classifier(args.model, args.localizer)
        dataset = load_dataset(args.x)
    except (ModelFileError, DatasetError) as exc:
        _stderr(f"error: {exc}")
        return 2
    if dataset.photos is None:
        _stderr("error: evaluate needs the colour photos (photos.npy); build them with "
                "`python -m signdigits build-dataset ../shared/sign-language-digits`")
        return 2
    people = classifier.info.get("test_participants", [])
    rows = np.flatnonzero(np.isin(dataset.participants, people))
    if not len(rows):
        _stderr("error: none of the model's test participants is in the dataset; "
                "evaluating a model needs the people it was not trained on")
        return 2
    if args.people == "validation":  # for choosing between configs: never the test people
        from signdigits.data import TEST_FRACTION, VAL_FRACTION, split_indices

        _, rows, test_rows, _ = split_indices(dataset, TEST_FRACTION, VAL_FRACTION, seed=0)
        if set(np.unique(dataset.participants[test_rows])) != set(people):
            _stderr("error: the model was trained on another split; its validation people "
                    "are not known here")
            return 2
    split = "test" if args.people == "test" else "validation"
    try:
        real_photos = photo_arrays(caltech_photos(split, args.scenes))
        real_frames = webcam_frames(split, args.scenes)
    except ScenesMissing as exc:
        _stderr(f"error: {exc}; give their folder with --scenes")
        return 2
    rows = rows[: args.limit] if args.limit else rows
    real_frames = real_frames[: args.limit] if args.limit else real_frames
    masks = [hand_mask(photo) for photo in dataset.photos[rows]]
    draws = args.draws or TEST_DRAWS
    samples = variants(dataset.photos[rows], masks, dataset.digits[rows], args.seed, draws,
                       real_photos=real_photos, real_frames=real_frames)  # fmt: skip
    _stderr(f"{len(samples)} pictures from {len(rows)} photos of "
            f"{len(np.unique(dataset.participants[rows]))} {args.people} participants, "
            f"{len(real_photos)} held-out real photos and {len(real_frames)} real webcam frames")
    result = {**evaluate(classifier, samples), "draws": draws}
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _installed(*packages: str) -> bool:
    """Whether ``packages`` can be imported, found without importing them: a process that
    imported TensorFlow would hand its peak memory on to the children bench measures in."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(package) is not None for package in packages)
    except ImportError:
        return False


def cmd_bench(args) -> int:
    from signdigits import TRAIN_INSTALL
    from signdigits.bench import run_benchmark

    if not _installed("tensorflow", "keras"):  # the baseline it measures against is Keras
        _stderr(f"error: bench measures against the Keras runtime, which needs TensorFlow and Keras: {TRAIN_INSTALL}")
        return 2

    run_benchmark(model_path=args.model, json_path=args.json, images=args.images,
                  photos_dir=args.photos, localizer_path=args.localizer)
    return 0


def cmd_build_dataset(args) -> int:
    from signdigits.data import UPSTREAM_ZIP_URL, DatasetError, build_dataset, download_upstream, save_dataset

    source = args.source
    is_url = bool(source) and source.startswith(("http://", "https://", "file://"))
    if source is None and not args.download:
        _stderr("error: give a dataset folder, zip archive or URL, or --download")
        return 2
    try:
        if args.download or is_url:
            url = source if is_url else UPSTREAM_ZIP_URL
            source = download_upstream(args.out / "upstream.zip", url, log=_stderr)
        dataset = build_dataset(source, log=_stderr)
        for path in save_dataset(dataset, args.out):
            _stderr(f"wrote {path}")
    except DatasetError as exc:
        _stderr(f"error: {exc}")
        return 2
    known = int((dataset.participants >= 0).sum())
    _stderr(f"{len(dataset.x)} images, {known} with a participant id")
    return 0


def _program_name() -> str:
    """``python -m signdigits`` when run as a module, else ``signdigits`` (the installed command)."""
    return "python -m signdigits" if Path(sys.argv[0]).name == "__main__.py" else "signdigits"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_program_name(), description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="classify images, folders (recursive) and zip archives",
        description="Writes one CSV row per image: file,digit,confidence,p0..p9, the hand's "
        "box (x0,y0,x1,y1 in pixels),error. Unreadable files and pictures without a hand get "
        "an error row and a line on stderr; the run goes on. "
        "A cell that a spreadsheet would read as a formula (one that starts with = + - @, a "
        "tab or CR) gets a leading '. Names that begin with - go after --: predict -- -photo.jpg",
    )
    predict.add_argument(
        "paths", nargs="+", help="image files, folders or .zip archives (after -- if one begins with -)"
    )
    predict.add_argument("--csv", help="write the rows to this file instead of stdout")
    predict.add_argument("--model", default=DEFAULT_MODEL_PATH, help="model file (default: bundled)")
    predict.add_argument("--localizer", default=DEFAULT_LOCALIZER_PATH,
                         help="hand localizer file (default: bundled)")
    predict.set_defaults(run=cmd_predict)

    evaluation = commands.add_parser(
        "evaluate",
        help="accuracy on the model's test people, photographed the way people take photos",
        description="Builds variants of the test participants' photos (mirrored, grey, rotated, "
        "further away, dark and busy backgrounds, webcam frames, drawings) and scenes without a "
        "hand on real photos held out from training, adds real webcam frames of held-out places, "
        "reads each through the app's path and prints one table.",
    )
    evaluation.add_argument("--model", default=DEFAULT_MODEL_PATH, help="model file (default: bundled)")
    evaluation.add_argument("--localizer", default=DEFAULT_LOCALIZER_PATH,
                            help="hand localizer file (default: bundled)")
    evaluation.add_argument("--x", help="dataset arrays' x.npy (default: dataset/x.npy)")
    evaluation.add_argument("--limit", type=int, default=0, help="use only the first N test photos")
    evaluation.add_argument("--seed", type=int, default=2, help="seed of the variants")
    evaluation.add_argument("--draws", type=int, help="draws of the pictures made at random "
                            "(rotated, far, dark, busy, webcam, no hand; default: as many as the "
                            "training report's table)")
    evaluation.add_argument("--people", choices=("test", "validation"), default="test",
                            help="whose photos: the test people (default), or the validation "
                            "people, to compare training configs without looking at the test")
    evaluation.add_argument("--scenes", default=DEFAULT_SCENES_DIR,
                            help="the real scenes' folder, whose held-out photos and webcam frames "
                            "are the backgrounds and the real rows (default: ../shared/scenes)")
    evaluation.add_argument("--json", help="also write the figures to this JSON file")
    evaluation.set_defaults(run=cmd_evaluate)

    bench = commands.add_parser("bench", help="measure single-image latency and batch throughput")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.add_argument("--model", default=DEFAULT_MODEL_PATH, help="model file (default: bundled)")
    bench.add_argument("--localizer", default=DEFAULT_LOCALIZER_PATH,
                       help="hand localizer file (default: bundled)")
    bench.add_argument("--images", type=int, default=1000, help="images in the batch measurement")
    bench.add_argument("--photos", help="folder of photos to time (default: the ten example photos)")
    bench.set_defaults(run=cmd_bench)

    build = commands.add_parser(
        "build-dataset",
        help="build dataset/x.npy, y.npy and participants.npy from images",
        description="From a folder laid out as 0/ ... 9/ (with an optional participants.csv), "
        "from the upstream dataset's zip archive, or --download to fetch that archive.",
    )
    build.add_argument("source", nargs="?", help="dataset folder, zip archive or URL")
    build.add_argument("--download", action="store_true", help="download the upstream archive first")
    build.add_argument("--out", type=Path, default=DATASET_DIR,
                       help="folder for the .npy files (default: dataset/ in the working directory)")
    build.set_defaults(run=cmd_build_dataset)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        _stderr("\ninterrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
