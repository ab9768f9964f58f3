"""Model: how well the bundled model reads, in plain words, and where it fails."""

import streamlit as st

import components as ui
from signdigits import report_dir_for
from signdigits.answer import percent
from signdigits.pictures import example_paths
from signdigits.report import read_report
from signdigits.summary import confusions, robustness

MISTAKES_SHOWN = 3
ROW_PIXELS = 35  # a table row's height in Streamlit's dataframe


def headline(report: dict):
    test, split = report["test"], report["split"]
    plain = test["variants"]["plain"]
    people = len(split["test_participants"])
    st.markdown(
        f"Tested on photos of **{people} people it never saw** while it learned. Of their plain "
        f"photos it reads **{percent(plain['accuracy'])}** right. It does worse where a hand is "
        "small in the picture, before a busy scene or in a webcam frame: the table says how "
        "much worse."
    )


def robustness_table(test: dict):
    rows = [
        {"Read right": percent(share), "The photo": words, "Pictures": images}
        for words, share, images in robustness(test)
    ]  # the figure first: on a phone the long words run off to the right
    # every row shown, none behind a scroll bar
    st.dataframe(rows, hide_index=True, width="stretch", height=ROW_PIXELS * (len(rows) + 1) + 3)


def mistakes(test: dict):
    """The signs it confuses most, each shown beside the sign it takes it for."""
    st.markdown("**Where it goes wrong most often** (all the pictures above)")
    examples = example_paths()
    for truth, answer, times, pictures in confusions(test["confusion_matrix"], MISTAKES_SHOWN):
        columns = st.columns([1, 1, 4], vertical_alignment="center")
        for column, digit in zip(columns, (truth, answer)):
            if digit in examples:
                column.image(str(examples[digit]), caption=f"sign for {digit}", width=80)
        columns[2].markdown(f"A **{truth}** read as **{answer}**: {times} of {pictures} pictures of a {truth}.")


def confidence(test: dict, directory):
    st.markdown(
        "**How far to trust its confidence.** When it says it is 90% sure, it is right about "
        f"that often: on average its confidence is {percent(test['ece'])} away from how often "
        "it is right."
    )
    if (directory / "reliability.png").is_file():
        with st.expander("Confidence against how often it is right"):
            st.image(str(directory / "reliability.png"), width=480)


def training_time(report: dict) -> str:
    """How long the last training took, and whether it went on from a trained classifier."""
    minutes, config = report["training_seconds"] / 60, report["config"]
    if config.get("init"):
        return (f"Its last training went on from a trained classifier (`{config['init']}`): a second, gentler "
                f"cycle of {config['epochs']} epochs, {minutes:.1f} minutes on a laptop-class CPU.")  # fmt: skip
    return f"Training took {minutes:.1f} minutes on a laptop-class CPU."


@ui.guarded
def page():
    directory = report_dir_for(ui.model_path())
    try:
        report = read_report(directory)
    except (OSError, ValueError) as exc:
        ui.log.warning("no training report in %s: %s", directory, exc)
        st.info(
            f"No training report next to {ui.model_path().name} (looked in `{directory}`). "
            "`python train_model.py` writes one."
        )
        return
    test = report["test"]
    headline(report)
    table_column, side_column = st.columns([3, 2], gap="large")
    with table_column:
        robustness_table(test)
    with side_column:
        mistakes(test)
        confidence(test, directory)
    with st.expander("How it was trained"):
        split = report["split"]
        size_kib = (report["model_bytes"] + report["localizer_bytes"]) / 1024
        st.markdown(
            f"- Two small networks, {size_kib:.0f} KiB together: one finds the hand, one reads it.\n"
            f"- Photos of {split['train_images']:,} training, {split['val_images']:,} tuning and "
            f"{split['test_images']:,} test images, split by person.\n"
            f"- {training_time(report)}\n"
            f"- Command: `{report['config']['command']}`"
        )
        if (directory / "confusion_matrix.png").is_file():
            st.image(str(directory / "confusion_matrix.png"), width=480)
        if (directory / "training_curves.png").is_file():
            st.image(str(directory / "training_curves.png"), width="stretch")
            st.caption(
                "Training figures are measured on crops made harder (drawn, dimmed, cluttered, blurred) "
                "than the tuning people's, and more so as a run goes on, so training accuracy can fall while "
                "tuning accuracy holds."
            )


page()
