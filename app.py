"""signdigits in the browser: ``streamlit run app.py``.

UI only: reading, preprocessing, classifying, explaining and the CSV rows all come from
the ``signdigits`` package. ``SIGNDIGITS_MODEL`` picks another model file (default: the
bundled ``model.h5``).
"""

import base64
import functools
import io
import os
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
import streamlit_drawable_canvas  # called through the module, so tests can patch st_canvas
from PIL import Image, ImageDraw

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, NUM_CLASSES, report_dir_for
from signdigits.classifier import Classifier, HandReading
from signdigits.evaluate import format_table
from signdigits.explain import overlay, saliency
from signdigits.preprocess import (
    MAX_FILE_BYTES,
    UnreadableImageError,
    limits_text,
    model_input_to_image,
    open_image,
    to_grayscale,
)
from signdigits.report import read_report
from signdigits.results import to_csv
from signdigits.serving import ModelFileError
from signdigits.sources import IMAGE_SUFFIXES, iter_uploads

MODEL_PATH = Path(os.environ.get("SIGNDIGITS_MODEL") or DEFAULT_MODEL_PATH)
LOCALIZER_PATH = Path(os.environ.get("SIGNDIGITS_LOCALIZER") or DEFAULT_LOCALIZER_PATH)
IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]
DEFAULT_THRESHOLD = 0.6
ACCENT = "#C2410C"  # the theme's primary colour (.streamlit/config.toml)
SKIN = "#D9A27E"  # a hand-like tone for brush and fill
CANVAS_BACKGROUND = "#F2F2F0"  # light, like the wall behind the dataset's hands
CANVAS_SIZE = 360
DISPLAY_SIDE = 1600  # photos are decoded at most this large for showing and cropping
PANEL_SIDE = 192  # the 64x64 model input is shown at this size
BATCH_CHUNK = 64
THUMBNAIL_SIDE = 64
PHOTO_MB = MAX_FILE_BYTES // 2**20  # one photo; a batch takes a .zip up to server.maxUploadSize

st.set_page_config(page_title="signdigits", page_icon=":material/front_hand:", layout="wide")


# ---------------------------------------------------------------- helpers


@st.cache_resource(show_spinner="Loading the model…")
def load_classifier(path: str, localizer_path: str) -> Classifier:
    """The models, loaded once per server and pair of model files."""
    st.logger.get_logger("signdigits.app").info("signdigits: loading the model from %s", path)
    return Classifier(path, localizer_path)


def guarded(page):
    """Run ``page``; an unexpected error becomes one short message, never a traceback."""

    @functools.wraps(page)
    def run(*args, **kwargs):
        try:
            return page(*args, **kwargs)
        except Exception as exc:  # Streamlit's stop/rerun signals are BaseExceptions
            st.error(f"Something went wrong ({type(exc).__name__}: {exc}). "
                     "Try another image, or reload the page.")

    return run


def threshold() -> float:
    return st.session_state.get("threshold", DEFAULT_THRESHOLD)


def display_photo(data: bytes, side: int = DISPLAY_SIDE) -> Image.Image:
    """An RGB picture of at most ``side`` pixels, EXIF applied, for showing and cropping."""
    image = open_image(data, draft=("RGB", side))
    image.thumbnail((side, side))
    if image.mode in ("I", "F") or image.mode.startswith("I;") or "A" in image.getbands():
        image = to_grayscale(image)  # 16-bit and transparent pictures, as the model sees them
    return image.convert("RGB")


def thumbnail_url(data: bytes) -> str | None:
    """A small JPEG data URL for the batch table, or None if the picture cannot be shown."""
    try:
        buffer = io.BytesIO()
        display_photo(data, THUMBNAIL_SIDE).save(buffer, "JPEG", quality=75)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def probability_chart(prediction):
    """Bars for all ten digits, the answer in the accent colour, on a fixed 0-100% scale."""
    frame = pd.DataFrame({"digit": [str(d) for d in range(NUM_CLASSES)],
                          "probability": prediction.probabilities})
    chart = alt.Chart(frame, height=200, title="Probability of each digit").mark_bar().encode(
        x=alt.X("digit:N", axis=alt.Axis(labelAngle=0, title=None)),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title=None)),
        color=alt.condition(alt.datum.digit == str(prediction.digit),
                            alt.value(ACCENT), alt.value("#CBD5E1")),
        tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".1%")],
    )
    st.altair_chart(chart, width="stretch")


def with_box(picture: Image.Image, reading: HandReading) -> Image.Image:
    """``picture`` with the box where the hand was found drawn on it."""
    if reading.box is None:
        return picture
    scale = picture.width / reading.size[0]
    framed = picture.copy()
    line = max(2, round(max(picture.size) / 200))
    ImageDraw.Draw(framed).rectangle([v * scale for v in reading.box], outline=ACCENT, width=line)
    return framed


def show_result(classifier: Classifier, reading: HandReading, picture=None, caption=""):
    """The result panel: picture with the hand's box, digit, confidence, what the model
    saw, why, all ten bars; or, where no hand was found, what to do about it."""
    columns = st.columns(4 if picture is not None else 3, gap="medium")
    if picture is not None:
        with columns[0]:
            st.markdown("**Your image**")
            st.image(with_box(picture, reading), caption=caption or None, width="stretch")
            columns = columns[1:]
    if reading.model_input is None:
        with columns[0]:
            st.warning(f"**No hand found** (hand score {reading.hand_score:.0%}). Show one hand "
                       "clearly, or mark it yourself: **Draw → Crop a photo**.")
        return
    model_input = reading.model_input
    prediction = classifier.predict_reading(reading)
    uncertain = prediction.confidence < threshold()
    with columns[0]:
        color = "#B45309" if uncertain else "inherit"
        st.markdown(
            f'<div class="sd-answer">Digit<div class="sd-digit" style="font-size:5.5rem;'
            f'font-weight:700;line-height:1.05;color:{color}">{prediction.digit}</div>'
            f"{prediction.confidence:.0%} confident</div>",
            unsafe_allow_html=True,
        )
        if uncertain:
            (first, p_first), (second, p_second) = prediction.top(2)
            st.warning(f"**Uncertain** (below {threshold():.0%}): it is {first} "
                       f"({p_first:.0%}) or {second} ({p_second:.0%}).")
    seen = model_input_to_image(model_input)
    with columns[1]:
        st.markdown("**What the model saw**")
        st.image(seen.resize((PANEL_SIDE, PANEL_SIDE), Image.Resampling.NEAREST),
                 caption="64×64 grayscale")
    with columns[2]:
        st.markdown("**Why**")
        try:
            heatmap = saliency(classifier, model_input, prediction.digit)
            big = seen.resize((PANEL_SIDE, PANEL_SIDE), Image.Resampling.BILINEAR)
            st.image(overlay(big, heatmap), caption=f"Red: what pointed to {prediction.digit}")
        except Exception as exc:
            st.caption(f"No explanation for this model ({exc}).")
    probability_chart(prediction)


def classify_bytes(classifier: Classifier, data: bytes, name: str):
    """Find the hand in uploaded bytes and show the result panel, or say why it cannot be read."""
    try:
        reading = classifier.find_hand(data)
    except UnreadableImageError as exc:
        st.error(f"Cannot read **{name}**: {exc}.")
        return
    try:
        picture = display_photo(data)
    except Exception:  # the model could read it; show only the answer
        picture = None
    show_result(classifier, reading, picture, caption=name)


# ---------------------------------------------------------------- pages


@st.fragment
@guarded
def one_photo_page(classifier: Classifier):
    st.caption("Either hand, near or far, on any background: the box shows where the hand "
               "was found. If it is wrong, mark the hand in **Draw → Crop a photo**.")
    source = st.segmented_control("Source", ["Upload a photo", "Take a photo"],
                                  default="Upload a photo", key="photo_source",
                                  label_visibility="collapsed")
    if source == "Take a photo":
        upload = st.camera_input("Show a digit to the camera", key="camera")
    else:
        upload = st.file_uploader("Photo of a hand", type=IMAGE_TYPES, key="photo",
                                  max_upload_size=PHOTO_MB, help=limits_text())
    if upload is None:
        st.info("Upload a photo (JPEG, HEIC, PNG, WebP, …) to see which digit it shows.")
        return
    classify_bytes(classifier, upload.getvalue(), upload.name)


def crop_box(box: dict, canvas_size: tuple[int, int], picture: Image.Image):
    """A canvas rectangle (``CanvasResult.boxes`` entry) -> a box in picture pixels."""
    scale_x, scale_y = picture.width / canvas_size[0], picture.height / canvas_size[1]
    left = max(0, round(box["left"] * scale_x))
    top = max(0, round(box["top"] * scale_y))
    right = min(picture.width, round((box["left"] + box["width"]) * scale_x))
    bottom = min(picture.height, round((box["top"] + box["height"]) * scale_y))
    return (left, top, right, bottom) if right - left >= 4 and bottom - top >= 4 else None


def sketch(classifier: Classifier):
    st.caption("Sketch a hand as its filled shape or its outline: the palm with a rectangle "
               "or polygon, the raised fingers with the brush; the toolbar undoes and clears.")
    tool_names = {"Brush": "freedraw", "Rectangle": "rect", "Polygon": "polygon",
                  "Circle": "circle"}
    drawing_column, result_column = st.columns([2, 3], gap="large")
    with drawing_column:
        tool_name = st.segmented_control("Tool", list(tool_names), default="Brush",
                                         key="sketch_tool") or "Brush"
        size, color = st.columns([4, 1])
        brush = size.slider("Brush size", 4, 80, 32, key="brush")
        skin = color.color_picker("Colour", SKIN, key="skin")
        if tool_name == "Polygon":
            st.caption("Click the corners, then the first corner again to close the polygon.")
        st.space("small")
        canvas = streamlit_drawable_canvas.st_canvas(
            fill_color=skin, stroke_width=brush, stroke_color=skin,
            background_color=CANVAS_BACKGROUND, update_streamlit=True,
            height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode=tool_names[tool_name],
            return_image_data=True, key="sketch_canvas",
        )
    with result_column:
        drawn = (canvas.json_data or {}).get("objects")
        if not drawn or canvas.image_data is None:
            st.info("Draw on the canvas; the answer appears when you let go of the mouse.")
            return
        show_result(classifier, classifier.find_hand(canvas.image_data))


def crop(classifier: Classifier):
    st.caption("When the box on a photo is wrong (or there is none): drag a rectangle "
               "around the hand, and the hand is read there.")
    upload = st.file_uploader("Photo with a hand in it", type=IMAGE_TYPES, key="crop_photo",
                              max_upload_size=PHOTO_MB, help=limits_text())
    if upload is None:
        return
    try:
        picture = display_photo(upload.getvalue())
    except UnreadableImageError as exc:
        st.error(f"Cannot read **{upload.name}**: {exc}.")
        return
    scale = min(560 / picture.width, 560 / picture.height)
    canvas_size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    background = io.BytesIO()
    picture.resize(canvas_size).save(background, "JPEG", quality=85)
    canvas = streamlit_drawable_canvas.st_canvas(
        fill_color="rgba(255, 75, 75, 0.08)", stroke_width=3, stroke_color="#FF4B4B",
        background_image=background.getvalue(), update_streamlit=True,
        width=canvas_size[0], height=canvas_size[1], drawing_mode="labeled_rect",
        key=f"crop_canvas_{upload.file_id}",
    )
    box = crop_box(canvas.boxes[-1], canvas_size, picture) if canvas.boxes else None
    if box is None:
        st.info("Drag a rectangle around the hand.")
        return
    show_result(classifier, classifier.find_hand(picture, box=box), picture,
                caption="the hand where you marked it")


@st.fragment
@guarded
def draw_page(classifier: Classifier):
    kind = st.segmented_control("What to do", ["Sketch a hand", "Crop a photo"],
                                default="Sketch a hand", key="draw_kind",
                                label_visibility="collapsed")
    if kind == "Crop a photo":
        crop(classifier)
    else:
        sketch(classifier)


def classify_uploads(classifier: Classifier, uploads) -> dict:
    """Stream the uploads through ``predict_many``; keep only rows and small thumbnails."""
    notes: list[str] = []
    items = list(iter_uploads(((upload.name, upload) for upload in uploads), note=notes.append))
    progress = st.progress(0.0, text=f"Classifying {len(items):,} images…")
    kept: dict[int, bytes] = {}  # bytes of the batch in flight, for thumbnails

    def keeping(index, read):
        def read_and_keep():
            kept[index] = data = read()
            return data
        return read_and_keep

    tracked = ((name, keeping(i, read)) for i, (name, read) in enumerate(items))
    predictions, thumbnails = [], []
    for i, prediction in enumerate(classifier.predict_many(tracked, batch_size=BATCH_CHUNK)):
        data = kept.pop(i, None)
        thumbnails.append(thumbnail_url(data) if prediction.ok and data else None)
        predictions.append(prediction)
        if (i + 1) % BATCH_CHUNK == 0 or i + 1 == len(items):
            progress.progress((i + 1) / len(items), text=f"Classified {i + 1:,} of {len(items):,}")
    progress.empty()
    return {"predictions": predictions, "thumbnails": thumbnails, "notes": notes,
            "csv": to_csv(predictions)}


def batch_table(batch: dict, only_doubtful: bool) -> pd.DataFrame:
    frame = pd.DataFrame({
        "thumbnail": batch["thumbnails"],
        "file": [p.name for p in batch["predictions"]],
        "digit": pd.array([p.digit for p in batch["predictions"]], dtype="Int64"),
        "confidence": [p.confidence for p in batch["predictions"]],
        "error": [p.error or "" for p in batch["predictions"]],
    })
    if only_doubtful:
        frame = frame[frame["confidence"].isna() | (frame["confidence"] < threshold())]
    return frame


@st.fragment
@guarded
def batch_page(classifier: Classifier):
    st.caption("Upload many photos, a .zip, or a whole folder. Each image gets a row; "
               "a file that cannot be read gets an error row.")
    files_column, folder_column = st.columns(2)
    # Any type: a file we cannot read becomes an error row instead of vanishing in the browser.
    limits = (f"{limits_text()} A .zip up to {st.get_option('server.maxUploadSize')} MB. "
              "A file that cannot be read gets an error row.")
    files = files_column.file_uploader("Photos or a .zip", accept_multiple_files=True, key="batch_files",
                                       help=limits)
    folder = folder_column.file_uploader("A folder", accept_multiple_files="directory", key="batch_folder",
                                         help=limits)
    uploads = [*(files or []), *(folder or [])]
    if not uploads:
        st.info("Results appear here as a table you can filter and download as CSV.")
        return
    signature = tuple(upload.file_id for upload in uploads)
    if st.session_state.get("batch_signature") != signature:
        st.session_state.batch = classify_uploads(classifier, uploads)
        st.session_state.batch_signature = signature
    batch = st.session_state.batch
    predictions = batch["predictions"]
    good = [p for p in predictions if p.ok]
    doubtful = sum(p.confidence < threshold() for p in good)

    counts = st.columns(4)
    counts[0].metric("Images", f"{len(predictions):,}")
    counts[1].metric("Classified", f"{len(good):,}")
    counts[2].metric("Uncertain", f"{doubtful:,}", help=f"confidence below {threshold():.0%}")
    counts[3].metric("Unreadable", f"{len(predictions) - len(good):,}")
    for note in batch["notes"][:20]:
        st.caption(note)

    table_column, chart_column = st.columns([3, 2], gap="large")
    with table_column:
        only_doubtful = st.toggle("Only uncertain or unreadable", key="only_doubtful")
        st.dataframe(
            batch_table(batch, only_doubtful), hide_index=True, height=420,
            column_config={
                "thumbnail": st.column_config.ImageColumn("", width="small"),
                "file": st.column_config.TextColumn("File"),
                "digit": st.column_config.NumberColumn("Digit", format="%d", width="small"),
                "confidence": st.column_config.ProgressColumn(
                    "Confidence", min_value=0.0, max_value=1.0, format="percent"),
                "error": st.column_config.TextColumn("Problem"),
            },
        )
        st.download_button("Download CSV", batch["csv"], file_name="signdigits_results.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:")
    with chart_column:
        st.markdown("**Images per digit**")
        per_digit = pd.Series([p.digit for p in good], dtype="int64").value_counts()
        per_digit = per_digit.reindex(range(NUM_CLASSES), fill_value=0)
        st.bar_chart(pd.DataFrame({"digit": [str(d) for d in range(NUM_CLASSES)],
                                   "images": per_digit.to_numpy()}),
                     x="digit", y="images", height=300, color=ACCENT)


@guarded
def model_page(classifier: Classifier):
    directory = report_dir_for(MODEL_PATH)
    try:
        report = read_report(directory)
    except (OSError, ValueError):
        st.info(f"No training report next to {MODEL_PATH.name} (looked in `{directory}`). "
                "`python train_model.py` writes one.")
        return
    test, split = report["test"], report["split"]
    plain = test["variants"]["plain"]
    st.markdown(f"Tested on photos of **{len(split['test_participants'])} people the model "
                "never saw** while it was trained or tuned: their plain photos, and the same "
                "photos as people take them (mirrored, turned, from further away, on dark and "
                "busy backgrounds, as webcam frames, as drawings).")
    columns = st.columns(4)
    columns[0].metric("Plain photos", f"{plain['accuracy']:.1%}", help=f"{plain['images']} photos")
    webcam = test["variants"].get("webcam")
    if webcam:
        columns[1].metric("Webcam frames", f"{webcam['accuracy']:.1%}")
    columns[2].metric("Calibration error", f"{test['ece']:.3f}",
                      help="Expected calibration error: how far confidence is from accuracy")
    columns[3].metric("Model size", f"{(report['model_bytes'] + report['localizer_bytes']) / 1024:.0f} KiB",
                      help=f"classifier {report['parameters']:,} parameters, plus the hand localizer")
    table_column, picture_column = st.columns([3, 2], gap="large")
    with table_column:
        st.markdown(format_table(test))
    with picture_column:
        if (directory / "reliability.png").is_file():
            st.image(str(directory / "reliability.png"), width="stretch")
    if (directory / "confusion_matrix.png").is_file():
        with st.expander("Which digits are confused"):
            st.image(str(directory / "confusion_matrix.png"), width=480)
    with st.expander("How it was trained"):
        if (directory / "training_curves.png").is_file():
            st.image(str(directory / "training_curves.png"), width="stretch")
        st.markdown(
            f"- Split by {split['kind']}: {split['train_images']} training, "
            f"{split['val_images']} validation, {split['test_images']} test photos\n"
            f"- Training took {report['training_seconds'] / 60:.1f} min\n"
            f"- Command: `{report['config']['command']}` (seed {report['config']['seed']})"
        )


# ---------------------------------------------------------------- the app

title_column, setting_column = st.columns([3, 1], vertical_alignment="bottom")
with title_column:
    st.title(":material/front_hand: signdigits")
    st.markdown("Reads the **American Sign Language digits 0–9** from a photo of a hand.")
with setting_column:
    st.slider("Confidence threshold", 0.0, 1.0, DEFAULT_THRESHOLD, 0.05, key="threshold",
              help="Answers below this confidence are marked uncertain.")

try:
    model = load_classifier(str(MODEL_PATH), str(LOCALIZER_PATH))
except ModelFileError as exc:
    st.error(f"**The model could not be loaded.** {exc}")
    st.markdown("To create it, run this in the project folder, then reload the page:")
    st.code("python train_model.py --localizer\npython train_model.py", language="bash")
    st.stop()

photo_tab, draw_tab, batch_tab, model_tab = st.tabs(
    [":material/photo_camera: One photo", ":material/draw: Draw",
     ":material/photo_library: Batch", ":material/analytics: Model"])
with photo_tab:
    one_photo_page(model)
with draw_tab:
    draw_page(model)
with batch_tab:
    batch_page(model)
with model_tab:
    model_page(model)
