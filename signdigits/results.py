"""Result rows as the CLI's CSV and the app's table/download share them.

No cell can start a spreadsheet formula: text that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return (a file named ``=HYPERLINK(...).jpg``, say) gets a leading
``'``, as OWASP advises against CSV injection.
"""

import csv
import io

from signdigits import NUM_CLASSES
from signdigits.prediction import Prediction

BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
CSV_COLUMNS = ["file", "digit", "confidence", *(f"p{d}" for d in range(NUM_CLASSES)),
               *BOX_COLUMNS, "error"]  # fmt: skip
#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_row(prediction: Prediction) -> dict:
    """One CSV row: file, digit, confidence, p0..p9, the hand's box, error (empty cells
    where not known)."""
    row = {"file": neutralise(prediction.name), "digit": "", "confidence": "",
           "error": neutralise(prediction.error or "")}  # fmt: skip
    row.update({f"p{d}": "" for d in range(NUM_CLASSES)})
    row.update(dict.fromkeys(BOX_COLUMNS, ""))
    if prediction.box is not None:
        row.update({k: f"{v:.1f}" for k, v in zip(BOX_COLUMNS, prediction.box)})
    if prediction.ok:
        row["digit"] = prediction.digit
        row["confidence"] = f"{prediction.confidence:.6f}"
        row.update({f"p{d}": f"{p:.6f}" for d, p in enumerate(prediction.probabilities)})
    return row


def csv_writer(stream) -> csv.DictWriter:
    """A DictWriter for result rows on ``stream``, header already written.

    Lines end in CRLF (RFC 4180): the writer quotes any cell that holds a CR or LF, so a
    bare CR inside a name cannot start a new row (nor a formula at the start of one).
    """
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    return writer


def to_csv(predictions) -> str:
    """All ``predictions`` as CSV text."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    for prediction in predictions:
        writer.writerow(to_row(prediction))
    return buffer.getvalue()
