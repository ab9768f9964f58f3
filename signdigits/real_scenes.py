"""Real scenes: webcam frames with every hand boxed, and photos without a hand.

Read at run time from ``../shared/scenes`` (never committed): ``webcam-hands/`` (real
480x360 webcam frames of people holding up one or two hands in offices, halls, homes and
outdoors, each hand boxed from the fingertips down to the wrist) and ``caltech101/``
(photos of 100 kinds of things, faces among them). They teach the localizer what real
rooms look like, and they are what the evaluation judges it on.

Held out by source, always: whole recording sessions (one place each: the file name's
prefix before ``_``) and whole Caltech categories are kept for validation and for the
test, and never trained on. ``Faces`` always trains: faces are the hardest thing that is
not a hand, and the test's webcam sessions show a face beside every hand.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from signdigits import DEFAULT_SCENES_DIR

SPLITS = ("train", "validation", "test")
#: Held-out webcam sessions (places). The rest, and the frames without a session prefix,
#: train. Test: an office, a hall and a living room (3), a wall filmed from below (55);
#: validation: a brick wall outdoors (996), an office door (16).
WEBCAM_SESSIONS = {"test": ("3", "55"), "validation": ("996", "16")}
#: Held-out Caltech categories: drawn once from the sorted category names (``Faces`` left
#: out, it trains) with this seed, the first ones for the test, then validation.
CATEGORY_SEED, TEST_CATEGORIES, VALIDATION_CATEGORIES = 0, 20, 15
ALWAYS_TRAIN = ("Faces",)
#: A frame shows at most this many hands (the rest of a target's slots are empty).
MAX_HANDS = 2


class ScenesMissing(FileNotFoundError):
    """The real scenes are not where they were looked for. The message says where."""


@dataclass(frozen=True)
class Frame:
    """A webcam frame and its hands' boxes ``(x0, y0, x1, y1)`` in its pixels."""

    path: Path
    boxes: tuple[tuple[float, float, float, float], ...]


def _checked(folder: Path, scenes_dir) -> Path:
    path = Path(scenes_dir) / folder
    if not path.is_dir():
        raise ScenesMissing(f"{path} is missing: the real scenes are read from ../shared/scenes "
                            "(or the folder given), never committed")  # fmt: skip
    return path


def session_of(file_name: str) -> str:
    """The recording session (one place) of a webcam frame: its name's prefix before ``_``."""
    return file_name.split("_", 1)[0] if "_" in file_name else ""


def webcam_split(file_name: str) -> str:
    """Which side of the split a webcam frame is on, by its session."""
    session = session_of(file_name)
    return next((split for split, sessions in WEBCAM_SESSIONS.items() if session in sessions), "train")


def webcam_frames(split: str, scenes_dir=DEFAULT_SCENES_DIR) -> list[Frame]:
    """The webcam frames of ``split``, in file order, with every hand's box."""
    folder = _checked(Path("webcam-hands"), scenes_dir)
    boxes: dict[str, list] = {}
    with open(folder / "boxes.csv", newline="") as table:
        for row in csv.DictReader(table):
            if webcam_split(row["file"]) == split:
                boxes.setdefault(row["file"], []).append(tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1")))
    return [Frame(folder / "frames" / name, tuple(found)) for name, found in sorted(boxes.items())]


def category_splits(scenes_dir=DEFAULT_SCENES_DIR) -> dict[str, str]:
    """Each Caltech category's side of the split."""
    names = sorted(p.name for p in _checked(Path("caltech101"), scenes_dir).iterdir() if p.is_dir())
    drawn = [names[i] for i in np.random.default_rng(CATEGORY_SEED).permutation(len(names))
             if names[i] not in ALWAYS_TRAIN]  # fmt: skip
    splits = dict.fromkeys(names, "train")
    splits.update(dict.fromkeys(drawn[:TEST_CATEGORIES], "test"))
    splits.update(dict.fromkeys(drawn[TEST_CATEGORIES : TEST_CATEGORIES + VALIDATION_CATEGORIES], "validation"))
    return splits


def caltech_photos(split: str, scenes_dir=DEFAULT_SCENES_DIR) -> list[Path]:
    """The Caltech photos of the categories on ``split``'s side, in a stable order."""
    folder = _checked(Path("caltech101"), scenes_dir)
    return [path for category, side in sorted(category_splits(scenes_dir).items()) if side == split
            for path in sorted((folder / category).glob("*.jpg"))]  # fmt: skip


def squares(paths, side: int) -> np.ndarray:
    """Pictures squeezed to ``side`` x ``side`` RGB uint8, as the localizer sees a whole
    picture (:func:`signdigits.preprocess.decode`)."""
    def load(path):
        with Image.open(path) as image:
            image.draft("RGB", (side, side))  # JPEGs decode at a fraction of their size
            return np.asarray(image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR))

    return np.stack([load(path) for path in paths]) if len(paths) else np.zeros((0, side, side, 3), np.uint8)


def frame_targets(frames: list[Frame]) -> np.ndarray:
    """Targets ``(N, MAX_HANDS, 5)``: each hand's box as shares of its frame, then 1; empty
    slots are zeros."""
    targets = np.zeros((len(frames), MAX_HANDS, 5), np.float32)
    for i, frame in enumerate(frames):
        with Image.open(frame.path) as image:
            width, height = image.size
        for k, (x0, y0, x1, y1) in enumerate(frame.boxes[:MAX_HANDS]):
            targets[i, k] = (x0 / width, y0 / height, x1 / width, y1 / height, 1.0)
    return targets


def hand_found(box, hands, least_area: float = 1 / 3, most_area: float = 3.0) -> bool:
    """Whether the answer ``box`` (x0, y0, x1, y1) finds one of ``hands`` (rows x0, y0, x1,
    y1 in the same units, and where there is a fifth column, 1 for a hand and 0 for an empty
    slot): its centre lies inside that hand's box, and its area is 1/3 to 3 times the hand's."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy, area = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    for hand in np.asarray(hands, np.float64).reshape(-1, np.shape(hands)[-1]):
        if len(hand) > 4 and hand[4] < 0.5:
            continue
        hand_area = (hand[2] - hand[0]) * (hand[3] - hand[1])
        if hand[0] <= cx <= hand[2] and hand[1] <= cy <= hand[3] and least_area <= area / hand_area <= most_area:
            return True
    return False


def photo_arrays(paths) -> list[np.ndarray]:
    """The photos at ``paths`` as RGB uint8 arrays, at their own size."""
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB")))
    return arrays
