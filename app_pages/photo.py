"""One photo: upload one, take one with the camera, or try an example; the answer first."""

import streamlit as st

import components as ui
from signdigits.pictures import example_paths, sign_chart
from signdigits.preprocess import limits_text

CAMERA_WIDTH = 420
EXAMPLE_SIDE = 72
CHOICE = "photo_choice"  # what to read: "upload", "camera" or an example's digit
ROUND = "photo_round"  # bumped when an example is chosen: the uploader and camera start empty


def choose(what):
    st.session_state[CHOICE] = what
    if isinstance(what, int):  # an example: a photo still in the uploader would look like the one read
        st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def keyed(name: str) -> str:
    """A widget's key in this round: after an example, a new and empty widget."""
    return f"{name}_{st.session_state.get(ROUND, 0)}"


def picked(source: str):
    """The picture to read, as ``(bytes, name)``, or None: the latest thing chosen."""
    if source == "Take a photo":
        given = st.camera_input(
            "Show a digit to the camera", key=keyed("camera"), width=CAMERA_WIDTH, on_change=choose, args=("camera",)
        )
    else:
        with st.container(key="photo"):
            given = st.file_uploader(
                f"Photo of a hand: JPEG, HEIC, PNG, WebP, BMP, GIF or TIFF, up to {ui.PHOTO_LIMIT_MB} MB",
                type=ui.IMAGE_TYPES,
                help=limits_text(),
                key=keyed("photo_upload"),
                max_upload_size=ui.PHOTO_LIMIT_MB,
                on_change=choose,
                args=("upload",),
            )
    choice = st.session_state.get(CHOICE)
    if isinstance(choice, int) and choice in example_paths():
        return example_paths()[choice].read_bytes(), f"example of {choice}"
    if given is None:
        return None
    return given.getvalue(), "camera photo" if source == "Take a photo" else given.name  # not "camera-input-….jpg"


def examples():
    """A row of example photos; a click reads one."""
    st.markdown("**No photo at hand? Try one of these:**")
    with st.container(horizontal=True, gap="small"):
        for digit, path in example_paths().items():
            with st.container(width=EXAMPLE_SIDE + 8, gap="small", key=f"example_{digit}"):
                st.image(str(path), width=EXAMPLE_SIDE)
                st.button(f"Try {digit}", on_click=choose, args=(digit,), width=EXAMPLE_SIDE + 8)


@ui.guarded
def page():
    classifier = ui.classifier()
    source = st.segmented_control(
        "Source",
        ["Upload a photo", "Take a photo"],
        default="Upload a photo",
        key="photo_source",
        label_visibility="collapsed",
        on_change=choose,
        args=(None,),
    )
    chosen = picked(source or "Upload a photo")
    if chosen is None:
        st.caption("Either hand, near or far, on any background: the box shows where the hand was found.")
    else:
        ui.read_picture(classifier, *chosen)
    examples()
    with st.expander("The ten signs", icon=":material/front_hand:", expanded=chosen is None):
        st.image(sign_chart(), width=500)


page()
