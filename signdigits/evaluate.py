"""``python -m signdigits evaluate``: how the models read photos taken the way people take them.

From the photos of held-out participants this builds the kinds of picture a user hands
the app (:data:`VARIANTS`): the plain photo, the mirror image (a left hand), turned by
15-25 degrees, taken from further away (hand 40 % of the frame), before a dark
background, before a busy natural scene, a 640x480 webcam frame (hand 35-50 % of its
height, busy scene, blur, noise, JPEG), the hand drawn as a filled silhouette or only its
outline on the app's canvas, the photo in grey, and scenes with no hand at all. Every
picture goes through the classifier's one path (localizer, crop, classifier), and the table
gives accuracy per variant, how often a hand was missed, the expected calibration error
(ECE) overall and per variant, and how many hand-less scenes were flagged (no hand found,
or confidence below :data:`UNSURE_BELOW`).

Judged on sources never trained on: the busy scenes, the webcam frames and the hand-less
scenes are made of real photos held out from training by category, and real webcam frames
of held-out places (:mod:`signdigits.real_scenes`) give the row "real webcam": how often
the hand is found there (its box's centre in a hand's box, 1/3 to 3 times its area), and
the same frames in grey the row "real webcam in grey".
Without real photos (tests), the evaluation region of the shipped pictures stands in.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from signdigits.real_scenes import hand_found
from signdigits.scenes import background, drawing, mask_box, paste_hand, shipped_pictures
from signdigits.serving import calibrated

VARIANTS = ("plain", "mirrored", "grey", "rotated", "far", "dark", "busy", "webcam", "silhouette",
            "outline", "thin outline", "thick outline", "real webcam", "real webcam in grey", "no hand")  # fmt: skip
#: The variants that are the same picture in every draw; the others are drawn at random.
FIXED_VARIANTS = ("plain", "mirrored", "grey", "silhouette", "outline", "thin outline", "thick outline",
                  "real webcam", "real webcam in grey")  # fmt: skip
#: The variants of real webcam frames, scored by whether the hand is found.
FRAME_VARIANTS = ("real webcam", "real webcam in grey")
#: Draws of the drawn variants in an evaluation of the test people: with one draw, the
#: bundled model's busy figure moved between 89.0 and 95.5 % from draw to draw, far
#: between 91.4 and 95.9 % (245 photos).
TEST_DRAWS = 5
DRAW_SEED_STEP = 10  # draw d of an evaluation with seed s uses seed s + DRAW_SEED_STEP * d
#: Answers below this confidence are shown as "not sure" (a hand-less scene so answered
#: counts as flagged).
UNSURE_BELOW = 0.5
ECE_BINS = 15
SCENE_SIDE = 240
WEBCAM_SIZE = (640, 480)
CANVAS_SIDE = 360
#: Outline pens on the canvas, pixels: about 3.5 % of the drawn hand's height, then a thin
#: (1 %) and a thick (6 %) pen.
OUTLINE_WIDTH, THIN_PEN, THICK_PEN = 10, 3, 17


@dataclass(frozen=True)
class Sample:
    """One evaluation picture: its variant, the digit shown (None: no hand) and the image."""

    variant: str
    digit: int | None
    image: object  # RGB uint8 array, encoded bytes or a path
    hands: tuple = ()  # boxes (x0, y0, x1, y1) of the hands in it, where known without a digit


def _wall(photo: np.ndarray, rng, size: int) -> np.ndarray:
    """A wider view of the photo's own wall: its border colour, unevenly lit, a little noise."""
    border = np.concatenate([photo[0], photo[:, 0], photo[:, -1]]).astype(np.float32)
    colour = np.median(border, axis=0)
    xs = np.linspace(-1, 1, size, dtype=np.float32)
    light = 1.0 - rng.uniform(0.05, 0.2) * (xs[None, :] ** 2 + xs[:, None] ** 2)
    wall = colour * light[..., None] + rng.normal(0, 2, (size, size, 1))
    return np.clip(wall, 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _paste(rng, scene, photo, mask, height, arm=True):
    h, w = scene.shape[:2]
    box_h = height * h
    center = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.5 * box_h, h - 0.5 * box_h))
    angle = np.radians(rng.uniform(-10, 10))
    return paste_hand(scene, photo, mask, box_h, center, angle, bool(rng.random() < 0.5), arm)[0]


def variants_of(photo, mask, digit, rng, pictures, real=None) -> list[Sample]:
    """Every variant of one photo (RGB uint8 with its hand mask) showing ``digit``, on the
    held-out ``real`` photos where given (else the evaluation region of ``pictures``)."""
    pictures = pictures if real is None else real
    samples = [Sample("plain", digit, photo), Sample("mirrored", digit, photo[:, ::-1].copy()),
               Sample("grey", digit, np.repeat(np.asarray(Image.fromarray(photo).convert("L"))[..., None], 3, -1))]
    border = np.concatenate([photo[0], photo[:, 0], photo[:, -1]])
    fill = tuple(int(c) for c in np.median(border, axis=0))
    angle = rng.uniform(15, 25) * rng.choice([-1, 1])
    rotated = Image.fromarray(photo).rotate(angle, Image.Resampling.BILINEAR, fillcolor=fill)
    samples.append(Sample("rotated", digit, np.asarray(rotated)))
    samples.append(Sample("far", digit, _paste(rng, _wall(photo, rng, SCENE_SIDE), photo, mask, 0.4)))
    region = "eval" if real is None else "all"
    dark = background(rng, SCENE_SIDE, "dark", region, pictures)
    samples.append(Sample("dark", digit, _paste(rng, dark, photo, mask, rng.uniform(0.55, 0.85))))
    busy = background(rng, SCENE_SIDE, "natural", region, pictures)
    samples.append(Sample("busy", digit, _paste(rng, busy, photo, mask, rng.uniform(0.5, 0.85))))
    frame = background(rng, WEBCAM_SIZE, "natural", region, pictures)
    frame = _paste(rng, frame, photo, mask, rng.uniform(0.35, 0.5))
    frame = np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5))))
    frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    samples.append(Sample("webcam", digit, _jpeg(frame, int(rng.integers(55, 80)))))
    samples.append(Sample("silhouette", digit, drawing(mask, CANVAS_SIDE)))
    samples.append(Sample("outline", digit, drawing(mask, CANVAS_SIDE, OUTLINE_WIDTH)))
    samples.append(Sample("thin outline", digit, drawing(mask, CANVAS_SIDE, THIN_PEN)))
    samples.append(Sample("thick outline", digit, drawing(mask, CANVAS_SIDE, THICK_PEN)))
    return samples


def variants(photos, masks, digits, seed: int = 0, draws: int = 1, scenes_per_photo: float = 0.5,
             real_photos=None, real_frames=()) -> list[Sample]:  # fmt: skip
    """The evaluation set of some participants' ``photos`` (with ``masks`` and ``digits``):
    every variant of every photo, plus hand-less scenes (half as many as photos); with
    ``draws`` > 1, further draws of the variants not in :data:`FIXED_VARIANTS`, so that
    their figures depend less on one draw of positions, angles and backgrounds.

    ``real_photos`` (RGB arrays held out from training) are the backgrounds and the
    hand-less scenes; ``real_frames`` (:class:`signdigits.real_scenes.Frame`, held out)
    are the "real webcam" rows, in colour and in grey."""
    samples = _draw(photos, masks, digits, seed, scenes_per_photo, real_photos)
    samples += [Sample("real webcam", None, frame.path, frame.boxes) for frame in real_frames]
    samples += [Sample("real webcam in grey", None, _grey(frame.path), frame.boxes) for frame in real_frames]
    for draw in range(1, draws):
        samples += [sample for sample in _draw(photos, masks, digits, seed + DRAW_SEED_STEP * draw,
                                               scenes_per_photo, real_photos)
                    if sample.variant not in FIXED_VARIANTS]  # fmt: skip
    return samples


def _grey(path) -> np.ndarray:
    """The picture at ``path`` in grey, as a uint8 array (H, W)."""
    with Image.open(path) as picture:
        return np.asarray(picture.convert("L"))


def _draw(photos, masks, digits, seed, scenes_per_photo, real=None) -> list[Sample]:
    """One draw of every variant of every photo, and the hand-less scenes."""
    pictures = shipped_pictures() if real is None else real
    samples = []
    for i, (photo, mask, digit) in enumerate(zip(photos, masks, digits)):
        rng = np.random.default_rng([seed, i])
        if mask.any() and mask_box(mask)[3] > mask_box(mask)[1]:
            samples += variants_of(photo, mask, int(digit), rng, pictures, real)
    rng = np.random.default_rng([seed, len(photos)])
    for i in range(int(len(photos) * scenes_per_photo)):
        size = WEBCAM_SIZE if i % 2 else SCENE_SIDE
        if real is None:
            scene = background(rng, size, ("natural", "any", "dark")[i % 3], "eval", pictures)
        else:  # a real photo, one in three in the dark
            scene = background(rng, size, "natural", "all", pictures)
            scene = (scene * rng.uniform(0.08, 0.4)).astype(np.uint8) if i % 3 == 2 else scene
        samples.append(Sample("no hand", None, scene))
    return samples


def _log_probabilities(classifier, samples):
    """The classifier's log-probabilities at temperature 1, up to a constant per row (NaN
    rows where no hand was found), and the predictions."""
    predictions = list(classifier.predict_many(((s.variant, s.image) for s in samples), temperature=1))
    logs = np.full((len(samples), 10), np.nan)
    for i, prediction in enumerate(predictions):
        if prediction.ok:
            logs[i] = np.log(np.maximum(prediction.probabilities, 1e-12))
    return logs, predictions


def _softmax(logs, temperature):
    """Probabilities at ``temperature``; rows of NaN (no hand found) stay NaN."""
    probs = np.full_like(logs, np.nan)
    found = ~np.isnan(logs[:, 0])
    probs[found] = calibrated(logs[found], temperature)
    return probs


def fit_temperature(classifier, samples) -> float:
    """The temperature that minimises the negative log-likelihood of the true digits on
    ``samples`` (the validation people's variants) where a hand was found."""
    from scipy.optimize import minimize_scalar

    logs, _ = _log_probabilities(classifier, samples)
    truth = np.asarray([-1 if s.digit is None else s.digit for s in samples])
    keep = (truth >= 0) & ~np.isnan(logs[:, 0])
    logs, truth = logs[keep], truth[keep]

    def nll(log_t):
        probs = _softmax(logs, np.exp(log_t))
        return -np.mean(np.log(np.maximum(probs[np.arange(len(truth)), truth], 1e-12)))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def calibration(confidence, correct, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error and the reliability diagram's bins."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += inside.mean() * gap
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]),
                         "count": int(inside.sum()), "confidence": float(confidence[inside].mean()),
                         "accuracy": float(correct[inside].mean())})  # fmt: skip
    return float(ece), rows


def evaluate(classifier, samples) -> dict:
    """Accuracy and ECE per variant, missed hands, hands found in real webcam frames,
    flagged hand-less scenes, the overall ECE and its bins."""
    logs, predictions = _log_probabilities(classifier, samples)
    hand_scores = np.asarray([1.0 if p.hand_score is None else p.hand_score for p in predictions])
    probs = _softmax(logs, classifier.temperature) * hand_scores[:, None]  # as the answers give them
    table, confidences, corrects, mistakes = {}, [], [], []
    confusion = np.zeros((10, 10), int)
    for variant in VARIANTS:
        rows = [i for i, s in enumerate(samples) if s.variant == variant]
        if not rows:
            continue
        found = ~np.isnan(probs[rows, 0])
        confidence = np.where(found, np.nan_to_num(probs[rows]).max(axis=1), 0.0)
        if variant == "no hand":
            flagged = ~found | (confidence < UNSURE_BELOW)
            table[variant] = {"images": len(rows), "flagged": float(flagged.mean())}
            continue
        if variant in FRAME_VARIANTS:
            hits = [predictions[i].ok and hand_found(predictions[i].box, samples[i].hands) for i in rows]
            table[variant] = {"images": len(rows), "hand_found": float(np.mean(hits))}
            continue
        answer = np.where(found, np.nan_to_num(probs[rows]).argmax(axis=1), -1)
        truth = np.asarray([samples[i].digit for i in rows])
        correct = answer == truth
        table[variant] = {"images": len(rows), "accuracy": float(correct.mean()),
                          "no_hand": float((~found).mean()),
                          "ece": calibration(confidence[found], correct[found])[0]}  # fmt: skip
        np.add.at(confusion, (truth[found], answer[found]), 1)
        confidences += list(confidence[found])
        corrects += list(correct[found])
        mistakes += [(variant, int(t), int(a), float(c)) for t, a, c, ok in
                     zip(truth, answer, confidence, correct) if not ok][:3]  # fmt: skip
    ece, bins = calibration(confidences, corrects)
    return {"variants": table, "ece": ece, "reliability": bins, "temperature": classifier.temperature,
            "confusion_matrix": confusion.tolist(),
            "mistakes": [dict(zip(("variant", "digit", "answer", "confidence"), m)) for m in mistakes]}


def format_table(evaluation: dict) -> str:
    """The evaluation as a Markdown table."""
    lines = ["| the photo | images | accuracy | no hand found | ECE |", "|---|---:|---:|---:|---:|"]
    for variant, row in evaluation["variants"].items():
        if "accuracy" in row:
            ece = f"{row['ece']:.3f}" if "ece" in row else ""
            lines.append(f"| {variant} | {row['images']} | {row['accuracy']:.1%} | {row['no_hand']:.1%} | {ece} |")
    lines.append("")
    if "real webcam" in evaluation["variants"]:
        row, grey = evaluation["variants"]["real webcam"], evaluation["variants"].get("real webcam in grey")
        lines.append(f"Real webcam frames of places never trained on, hand found: {row['hand_found']:.1%} "
                     f"of {row['images']}" + (f" ({grey['hand_found']:.1%} in grey)" if grey else "") + ".  ")
    if "no hand" in evaluation["variants"]:
        row = evaluation["variants"]["no hand"]
        lines.append(f"Scenes without a hand flagged (no hand, or confidence below "
                     f"{UNSURE_BELOW:.0%}): {row['flagged']:.1%} of {row['images']}.  ")
    lines.append(f"Expected calibration error (ECE): {evaluation['ece']:.3f} at temperature "
                 f"{evaluation['temperature']:.2f}.")
    if evaluation.get("draws", 1) > 1:
        drawn = ", ".join(v for v in VARIANTS if v not in FIXED_VARIANTS)
        lines[-1] += "  "
        lines.append(f"{evaluation['draws']} draws of the pictures made at random ({drawn}): "
                     "position, angle, background.")
    return "\n".join(lines)
