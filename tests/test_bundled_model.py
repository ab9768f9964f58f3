"""The bundled model.h5 still reaches the accuracy its report claims on unseen participants."""

import csv
import json

import numpy as np
import pytest

from signdigits import DEFAULT_MODEL_PATH, report_dir_for
from signdigits.labels import INDEX_TO_DIGIT

pytestmark = pytest.mark.timeout(300)

REPORT_PATH = report_dir_for(DEFAULT_MODEL_PATH) / "report.json"


@pytest.fixture(scope="module")
def report():
    return json.loads(REPORT_PATH.read_text())


def test_model_file_carries_the_label_table_and_its_split(classifier, report):
    assert classifier.index_to_digit == INDEX_TO_DIGIT
    assert classifier.info["test_participants"] == report["split"]["test_participants"]
    assert classifier.info["test_accuracy"] == pytest.approx(report["test"]["accuracy"])


def test_accuracy_on_the_test_participants(classifier, report, shared_dir):
    test_people = set(report["split"]["test_participants"])
    with open(shared_dir / "participants.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["participant"]) in test_people]
    assert rows, "no photo of the report's test participants in ../shared"
    assert {int(r["participant"]) for r in rows} == test_people
    items = [(r["file"], shared_dir / r["file"]) for r in rows]
    truth = {r["file"]: int(r["digit"]) for r in rows}
    predictions = list(classifier.predict_many(items))
    assert all(p.ok for p in predictions), [p.error for p in predictions if not p.ok][:3]
    accuracy = np.mean([p.digit == truth[p.name] for p in predictions])
    claimed = report["test"]["accuracy"]
    assert len(rows) == report["split"]["test_images"]
    assert accuracy >= claimed - 0.01, f"accuracy {accuracy:.4f} vs {claimed:.4f} in the report"
