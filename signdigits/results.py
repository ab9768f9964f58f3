"""Result rows as the CLI's CSV and the app's table/download share them."""

import csv
import io

from signdigits import NUM_CLASSES
from signdigits.classifier import Prediction

BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
CSV_COLUMNS = ["file", "digit", "confidence", *(f"p{d}" for d in range(NUM_CLASSES)),
               *BOX_COLUMNS, "error"]  # fmt: skip


def to_row(prediction: Prediction) -> dict:
    """One CSV row: file, digit, confidence, p0..p9, the hand's box, error (empty cells
    where not known)."""
    row = {"file": prediction.name, "digit": "", "confidence": "", "error": prediction.error or ""}
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
    """A DictWriter for result rows on ``stream``, header already written."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    return writer


def to_csv(predictions) -> str:
    """All ``predictions`` as CSV text."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    for prediction in predictions:
        writer.writerow(to_row(prediction))
    return buffer.getvalue()
