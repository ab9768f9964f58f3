"""The index-to-digit table: data in signdigits/labels.json, a permutation, used both ways."""

import json

import numpy as np
import pytest

from signdigits import NUM_CLASSES
from signdigits.labels import (
    INDEX_TO_DIGIT,
    LABELS_PATH,
    digit_order,
    digit_to_index,
    load_table,
    validate_table,
)


def test_table_comes_from_labels_json():
    on_disk = json.loads(LABELS_PATH.read_text(encoding="utf-8"))["index_to_digit"]
    assert INDEX_TO_DIGIT == tuple(on_disk) == load_table()
    assert INDEX_TO_DIGIT == (9, 0, 7, 6, 1, 8, 4, 3, 2, 5)  # the Kaggle copy's order


def test_table_is_a_permutation_of_the_digits():
    assert isinstance(INDEX_TO_DIGIT, tuple)
    assert sorted(INDEX_TO_DIGIT) == list(range(NUM_CLASSES))


@pytest.mark.parametrize("table", [INDEX_TO_DIGIT, tuple(range(10)), (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)])
def test_digit_to_index_inverts_the_table(table):
    for digit in range(NUM_CLASSES):
        assert table[digit_to_index(digit, table)] == digit
    for index, digit in enumerate(table):
        assert digit_to_index(digit, table) == index
    assert digit_to_index(np.int64(0), table) == table.index(0)


def test_digit_to_index_defaults_to_the_bundled_table():
    assert [digit_to_index(d) for d in range(10)] == [1, 4, 8, 7, 6, 9, 3, 2, 5, 0]


@pytest.mark.parametrize("table", [INDEX_TO_DIGIT, tuple(range(10)), (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)])
def test_digit_order_reorders_probabilities_into_digit_order(table):
    by_index = np.arange(10) / 10.0 + np.array(table)  # column i carries digit table[i]
    by_digit = by_index[digit_order(table)]
    assert np.array_equal(np.floor(by_digit), np.arange(10))


def test_digit_to_index_refuses_unknown_digits():
    with pytest.raises(ValueError):
        digit_to_index(10)


@pytest.mark.parametrize(
    "table",
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 8],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        ["a"] * 10,
        None,
        5,
        [],
    ],
)
def test_validate_table_refuses_non_permutations(table):
    with pytest.raises(ValueError, match="each digit 0-9 exactly once"):
        validate_table(table)


def test_validate_table_accepts_strings_of_digits():
    assert validate_table([str(d) for d in INDEX_TO_DIGIT]) == INDEX_TO_DIGIT


def test_load_table_names_the_broken_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"index_to_digit": [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]}))
    with pytest.raises(ValueError, match=str(path)):
        load_table(path)
    path.write_text(json.dumps({"index_to_digit": list(range(10))[::-1]}))
    assert load_table(path) == tuple(range(9, -1, -1))
