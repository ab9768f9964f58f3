"""The training report in plain words."""

from signdigits.summary import VARIANT_WORDS, confusions, robustness


def test_robustness_names_each_kind_of_photo_in_words():
    test = {"variants": {"plain": {"accuracy": 0.95, "images": 10}, "real webcam": {"hand_found": 0.8, "images": 7},
                         "no hand": {"flagged": 0.9, "images": 5}}}  # fmt: skip
    assert robustness(test) == [(VARIANT_WORDS["plain"], 0.95, 10), (VARIANT_WORDS["real webcam"], 0.8, 7),
                                (VARIANT_WORDS["no hand"], 0.9, 5)]  # fmt: skip


def test_confusions_are_the_commonest_mistakes_first():
    matrix = [[8, 2, 0], [0, 10, 0], [5, 1, 4]]
    assert confusions(matrix, 2) == [(2, 0, 5, 10), (0, 1, 2, 10)]
    assert confusions([[3, 0], [0, 3]]) == []
