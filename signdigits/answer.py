"""How an answer is put to a person: one percent format, and whether to say "Not sure",
with one line of advice that fits what went wrong."""

from dataclasses import dataclass

from signdigits.prediction import NO_HAND, Prediction

#: A hand whose box's longer side is below this share of the picture's shorter side is
#: "small": the crop the model reads has few pixels of it.
SMALL_HAND = 0.2
TOP = 3

#: Said under the headline "No hand found", so it does not repeat it.
NO_HAND_ADVICE = "Hold one hand up, closer to the camera and in good light, or mark it yourself: Draw → Crop a photo."
SMALL_HAND_ADVICE = "The hand is small in the picture: come closer, or mark it yourself (Draw → Crop a photo)."
LOW_CONFIDENCE_ADVICE = (
    "Make the sign clear and whole: in a photo, the hand still and facing the camera before a "
    "plain background; in a drawing, each finger apart. The chart of the ten signs shows each one."
)


def percent_points(share: float) -> int:
    """``share`` in whole percent, as :func:`percent` writes it: short of 1 is never 100
    (244 of 245 right reads 99)."""
    return round(100 * (min(share, 0.99) if share < 1 else share))


def percent(share: float) -> str:
    """The one percent format of the app: ``0.953`` -> ``"95%"``, ``0.997`` -> ``"99%"``."""
    return f"{percent_points(share)}%"


@dataclass(frozen=True)
class Verdict:
    """Whether to state the digit plainly and, if not, why and what to do."""

    sure: bool
    advice: str = ""


def hand_is_small(box, picture_size) -> bool:
    """Whether the hand's ``box`` is small in a picture of ``picture_size`` (width, height)."""
    if box is None:
        return False
    x0, y0, x1, y1 = box
    return max(x1 - x0, y1 - y0) < SMALL_HAND * min(picture_size)


def judge(prediction: Prediction, threshold: float, picture_size=None) -> Verdict:
    """Sure when the confidence reaches ``threshold``; otherwise the advice that fits."""
    if not prediction.ok:
        return Verdict(False, NO_HAND_ADVICE if prediction.error == NO_HAND else prediction.error)
    if prediction.confidence >= threshold:
        return Verdict(True)
    if picture_size is not None and hand_is_small(prediction.box, picture_size):
        return Verdict(False, SMALL_HAND_ADVICE)
    return Verdict(False, LOW_CONFIDENCE_ADVICE)


def top_line(prediction: Prediction, k: int = TOP) -> str:
    """``"5 (37%), 3 (30%) or 8 (12%)"``: the ``k`` likeliest digits."""
    parts = [f"{digit} ({percent(p)})" for digit, p in prediction.top(k)]
    return ", ".join(parts[:-1]) + f" or {parts[-1]}" if len(parts) > 1 else "".join(parts)
