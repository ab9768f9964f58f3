"""The training report in plain words: how well the model reads each kind of photo, and
which signs it takes for which (no Streamlit; the app's Model page shows these)."""

import numpy as np

from signdigits.evaluate import FRAME_VARIANTS

#: The evaluate variants, as a person would say them.
VARIANT_WORDS = {
    "plain": "A plain photo, like the training photos",
    "mirrored": "The left hand",
    "grey": "A grey (black-and-white) photo",
    "rotated": "The hand turned 15–25°",
    "far": "From further away (the hand 40% of the frame)",
    "dark": "Before a dark background",
    "busy": "Before a real photo it never saw",
    "webcam": "A webcam-like frame on a real photo (small hand, blur, noise)",
    "silhouette": "A filled drawing of the hand",
    "outline": "Only the hand's outline, drawn",
    "thin outline": "The outline drawn with a thin pen",
    "thick outline": "The outline drawn with a thick pen",
    "real webcam": "A real webcam frame of a room it never saw: it finds the hand",
    "real webcam in grey": "The same frame in grey: it finds the hand",
    "no hand": "A real photo without a hand: it says so",
}
#: What counts as read right in the rows that show no digit.
SCORE_KEYS = {**dict.fromkeys(FRAME_VARIANTS, "hand_found"), "no hand": "flagged"}


def robustness(test: dict) -> list[tuple[str, float, int]]:
    """``(kind of photo in words, share read right, photos)`` per variant, in report order."""
    return [(VARIANT_WORDS.get(name, name), row[SCORE_KEYS.get(name, "accuracy")], row["images"])
            for name, row in test["variants"].items()]  # fmt: skip


def confusions(matrix, count: int = 3) -> list[tuple[int, int, int, int]]:
    """The ``count`` commonest mistakes: ``(sign, taken for, times, photos of that sign)``,
    from a confusion matrix whose rows are the true digits."""
    matrix = np.asarray(matrix)
    wrong = matrix.copy()
    np.fill_diagonal(wrong, 0)
    order = np.argsort(wrong, axis=None)[::-1][:count]
    pairs = [np.unravel_index(i, wrong.shape) for i in order]
    return [(int(t), int(a), int(wrong[t, a]), int(matrix[t].sum())) for t, a in pairs if wrong[t, a]]
