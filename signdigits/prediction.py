"""The answer for one image, as every front end and the CSV rows see it (no TensorFlow here)."""

from dataclasses import dataclass

#: The error of a picture in which the hand localizer finds no hand.
NO_HAND = "no hand found"


@dataclass(frozen=True)
class Prediction:
    """The answer for one image. ``probabilities[d]`` is the probability that the picture
    shows a hand signing digit ``d``: the classifier's probability of ``d`` times
    ``hand_score``, the localizer's probability that there is a hand (1 for a box a person
    drew), so the ten add up to ``hand_score``.

    ``box`` is where the hand was found (left, top, right, bottom, in pixels).
    """

    name: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: tuple[float, ...] | None = None
    error: str | None = None
    box: tuple[float, float, float, float] | None = None
    hand_score: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def top(self, k: int = 2) -> list[tuple[int, float]]:
        """The ``k`` most likely digits with their probabilities, best first."""
        if self.probabilities is None:
            return []
        ranked = sorted(range(len(self.probabilities)), key=lambda d: -self.probabilities[d])
        return [(d, self.probabilities[d]) for d in ranked[:k]]
