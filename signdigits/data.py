"""Build and load the training arrays (``x.npy``, ``y.npy``, ``participants.npy``).

The arrays follow the Kaggle convention, so a user's Kaggle ``X.npy``/``Y.npy`` can be
dropped in: ``x`` float32 N x 64 x 64 with values ``1 - gray/255``, ``y`` N x 10 one-hot
whose class index i is the digit ``labels.INDEX_TO_DIGIT[i]``. ``participants`` holds
each row's participant id (-1 where unknown).
"""

import csv
import io
import re
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from signdigits import DATASET_DIR, IMAGE_SIZE, NUM_CLASSES
from signdigits.atomic import atomic_path
from signdigits.labels import INDEX_TO_DIGIT, digit_to_index
from signdigits.preprocess import UnreadableImageError, open_image, preprocess, to_rgb
from signdigits.sources import IMAGE_SUFFIXES, zip_entry_reader

UPSTREAM_ZIP_URL = (
    "https://github.com/ardamavi/Sign-Language-Digits-Dataset/archive/refs/heads/master.zip"
)
#: The colour photos are kept at this size (the dataset's own), for cutting out hands.
PHOTO_SIDE = 100
#: Shares of the participants held out for the test and for validation (training's defaults).
TEST_FRACTION, VAL_FRACTION = 0.15, 0.12
_DIGIT_FOLDER = re.compile(r"(?:^|/)([0-9])/([^/]+)$")


class DatasetError(ValueError):
    """The dataset files are missing or malformed. The message names the file and the fix."""


@dataclass
class Dataset:
    x: np.ndarray  # float32 (N, 64, 64), 1 - gray/255
    y: np.ndarray  # float32 (N, 10) one-hot, class-index order
    participants: np.ndarray  # int64 (N,), -1 where unknown
    photos: np.ndarray | None = None  # uint8 (N, 100, 100, 3): the colour photos, if built

    @property
    def digits(self) -> np.ndarray:
        """The digit of each row (after the index-to-digit table)."""
        return np.asarray(INDEX_TO_DIGIT)[self.y.argmax(axis=1)]


# --------------------------------------------------------------------------- building


def _participants_table(text: str, source: str = "participants.csv") -> dict[str, int]:
    """Map ``<digit>/<file name>`` -> participant id from a participants.csv text."""
    table = {}
    try:
        for row in csv.DictReader(io.StringIO(text)):
            key = "/".join(PurePosixPath(row["file"]).parts[-2:])
            table[key] = int(row["participant"])
    except (KeyError, TypeError, ValueError, csv.Error) as exc:
        raise DatasetError(
            f"{source} is malformed ({type(exc).__name__}: {exc}); it needs the columns "
            "file,digit,participant with an integer participant id — fix or delete it."
        ) from exc
    return table


def _decode(data: bytes, source) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{source} is not UTF-8 text ({exc}); save it as UTF-8 CSV.") from exc


def _image_number(name: str) -> tuple:
    match = re.search(r"(\d+)", name)
    return (int(match.group(1)) if match else -1, name)


def _collect_folder(root: Path):
    """Yield (key, read) for every image in ``root/0`` ... ``root/9``."""
    for digit in range(NUM_CLASSES):
        folder = root / str(digit)
        if not folder.is_dir():
            continue
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        for path in sorted(files, key=lambda p: _image_number(p.name)):
            yield f"{digit}/{path.name}", (lambda path=path: path)  # preprocess reads it


def _collect_zip(archive: zipfile.ZipFile):
    """Yield (key, read) for every ``.../<digit>/<image>`` entry of a zip, read in memory."""
    entries = []
    for info in archive.infolist():
        match = _DIGIT_FOLDER.search(info.filename)
        if match and not info.is_dir() and info.filename.lower().endswith(IMAGE_SUFFIXES):
            entries.append((int(match.group(1)), _image_number(match.group(2)), info))
    for digit, _, info in sorted(entries, key=lambda e: (e[0], e[1])):
        key = f"{digit}/{PurePosixPath(info.filename).name}"
        yield key, zip_entry_reader(archive, info)


def build_dataset(source, log=print) -> Dataset:
    """Build arrays from an image-folder dataset (``0/`` ... ``9/``) or its zip archive.

    Participant ids come from a ``participants.csv`` beside the digit folders, when there
    is one. Unreadable images are skipped and reported through ``log``.
    """
    source = Path(source)
    if source.is_dir():
        csv_path = source / "participants.csv"
        table = {}
        if csv_path.exists():
            table = _participants_table(_decode(csv_path.read_bytes(), csv_path), str(csv_path))
        return _build(_collect_folder(source), table, log, str(source))
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            csvs = [n for n in archive.namelist() if n.endswith("participants.csv")]
            name = f"{source}/{csvs[0]}" if csvs else ""
            table = _participants_table(_decode(archive.read(csvs[0]), name), name) if csvs else {}
            return _build(_collect_zip(archive), table, log, str(source))
    raise DatasetError(
        f"{source} is neither a folder with digit sub-folders 0/ ... 9/ nor a zip archive."
    )


def _build(items, participant_table, log, source_name) -> Dataset:
    xs, photos, labels, participants = [], [], [], []
    for key, read in items:
        try:
            image = open_image(read(), draft=("RGB", PHOTO_SIDE))
            xs.append(preprocess(image))
            photos.append(np.asarray(to_rgb(image).resize((PHOTO_SIDE, PHOTO_SIDE))))
        except (UnreadableImageError, OSError) as exc:
            log(f"skipped {key}: {exc}")  # a bad file or zip entry costs only itself
            continue
        labels.append(digit_to_index(int(key.split("/")[0])))
        participants.append(participant_table.get(key, -1))
    if not xs:
        raise DatasetError(
            f"{source_name} holds no images in digit folders 0/ ... 9/; "
            "point the command at the folder (or zip) that contains them."
        )
    y = np.zeros((len(labels), NUM_CLASSES), dtype=np.float32)
    y[np.arange(len(labels)), labels] = 1.0
    return Dataset(
        np.stack(xs).astype(np.float32), y, np.asarray(participants, dtype=np.int64),
        np.stack(photos),
    )  # fmt: skip


def download_upstream(destination: Path, url: str = UPSTREAM_ZIP_URL, log=print) -> Path:
    """Fetch the upstream dataset's zip archive to ``destination`` (atomically)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {url}")
    try:
        with atomic_path(destination) as partial:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
            if not zipfile.is_zipfile(partial):
                raise DatasetError(f"{url} did not return a zip archive.")
    except OSError as exc:
        raise DatasetError(
            f"could not download {url} ({exc}); download it by hand and pass the zip's path."
        ) from exc
    return destination


def save_dataset(dataset: Dataset, out_dir: Path = DATASET_DIR) -> list[Path]:
    """Write x.npy, y.npy, participants.npy and photos.npy into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    arrays = {"x": dataset.x, "y": dataset.y, "participants": dataset.participants,
              "photos": dataset.photos}  # fmt: skip
    for name, array in arrays.items():
        if array is None:
            continue
        path = out_dir / f"{name}.npy"
        with atomic_path(path) as partial, open(partial, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        written.append(path)
    return written


# --------------------------------------------------------------------------- loading


def _find(directory: Path, name: str) -> Path | None:
    stem, suffix = name.split(".", 1)
    for candidate in (name, f"{stem.upper()}.{suffix}"):  # Kaggle ships X.npy / Y.npy
        if (directory / candidate).exists():
            return directory / candidate
    return None


def _load_array(path: Path) -> np.ndarray:
    rebuild = "rebuild it with `python -m signdigits build-dataset`."
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):  # object arrays (and non-.npy files numpy takes for pickles)
            raise DatasetError(
                f"{path} holds Python objects or is no .npy file; objects are never loaded — "
                f"{rebuild}"
            ) from exc
        raise DatasetError(f"{path} is truncated or malformed ({exc}); {rebuild}") from exc
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path} is not a readable .npy file ({exc}); {rebuild}") from exc
    if not isinstance(array, np.ndarray):  # an .npz archive under a .npy name
        array.close()
        raise DatasetError(f"{path} is an .npz archive, not a single .npy array; {rebuild}")
    return array


def validate_arrays(x, y, x_name="x.npy", y_name="y.npy") -> tuple[np.ndarray, np.ndarray]:
    """Check ``x``/``y`` against the convention; return them as float32 (x squeezed to N,64,64)."""
    fix = "rebuild it with `python -m signdigits build-dataset`"
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{x_name} has shape {x.shape}; expected N x 64 x 64 images — {fix}.")
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(
            f"{x_name} has dtype {x.dtype}; expected float32 values 1 - gray/255 in [0, 1] — {fix}."
        )
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{x_name} contains NaN or infinite values — {fix}.")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise DatasetError(
            f"{x_name} has values in [{x.min():.3g}, {x.max():.3g}]; expected [0, 1] "
            f"(1 - gray/255) — {fix}."
        )
    if y.ndim != 2 or y.shape[1] != NUM_CLASSES:
        raise DatasetError(f"{y_name} has shape {y.shape}; expected N x 10 one-hot labels — {fix}.")
    if len(x) != len(y):
        raise DatasetError(
            f"{x_name} has {len(x)} images but {y_name} has {len(y)} labels; they must match — "
            "rebuild both together."
        )
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
        raise DatasetError(f"{y_name} must hold numbers 0 and 1 — {fix}.")
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        raise DatasetError(f"{y_name} is not one-hot: each row needs exactly one 1 — {fix}.")
    classes = np.unique(y.argmax(axis=1))
    if len(classes) < 2:
        raise DatasetError(
            f"{y_name} holds only {len(classes)} class(es); training needs at least 2 digits — "
            "add images of more digits and rebuild."
        )
    return x.astype(np.float32, copy=False), y.astype(np.float32, copy=False)


def load_dataset(x_path=None, y_path=None, participants_path=None) -> Dataset:
    """Load and validate the arrays (default: ``dataset/x.npy`` and ``dataset/y.npy``)."""
    x_path = Path(x_path) if x_path else _find(DATASET_DIR, "x.npy") or DATASET_DIR / "x.npy"
    y_path = Path(y_path) if y_path else _find(x_path.parent, "y.npy") or x_path.parent / "y.npy"
    for path in (x_path, y_path):
        if not path.exists():
            raise DatasetError(
                f"{path} is missing; build it with `python -m signdigits build-dataset "
                "../shared/sign-language-digits` (or `--download`), or copy Kaggle's X.npy/Y.npy there."
            )
    x, y = validate_arrays(_load_array(x_path), _load_array(y_path), x_path.name, y_path.name)
    participants_path = (
        Path(participants_path) if participants_path else x_path.parent / "participants.npy"
    )
    participants = np.full(len(x), -1, dtype=np.int64)
    if participants_path.exists():
        ids = _load_array(participants_path)
        if ids.shape != (len(x),) or not np.issubdtype(ids.dtype, np.integer):
            raise DatasetError(
                f"{participants_path} has shape {ids.shape} and dtype {ids.dtype}; expected one "
                f"integer id per image ({len(x)}) — rebuild it, or delete it to split without ids."
            )
        participants = ids.astype(np.int64)
    photos_path = x_path.parent / "photos.npy"
    photos = _load_array(photos_path) if photos_path.exists() else None
    if photos is not None and (
        photos.shape != (len(x), PHOTO_SIDE, PHOTO_SIDE, 3) or photos.dtype != np.uint8
    ):
        raise DatasetError(
            f"{photos_path} has shape {photos.shape} and dtype {photos.dtype}; expected "
            f"({len(x)}, {PHOTO_SIDE}, {PHOTO_SIDE}, 3) uint8 — rebuild it, or delete it."
        )
    return Dataset(x, y, participants, photos)


def split_indices(dataset: Dataset, test_fraction, val_fraction, seed):
    """Train/val/test row indices. By participant when ids are known, else stratified.

    One person's images never sit on two sides of a split.
    """
    rng = np.random.default_rng(seed)
    ids = dataset.participants
    if np.all(ids >= 0):
        people = rng.permutation(np.unique(ids))
        n_test = max(1, round(len(people) * test_fraction))
        n_val = max(1, round(len(people) * val_fraction))
        test_people, val_people = people[:n_test], people[n_test : n_test + n_val]
        test = np.flatnonzero(np.isin(ids, test_people))
        val = np.flatnonzero(np.isin(ids, val_people))
        train = np.flatnonzero(~np.isin(ids, np.concatenate([test_people, val_people])))
        return train, val, test, "participant"
    from sklearn.model_selection import train_test_split

    labels = dataset.y.argmax(axis=1)
    rest, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), stratify=labels[rest], random_state=seed
    )
    return np.sort(train), np.sort(val), np.sort(test), "stratified (no participant ids)"
