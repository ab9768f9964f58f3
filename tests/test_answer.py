"""How answers are put to people: the percent format, "Not sure" and its advice."""

import numpy as np
import pytest

from signdigits import answer
from signdigits.answer import judge, percent, percent_points, top_line
from signdigits.prediction import Prediction


def guess(confidence: float, box=(0, 0, 100, 100)) -> Prediction:
    rest = (1 - confidence) / 9
    probabilities = tuple(confidence if d == 5 else rest for d in range(10))
    return Prediction("x", digit=5, confidence=confidence, probabilities=probabilities, box=box)


def test_one_percent_format():
    assert [percent(p) for p in (0.0, 0.6, 0.953, 0.996, 1.0)] == ["0%", "60%", "95%", "99%", "100%"]


def test_whole_percent_points_are_the_same_figures():
    shares = np.linspace(0, 1, 2001)
    assert [f"{percent_points(s)}%" for s in shares] == [percent(s) for s in shares]
    assert percent_points(0.9974) == 99 and percent_points(1.0) == 100


def test_sure_at_or_above_the_threshold():
    assert judge(guess(0.6), 0.6).sure and not judge(guess(0.59), 0.6).sure


def test_the_advice_fits_what_went_wrong():
    assert judge(Prediction("x", error=answer.NO_HAND), 0.6).advice == answer.NO_HAND_ADVICE
    small = judge(guess(0.3, box=(0, 0, 40, 40)), 0.6, picture_size=(640, 480))
    assert small.advice == answer.SMALL_HAND_ADVICE
    low = judge(guess(0.3, box=(0, 0, 300, 300)), 0.6, picture_size=(640, 480))
    assert low.advice == answer.LOW_CONFIDENCE_ADVICE


@pytest.mark.parametrize("k, expected", [(1, "5 (37%)"), (3, "5 (37%), 0 (7%) or 1 (7%)")])
def test_top_line_names_the_likeliest_digits(k, expected):
    assert top_line(guess(0.37), k) == expected
