"""An anchor beside our numbers: Google's MediaPipe Hands (palm detection, then hand
landmarks) on the pictures of ``python -m signdigits evaluate``, the test people's.

    python benchmarks/anchor_mediapipe.py [--model model.h5] [--localizer localizer.h5]
        [--x dataset/x.npy] [--scenes ../shared/scenes] [--limit N] [--draws 1] [--json FILE]

Per variant: how often each finds the hand (on the real webcam frames: a box that matches
a boxed hand, :func:`signdigits.real_scenes.hand_found`), our accuracy, and the accuracy of
our classifier reading the hand in MediaPipe's box (a miss counts as wrong); how many
hand-less scenes each flags; and the milliseconds a picture takes each, from its decoded
pixels (MediaPipe: palm detection and landmarks; ours: ``Classifier.predict``).

MediaPipe's two models come out of the ``mediapipe==0.10.21`` wheel, downloaded once into
the cache (never installed: its protobuf pin cannot share an environment with TensorFlow)
and checked by SHA-256. They run through LiteRT as MediaPipe Hands runs them on still
images (its graphs' options, below): palms, then landmarks on at most two of them; the most
confident hand is kept, its box the landmarks' box grown by 10 % a side.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402, F401  (puts the project on the path)

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, DEFAULT_SCENES_DIR  # noqa: E402
from signdigits.evaluate import FRAME_VARIANTS, UNSURE_BELOW, VARIANTS, evaluate, variants  # noqa: E402
from signdigits.real_scenes import hand_found  # noqa: E402

MEDIAPIPE_VERSION = "0.10.21"
#: The models inside the wheel, and their SHA-256.
PALM_MODEL = "mediapipe/modules/palm_detection/palm_detection_full.tflite"
LANDMARK_MODEL = "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"
SHA256 = {PALM_MODEL: "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
          LANDMARK_MODEL: "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"}  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

#: Palm detection (palm_detection_cpu.pbtxt): the picture letterboxed to a 192x192 square in
#: [0, 1]; SSD anchors (4 layers, strides 8, 16, 16, 16, two anchors a cell a layer, fixed
#: size: 2016); scores a sigmoid of logits clipped at 100; weighted NMS.
PALM_SIDE, PALM_RANGE = 192, (0.0, 1.0)
STRIDES, ANCHORS_PER_CELL = (8, 16, 16, 16), 2
PALM_KEYPOINTS, SCORE_CLIP, MIN_PALM_SCORE, NMS_IOU = 7, 100.0, 0.5, 0.3
#: The hand's region (palm_detection_detection_to_roi.pbtxt): turned so that the wrist
#: (keypoint 0) to the middle finger's knuckle (2) points up, the palm box shifted by half its
#: height that way, squared on its longer side and scaled 2.6 times.
WRIST, MIDDLE_KNUCKLE = 0, 2
ROI_SHIFT, ROI_SCALE = -0.5, 2.6
#: Hand landmarks (hand_landmark_cpu.pbtxt): the region at 224x224 in [0, 1]; 21 landmarks
#: in its pixels and the probability of a hand, kept from 0.5; MediaPipe Hands' default of at
#: most two hands.
LANDMARK_SIDE, LANDMARK_RANGE, LANDMARKS = 224, (0.0, 1.0), 21
MIN_PRESENCE, MAX_HANDS = 0.5, 2
BOX_MARGIN = 0.1  # the hand's box: the landmarks' box grown by this share of it a side
SEED = 2  # the variants' seed, as ``python -m signdigits evaluate`` draws them


def cache_dir() -> Path:
    """Where the wheel and its models are kept: ``$XDG_CACHE_HOME/signdigits/mediapipe``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "signdigits" / "mediapipe"


def wheel(folder: Path) -> Path:
    """The mediapipe wheel in ``folder``, downloaded there by pip (never installed) if absent."""
    found = sorted(folder.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if not found:
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        f"mediapipe=={MEDIAPIPE_VERSION}", "--python-version", "3.11", *platforms,
                        "-d", str(folder)], check=True)  # fmt: skip
        found = sorted(folder.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    return found[0]


def model_file(name: str) -> Path:
    """The model ``name`` out of the wheel, in the cache, checked by its SHA-256."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(name).name
    if not path.is_file():
        with zipfile.ZipFile(wheel(folder)) as archive:
            part = path.with_suffix(".part")
            part.write_bytes(archive.read(name))
            part.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[name]:
        sys.exit(f"{path}: SHA-256 {digest}, expected {SHA256[name]}; delete it to fetch it again")
    return path


def ssd_anchors() -> np.ndarray:
    """The palm detector's anchor centres (2016, 2) as shares of its input, in its order."""
    centres = []
    for stride in sorted(set(STRIDES)):
        cells = PALM_SIDE // stride
        grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, ANCHORS_PER_CELL * STRIDES.count(stride), axis=0))
    return np.concatenate(centres).astype(np.float32)


def crop(rgb: np.ndarray, centre, side: float, angle: float, out: int, value_range, replicate=False) -> tuple:
    """The square of ``side`` pixels around ``centre``, turned by ``angle`` (radians), at
    ``out`` x ``out`` pixels scaled to ``value_range`` (outside the picture: black, or its
    edge repeated where ``replicate``), and the affine map (2, 3) from its pixels to the
    picture's."""
    scale, cos, sin = side / out, np.cos(angle), np.sin(angle)
    linear = scale * np.array([[cos, -sin], [sin, cos]])
    affine = np.hstack([linear, (np.asarray(centre) - linear @ [out / 2, out / 2])[:, None]])
    sampled = affine
    if replicate:  # Pillow fills with black: pad with the edge out to the square's corners
        corners = to_picture(np.array([[0, 0], [out, 0], [0, out], [out, out]]), affine)
        pad = int(np.ceil(max(0, -corners.min(), *(corners.max(axis=0) - rgb.shape[1::-1]))))
        if pad:
            pad += 1  # and one pixel more, which bilinear sampling reads
            rgb, sampled = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), "edge"), affine + [[0, 0, pad]]
    square = Image.fromarray(rgb).transform((out, out), Image.Transform.AFFINE, sampled.ravel(),
                                            Image.Resampling.BILINEAR)  # fmt: skip
    low, high = value_range
    return low + (high - low) * np.asarray(square, np.float32)[None] / 255.0, affine


def to_picture(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Points (N, 2) in a crop's pixels -> the picture's pixels."""
    return points @ affine[:, :2].T + affine[:, 2]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of ``box`` (x0, y0, x1, y1) with each of ``boxes`` (N, 4)."""
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(np.prod(box[2:] - box[:2]) + areas - inter, 1e-9)


def decode_palms(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray) -> tuple:
    """The detector's outputs -> boxes (N, 4) and keypoints (N, 7, 2) in its input's pixels,
    and scores (N,), of the palms scoring at least :data:`MIN_PALM_SCORE`."""
    scores = 1 / (1 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= MIN_PALM_SCORE
    raw, offsets = raw.reshape(-1, 4 + 2 * PALM_KEYPOINTS)[keep], anchors[keep] * PALM_SIDE
    centres, sizes = raw[:, :2] + offsets, raw[:, 2:4]
    keypoints = raw[:, 4:].reshape(-1, PALM_KEYPOINTS, 2) + offsets[:, None]
    return np.hstack([centres - sizes / 2, centres + sizes / 2]), keypoints, scores[keep]


def weighted_nms(boxes, keypoints, scores) -> list[tuple]:
    """MediaPipe's weighted non-maximum suppression: each most confident palm left, its box
    and keypoints the score-weighted mean of those overlapping it by IoU over
    :data:`NMS_IOU`, most confident first."""
    order, palms = np.argsort(-scores), []
    while order.size:
        overlap = box_iou(boxes[order[0]], boxes[order]) > NMS_IOU
        group, weights = order[overlap], scores[order[overlap]] / scores[order[overlap]].sum()
        palms.append((weights @ boxes[group], np.tensordot(weights, keypoints[group], 1), scores[order[0]]))
        order = order[~overlap]
    return palms


def hand_region(box: np.ndarray, keypoints: np.ndarray) -> tuple:
    """A palm (box and keypoints in picture pixels) -> the hand's square region: centre, side
    and angle (radians) that turns it upright."""
    dx, dy = keypoints[MIDDLE_KNUCKLE] - keypoints[WRIST]
    angle = np.pi / 2 - np.arctan2(-dy, dx)
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    width, height = box[2:] - box[:2]
    shift = ROI_SHIFT * height * np.array([-np.sin(angle), np.cos(angle)])
    return (box[:2] + box[2:]) / 2 + shift, ROI_SCALE * max(width, height), angle


class MediaPipeHands:
    """MediaPipe Hands' palm detector and landmark model, run through LiteRT."""

    def __init__(self):
        from ai_edge_litert.interpreter import Interpreter

        threads = os.cpu_count() or 1  # as signdigits.serving runs ours
        self._palm = Interpreter(model_path=str(model_file(PALM_MODEL)), num_threads=threads)
        self._landmark = Interpreter(model_path=str(model_file(LANDMARK_MODEL)), num_threads=threads)
        for interpreter in (self._palm, self._landmark):
            interpreter.allocate_tensors()
        self._anchors = ssd_anchors()

    @staticmethod
    def _run(interpreter, tensor: np.ndarray) -> dict[str, np.ndarray]:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        return {out["name"]: interpreter.get_tensor(out["index"]) for out in interpreter.get_output_details()}

    def palms(self, rgb: np.ndarray) -> list[tuple]:
        """The palms in ``rgb``: (box, keypoints (7, 2), score), picture pixels, most
        confident first."""
        height, width = rgb.shape[:2]
        tensor, affine = crop(rgb, (width / 2, height / 2), max(width, height), 0.0, PALM_SIDE, PALM_RANGE)
        out = self._run(self._palm, tensor)
        boxes, keypoints, scores = decode_palms(out["Identity"], out["Identity_1"], self._anchors)
        return [(to_picture(box.reshape(2, 2), affine).ravel(), to_picture(points, affine), score)
                for box, points, score in weighted_nms(boxes, keypoints, scores)]  # fmt: skip

    def landmarks(self, rgb: np.ndarray, palm: tuple) -> tuple[np.ndarray, float]:
        """The hand's 21 landmarks (x, y) in picture pixels, and the probability of a hand,
        in the region of ``palm``."""
        centre, side, angle = hand_region(*palm[:2])
        tensor, affine = crop(rgb, centre, side, angle, LANDMARK_SIDE, LANDMARK_RANGE, replicate=True)
        out = self._run(self._landmark, tensor)
        points = out["Identity"].reshape(LANDMARKS, 3)[:, :2]
        return to_picture(points, affine), float(out["Identity_1"].reshape(-1)[0])

    def find(self, rgb: np.ndarray):
        """The most confident hand's box (x0, y0, x1, y1) in ``rgb``'s pixels and its
        probability, or None where no hand was found."""
        best = None
        for palm in self.palms(rgb)[:MAX_HANDS]:
            points, presence = self.landmarks(rgb, palm)
            if presence >= MIN_PRESENCE and (best is None or presence > best[1]):
                best = (points, presence)
        if best is None:
            return None
        low, high = best[0].min(axis=0), best[0].max(axis=0)
        margin = BOX_MARGIN * (high - low)
        size = np.array(rgb.shape[1::-1], np.float32)
        return tuple(np.clip(np.r_[low - margin, high + margin], 0, np.tile(size, 2)).tolist()), best[1]


def rgb_of(image) -> np.ndarray:
    """A sample's image (RGB or grey array, encoded bytes or a path) -> RGB uint8 at its own size,
    turned by its EXIF orientation as the app turns it."""
    if isinstance(image, np.ndarray):
        return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)  # a grey frame
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as picture:
        return np.asarray(ImageOps.exif_transpose(picture).convert("RGB"))


def evaluation_set(args, classifier) -> list:
    """The test people's variants and the held-out real scenes, as ``signdigits evaluate``
    builds them (the first ``--limit`` photos and frames)."""
    from signdigits.data import load_dataset
    from signdigits.real_scenes import caltech_photos, photo_arrays, webcam_frames
    from signdigits.scenes import hand_mask

    dataset = load_dataset(args.x)
    rows = np.flatnonzero(np.isin(dataset.participants, classifier.info.get("test_participants", [])))
    if dataset.photos is None or not len(rows):
        sys.exit("the dataset needs its colour photos and the model's test participants")
    frames = webcam_frames("test", args.scenes)
    rows, frames = (rows[: args.limit], frames[: args.limit]) if args.limit else (rows, frames)
    real_photos = photo_arrays(caltech_photos("test", args.scenes))
    masks = [hand_mask(photo) for photo in dataset.photos[rows]]
    return variants(dataset.photos[rows], masks, dataset.digits[rows], SEED, args.draws,
                    real_photos=real_photos, real_frames=frames)  # fmt: skip


def measure(classifier, hands: MediaPipeHands, samples) -> tuple[dict, dict]:
    """MediaPipe's figures per variant (hand found or flagged, our accuracy in its box) and
    the median milliseconds a picture for MediaPipe and for ours, from decoded pixels."""
    found, right, seconds = {}, {}, {"mediapipe": [], "ours": []}
    for sample in samples:
        rgb = rgb_of(sample.image)
        start = time.perf_counter()
        hand = hands.find(rgb)
        seconds["mediapipe"].append(time.perf_counter() - start)
        start = time.perf_counter()
        classifier.predict(rgb)
        seconds["ours"].append(time.perf_counter() - start)
        if sample.variant in FRAME_VARIANTS:
            hit = hand is not None and hand_found(hand[0], sample.hands)
        else:
            hit = hand is not None
        found.setdefault(sample.variant, []).append(hit)
        if sample.digit is not None:
            answer = classifier.predict(sample.image, box=hand[0]) if hand else None
            right.setdefault(sample.variant, []).append(bool(answer and answer.ok and answer.digit == sample.digit))
    table = {}
    for variant, hits in found.items():
        if variant == "no hand":
            table[variant] = {"images": len(hits), "flagged": 1 - float(np.mean(hits))}
        else:
            table[variant] = {"images": len(hits), "hand_found": float(np.mean(hits))}
        if variant in right:
            table[variant]["accuracy_in_its_box"] = float(np.mean(right[variant]))
    return table, {name: 1000 * float(np.median(times)) for name, times in seconds.items()}


def format_anchor(ours: dict, theirs: dict, ms: dict) -> str:
    """The figures side by side as a Markdown table and two lines."""
    lines = ["| the picture | images | ours: hand found | ours: accuracy | MediaPipe: hand found "
             "| our classifier in MediaPipe's box |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for variant in VARIANTS:
        if variant == "no hand" or variant not in theirs:
            continue
        mine, row = ours[variant], theirs[variant]
        found = mine["hand_found"] if "hand_found" in mine else 1 - mine["no_hand"]
        accuracy = f"{mine['accuracy']:.1%}" if "accuracy" in mine else ""
        in_box = f"{row['accuracy_in_its_box']:.1%}" if "accuracy_in_its_box" in row else ""
        lines.append(f"| {variant} | {row['images']} | {found:.1%} | {accuracy} | {row['hand_found']:.1%} | {in_box} |")
    lines.append("")
    if "no hand" in theirs:
        lines.append(f"Scenes without a hand flagged, of {theirs['no hand']['images']}: ours "
                     f"{ours['no hand']['flagged']:.1%} (no hand, or confidence below {UNSURE_BELOW:.0%}), "
                     f"MediaPipe {theirs['no hand']['flagged']:.1%} (no hand detected).  ")  # fmt: skip
    lines.append(f"Milliseconds a picture from its decoded pixels, median: MediaPipe {ms['mediapipe']:.1f} "
                 f"(palm detection and landmarks), ours {ms['ours']:.1f} (Classifier.predict).")  # fmt: skip
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL_PATH, help="classifier (default: bundled)")
    parser.add_argument("--localizer", default=DEFAULT_LOCALIZER_PATH, help="localizer (default: bundled)")
    parser.add_argument("--x", help="dataset arrays' x.npy (default: dataset/x.npy)")
    parser.add_argument("--scenes", default=DEFAULT_SCENES_DIR, help="the real scenes' folder")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test photos and N webcam frames")
    parser.add_argument("--draws", type=int, default=1, help="draws of the pictures made at random")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    from signdigits.classifier import Classifier

    classifier = Classifier(args.model, args.localizer)
    hands = MediaPipeHands()
    samples = evaluation_set(args, classifier)
    print(f"{len(samples)} pictures", file=sys.stderr)
    ours = evaluate(classifier, samples)["variants"]
    theirs, ms = measure(classifier, hands, samples)
    print(format_anchor(ours, theirs, ms))
    if args.json:
        figures = {"date": date.today().isoformat(), "limit": args.limit, "draws": args.draws,
                   "ours": ours, "mediapipe": theirs, "ms_per_picture": ms}  # fmt: skip
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
