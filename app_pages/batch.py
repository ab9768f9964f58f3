"""Batch: many photos, a .zip or a whole folder; a table, counts per digit, a CSV."""

import base64

import altair as alt
import pandas as pd
import streamlit as st

import components as ui
from signdigits import NUM_CLASSES
from signdigits.answer import percent, percent_points
from signdigits.classifier import BATCH_SIZE
from signdigits.pictures import thumbnail_jpeg
from signdigits.preprocess import UnreadableImageError, limits_text
from signdigits.results import to_csv
from signdigits.sources import iter_uploads

#: Megabytes per uploaded file here: a .zip of a whole folder may be big; each photo
#: inside is still held to ui.PHOTO_LIMIT_MB.
BATCH_LIMIT_MB = 200
NOTES_SHOWN = 20
ROUND = "batch_round"  # bumped by "New batch": the uploaders start empty


def new_batch():
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1
    for key in ("batch", "batch_signature"):
        st.session_state.pop(key, None)


def thumbnail_url(data: bytes | None) -> str:
    """A small JPEG data URL for the table, or "" (an empty cell; None would read "None")
    if there is no picture to show."""
    if not data:
        return ""
    try:
        jpeg = thumbnail_jpeg(data)
    except UnreadableImageError as exc:
        ui.log.info("no thumbnail: %s", exc)
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def classify_uploads(classifier, uploads) -> dict:
    """Stream the uploads through ``predict_many``; keep only rows and small thumbnails."""
    progress = st.progress(0.0, text=f"Reading {len(uploads):,} files…")
    notes: list[str] = []
    items = list(iter_uploads(((upload.name, upload) for upload in uploads), note=notes.append))
    kept: dict[int, bytes] = {}  # bytes of the batch in flight, for thumbnails

    def keeping(index, read):
        def read_and_keep():
            kept[index] = data = read()
            return data

        return read_and_keep

    tracked = ((name, keeping(i, read)) for i, (name, read) in enumerate(items))
    predictions, thumbnails = [], []
    progress.progress(0.0, text=f"Classifying {len(items):,} images…")
    for i, prediction in enumerate(classifier.predict_many(tracked)):
        data = kept.pop(i, None)
        thumbnails.append(thumbnail_url(data))  # a picture without a hand is shown too
        predictions.append(prediction)
        if (i + 1) % BATCH_SIZE == 0 or i + 1 == len(items):
            progress.progress((i + 1) / len(items), text=f"Classified {i + 1:,} of {len(items):,}")
    progress.empty()
    return {"predictions": predictions, "thumbnails": thumbnails, "notes": notes, "csv": to_csv(predictions)}


def row_note(prediction, threshold: float) -> str:
    """What a row's reader should know: nothing, "Not sure", or the problem in words."""
    if not prediction.ok:
        return prediction.error[:1].upper() + prediction.error[1:]
    return "Not sure" if prediction.confidence < threshold else ""


def batch_table(batch: dict, threshold: float, only_doubtful: bool) -> pd.DataFrame:
    predictions = batch["predictions"]
    frame = pd.DataFrame(
        {
            "thumbnail": batch["thumbnails"],
            "file": [p.name for p in predictions],
            "digit": [str(p.digit) if p.ok else "–" for p in predictions],
            "confidence": [percent_points(p.confidence) if p.ok else None for p in predictions],
            "note": [row_note(p, threshold) for p in predictions],
        }
    )
    if only_doubtful:
        frame = frame[frame["note"] != ""]
    return frame


def digit_chart(good):
    """Images per digit: upright labels, each bar's count written on it, room above."""
    counts = pd.Series([p.digit for p in good], dtype="int64").value_counts()
    counts = counts.reindex(range(NUM_CLASSES), fill_value=0)
    frame = pd.DataFrame({"digit": [str(d) for d in range(NUM_CLASSES)], "images": counts.to_numpy()})
    top = max(1, int(counts.max())) * 1.2
    base = alt.Chart(frame, height=260).encode(
        x=alt.X("digit:N", axis=alt.Axis(labelAngle=0, title="digit")),
        y=alt.Y("images:Q", scale=alt.Scale(domain=[0, top]), axis=None),
    )
    chart = base.mark_bar(color=ui.ACCENT) + base.mark_text(dy=-8).encode(text="images:Q")
    st.altair_chart(chart, width="stretch")


def uploaders() -> list:
    """What both pickers hold, together (said in one line when both hold files)."""
    round_ = st.session_state.get(ROUND, 0)
    files_column, folder_column = st.columns(2)
    with files_column.container(key="batch_files"):
        files = st.file_uploader(
            f"Photos (up to {ui.PHOTO_LIMIT_MB} MB each) or a .zip (up to {BATCH_LIMIT_MB} MB)",
            accept_multiple_files=True,
            help=limits_text(),
            key=f"batch_files_{round_}",
            max_upload_size=BATCH_LIMIT_MB,
        )
    with folder_column.container(key="batch_folder"):
        folder = st.file_uploader(
            "A whole folder",
            accept_multiple_files="directory",
            key=f"batch_folder_{round_}",
            max_upload_size=BATCH_LIMIT_MB,
        )
    if files and folder:
        st.caption(f"One batch of both: {len(files)} picked file(s) and the folder's {len(folder)} file(s). "
                   "**New batch** clears both.")  # fmt: skip
    return [*(files or []), *(folder or [])]


def results(batch: dict):
    threshold = ui.threshold()
    predictions = batch["predictions"]
    good = [p for p in predictions if p.ok]
    unsure = sum(p.confidence < threshold for p in good)
    counts = st.columns(4)
    counts[0].metric("Images", f"{len(predictions):,}")
    counts[1].metric("Read", f"{len(good):,}")
    counts[2].metric("Not sure", f"{unsure:,}", help=f"confidence below {percent(threshold)}")
    counts[3].metric("Errors", f"{len(predictions) - len(good):,}", help="unreadable files and pictures without a hand")
    for note in batch["notes"][:NOTES_SHOWN]:
        st.caption(note)
    table_column, chart_column = st.columns([3, 2], gap="large")
    with table_column:
        only_doubtful = st.toggle("Only “Not sure” and errors", key="only_doubtful")
        st.dataframe(
            batch_table(batch, threshold, only_doubtful),
            hide_index=True,
            height=420,
            column_config={
                "thumbnail": st.column_config.ImageColumn("", width="small"),
                "file": st.column_config.TextColumn("File", width="medium"),
                "digit": st.column_config.TextColumn("Digit", width="small"),
                "confidence": st.column_config.ProgressColumn(
                    "Confidence", min_value=0, max_value=100, format="%d%%", width="small"
                ),
                "note": st.column_config.TextColumn("Note", width="large"),
            },
        )
        st.download_button(
            "Download CSV",
            batch["csv"],
            file_name="signdigits_results.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )
    with chart_column:
        st.markdown("**Images per digit**")
        digit_chart(good)


@ui.guarded
def page(classifier):
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(
            "Upload many photos, a .zip, or a whole folder. Each image gets a row; a "
            "file that cannot be read gets an error row."
        )
        st.button(
            "New batch",
            icon=":material/restart_alt:",
            on_click=new_batch,
            key="new_batch",
            help="Clear these files and results",
        )
    uploads = uploaders()
    if not uploads:
        st.info("Results appear here as a table you can filter and download as CSV.")
        return
    signature = tuple(upload.file_id for upload in uploads)
    if st.session_state.get("batch_signature") != signature:
        st.session_state.batch = classify_uploads(classifier, uploads)
        st.session_state.batch_signature = signature
    results(st.session_state.batch)


page(ui.classifier())
