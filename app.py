"""signdigits in the browser: ``streamlit run app.py``.

The shell: the title, the navigation between the pages (one file each in ``app_pages/``), the
confidence threshold; then the model, loaded once per server behind a spinner, and the
page that is open (only that one runs). ``components.py`` holds what the pages share;
reading, classifying and explaining come from the ``signdigits`` package.
"""

from pathlib import Path

# pylibsrtp (SRTP for the Live page's streamlit-webrtc) starts first: its srtp_init() crashes
# the process when TensorFlow is already loaded, as it is after a model file without its
# serving file was converted. Importing it here costs about 10 ms.
import pylibsrtp  # noqa: F401
import streamlit as st

st.set_page_config(page_title="signdigits", page_icon=":material/front_hand:", layout="wide")

import components as ui  # noqa: E402  (after set_page_config: the shell is drawn first)

ROOT = Path(__file__).parent
#: Not "pages/": a folder of that name switches Streamlit to its older multipage mode, in
#: which a link such as /draw runs that page's file alone, without this shell.
PAGES = ROOT / "app_pages"


def pages() -> list:
    found = [
        st.Page(PAGES / "photo.py", title="One photo", icon=":material/photo_camera:", default=True),
        st.Page(PAGES / "live.py", title="Live", icon=":material/videocam:"),
        st.Page(PAGES / "draw.py", title="Draw", icon=":material/draw:"),
        st.Page(PAGES / "batch.py", title="Batch", icon=":material/photo_library:"),
        st.Page(PAGES / "model.py", title="Model", icon=":material/analytics:"),
    ]
    return found


page = st.navigation(pages(), position="top")
ui.style()
title, settings = st.columns([4, 1], vertical_alignment="center")
title.markdown("#### :material/front_hand: signdigits · reads American Sign Language digits 0–9")
with settings.popover(
    f"“Not sure” below {ui.percent(ui.threshold())}", icon=":material/tune:", key="settings", width="stretch"
):
    ui.threshold_slider()
page.run()
