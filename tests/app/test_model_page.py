"""The Model page: plain words first, the robustness table, where it goes wrong."""

from signdigits import DEFAULT_MODEL_PATH, report_dir_for
from signdigits.answer import percent
from signdigits.report import read_report
from signdigits.summary import VARIANT_WORDS, confusions
from tests.app.conftest import run_app


def test_the_report_in_plain_words():
    report = read_report(report_dir_for(DEFAULT_MODEL_PATH))
    at = run_app("app_pages/model.py")
    text = " ".join(m.value for m in at.markdown)
    plain = report["test"]["variants"]["plain"]["accuracy"]
    assert f"reads **{percent(plain)}** right" in text
    for jargon in ("ROC", "AUC", "teacher", "ECE", "calibration error"):
        assert jargon not in text, jargon
    table = next(df.value for df in at.dataframe)
    assert list(table.columns)[0] == "Read right"  # in view on a phone too
    assert list(table["The photo"])[: len(VARIANT_WORDS)] == list(VARIANT_WORDS.values())
    truth, answer, times, _ = confusions(report["test"]["confusion_matrix"])[0]
    assert f"A **{truth}** read as **{answer}**: {times} of" in text


def test_a_training_that_went_on_from_a_trained_classifier_says_so():
    report = read_report(report_dir_for(DEFAULT_MODEL_PATH))
    text = " ".join(m.value for m in run_app("app_pages/model.py").markdown)
    if report["config"].get("init"):
        assert f"went on from a trained classifier (`{report['config']['init']}`)" in text
    else:
        assert "Training took" in text
