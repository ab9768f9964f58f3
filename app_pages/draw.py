"""Draw: sketch a hand on a canvas, or mark the hand on a photo where its box is wrong."""

import streamlit as st
import streamlit_drawable_canvas  # called through the module, so tests can patch st_canvas

import components as ui
from signdigits.pictures import CANVAS_RGB, SKIN_RGB, display_photo, flatten_drawing, palm_outline
from signdigits.preprocess import UnreadableImageError, limits_text

SKIN = "#{:02X}{:02X}{:02X}".format(*SKIN_RGB)
CANVAS_BACKGROUND = "#{:02X}{:02X}{:02X}".format(*CANVAS_RGB)
CANVAS_SIZE = 360
#: The crop canvas's largest size: a fixed-size canvas, as wide as a phone's column (358 px
#: at 390) lets the whole photo be seen and marked there.
CROP_WIDTH, CROP_HEIGHT = 340, 480
CANVAS_TOOLBAR_PX = 24  # room above the canvas for its floating toolbar (download, undo, redo, delete)
TOOLS = {"Brush": "freedraw", "Rectangle": "rect", "Polygon": "polygon", "Circle": "circle"}
SKETCH = "sketch_drawing"  # the drawing the canvas starts from: objects and a version
DRAWN = "sketch_objects"  # what the canvas sent last
STALE = "sketch_stale"  # what it sent before an undo or clear, until it sends anew
SHAPE_STROKE = 2  # rectangles, polygons and circles are filled, with a thin edge


def restart(objects: list):
    """Start the canvas again from ``objects`` (undo, clear). Until the canvas sends its new
    drawing, what it sent last is stale: no answer is shown for it."""
    version = st.session_state.get(SKETCH, {}).get("version", 0) + 1
    st.session_state[SKETCH] = {"objects": objects, "version": version}
    st.session_state[STALE] = st.session_state.get(DRAWN)


def undo():
    restart((st.session_state.get(DRAWN) or [])[:-1])


def controls() -> tuple[str, int]:
    """The labelled tools above the canvas: tool, size, undo, clear, the palm outline."""
    tool = st.segmented_control("Tool", list(TOOLS), default="Brush", key="sketch_tool")
    if tool == "Polygon":
        st.caption("Click the corners, then the first corner again to close the polygon.")
    size, outline = st.columns([3, 2], vertical_alignment="bottom")
    brush = size.slider("Brush size", 4, 80, 32, key="brush")
    outline.toggle(
        "Palm outline", key="outline", help="A faint palm to draw over; it is not part of the drawing the model reads."
    )
    with st.container(horizontal=True, gap="small"):
        st.button("Undo last stroke", icon=":material/undo:", on_click=undo, key="undo")
        st.button("Clear", icon=":material/delete:", on_click=restart, args=([],), key="clear")
    st.space(CANVAS_TOOLBAR_PX)  # the canvas's own toolbar floats above its top right corner
    return TOOLS[tool or "Brush"], brush


def sketch(classifier):
    st.caption(
        "Sketch a hand as its filled shape or its outline: the palm with a rectangle "
        "or polygon, the raised fingers with the brush."
    )
    drawing_column, result_column = st.columns([2, 3], gap="large")
    with drawing_column:
        mode, brush = controls()
        start = st.session_state.get(SKETCH, {"objects": [], "version": 0})
        canvas = streamlit_drawable_canvas.st_canvas(
            fill_color=SKIN,
            stroke_width=brush if mode == "freedraw" else SHAPE_STROKE,
            stroke_color=SKIN,
            background_color=CANVAS_BACKGROUND,
            background_image=palm_outline(CANVAS_SIZE) if st.session_state.get("outline") else None,
            update_streamlit=True,
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode=mode,
            initial_drawing=start,
            return_image_data=True,
            key="sketch_canvas",
        )
    drawn = (canvas.json_data or {}).get("objects") or []
    st.session_state[DRAWN] = drawn
    if drawn != st.session_state.get(STALE):
        st.session_state.pop(STALE, None)
    with result_column:
        if not drawn or canvas.image_data is None or STALE in st.session_state:
            st.info("Draw on the canvas; the answer appears when you let go of the mouse.")
            return
        ui.show_reading(classifier, classifier.find_hand(flatten_drawing(canvas.image_data)))


def crop(classifier):
    st.caption(
        "When the box on a photo is wrong (or there is none): drag a rectangle "
        "around the hand, and the hand is read there."
    )
    upload = st.file_uploader(
        f"Photo with a hand in it (up to {ui.PHOTO_LIMIT_MB} MB)",
        type=ui.IMAGE_TYPES,
        help=limits_text(),
        key="crop_photo",
        max_upload_size=ui.PHOTO_LIMIT_MB,
    )
    if upload is None:
        return
    try:
        picture = display_photo(upload.getvalue())
    except UnreadableImageError as exc:
        ui.log.info("cannot read %s: %s", upload.name, exc)
        st.error(f"Cannot read **{upload.name}**: {exc}.")
        return
    scale = min(CROP_WIDTH / picture.width, CROP_HEIGHT / picture.height)
    canvas = streamlit_drawable_canvas.st_canvas(
        fill_color="rgba(255, 75, 75, 0.08)",
        stroke_width=3,
        stroke_color="#FF4B4B",
        background_image=picture,
        update_streamlit=True,
        width=max(1, round(picture.width * scale)),
        height=max(1, round(picture.height * scale)),
        drawing_mode="labeled_rect",
        key=f"crop_canvas_{upload.file_id}",
    )
    boxes = canvas.boxes_in_image_space or []
    box = hand_box(boxes[-1], picture.size) if boxes else None
    if box is None:
        st.info("Drag a rectangle around the hand.")
        return
    ui.show_reading(classifier, classifier.find_hand(picture, box=box), picture, caption="the hand where you marked it")


def hand_box(box: dict, size: tuple[int, int]):
    """A box in picture pixels (``boxes_in_image_space`` entry) inside the picture, or None
    where it is too small to hold a hand."""
    left, top = max(0.0, box["left"]), max(0.0, box["top"])
    right = min(size[0], box["left"] + box["width"])
    bottom = min(size[1], box["top"] + box["height"])
    return (left, top, right, bottom) if right - left >= 4 and bottom - top >= 4 else None


@st.fragment
@ui.guarded
def page(classifier):
    kind = st.segmented_control(
        "What to do",
        ["Sketch a hand", "Crop a photo"],
        default="Sketch a hand",
        key="draw_kind",
        label_visibility="collapsed",
    )
    if kind == "Crop a photo":
        crop(classifier)
    else:
        sketch(classifier)


page(ui.classifier())
