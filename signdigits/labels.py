"""The index-to-digit table: the one place that knows which digit each class index is.

The table is data (``labels.json`` in this package). Training writes it into the model
file, and inference reads it back from there, so a model never needs the table guessed.
"""

import json
from pathlib import Path

from signdigits import NUM_CLASSES

LABELS_PATH = Path(__file__).with_name("labels.json")


def validate_table(table, source="the label table") -> tuple[int, ...]:
    """Return ``table`` as a tuple if it is a permutation of the digits 0-9."""
    try:
        values = tuple(int(v) for v in table)
    except (TypeError, ValueError):
        values = ()
    if sorted(values) != list(range(NUM_CLASSES)):
        raise ValueError(
            f"{source} must list each digit 0-9 exactly once, in class-index order; got {table!r}."
        )
    return values


def load_table(path: Path = LABELS_PATH) -> tuple[int, ...]:
    """Read the index-to-digit table from ``labels.json``."""
    with open(path, encoding="utf-8") as fh:
        return validate_table(json.load(fh)["index_to_digit"], source=str(path))


INDEX_TO_DIGIT: tuple[int, ...] = load_table()


def digit_to_index(digit: int, table=INDEX_TO_DIGIT) -> int:
    """Class index of ``digit`` under ``table``."""
    return table.index(int(digit))


def digit_order(table) -> list[int]:
    """Column order that turns class-index probabilities into digit order 0..9."""
    return [table.index(d) for d in range(NUM_CLASSES)]
