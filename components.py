"""The app's building blocks, shared by the pages: the model, the threshold, the answer
panel. Streamlit lives here and in the pages; everything else comes from ``signdigits``.

Nothing here imports the model runtime at import time, so the page shell is drawn before
the model loads (behind a spinner).
"""

import functools
import html
import os
from pathlib import Path

import streamlit as st
from PIL import Image

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, NUM_CLASSES
from signdigits.answer import Verdict, judge, percent, top_line
from signdigits.pictures import display_photo, with_box
from signdigits.prediction import Prediction
from signdigits.preprocess import MAX_FILE_BYTES, UnreadableImageError, model_input_to_image
from signdigits.sources import IMAGE_SUFFIXES

#: Streamlit's logger setup (its handler, and its level, ``logger.level``, default info),
#: so these lines reach the server's log.
log = st.logger.get_logger("signdigits.app")

IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]
#: What one photo may weigh, as the uploader says and the decoder enforces.
PHOTO_LIMIT_MB = MAX_FILE_BYTES // 2**20
DEFAULT_THRESHOLD = 60  # percent
ACCENT = "#C2410C"  # the theme's primary colour (.streamlit/config.toml)
UNSURE = "#92400E"
PANEL_SIDE = 160  # the 64x64 model input is shown at this size
TOP = 3

STYLE = f"""<style>
[data-testid="stMainBlockContainer"] {{padding-top: 4.5rem}}
.sd-answer {{line-height: 1.2}}
.sd-label {{font-size: 0.9rem; color: #57534E}}
.sd-digit {{font-size: 5rem; font-weight: 700; line-height: 1; color: {ACCENT}}}
.sd-headline {{font-size: 2.2rem; font-weight: 700; color: {UNSURE}}}
.sd-top {{display: grid; grid-template-columns: 1.2rem 1fr 2.8rem; gap: 0.3rem 0.5rem;
          align-items: center; margin: 0.6rem 0; font-size: 0.95rem; max-width: 20rem}}
.sd-bar {{height: 0.6rem; border-radius: 0.3rem; background: #E7E5E4}}
.sd-bar > div {{height: 100%; border-radius: 0.3rem; background: {ACCENT}}}
.sd-pct {{text-align: right; font-variant-numeric: tabular-nums}}
</style>"""


def style():
    """The few CSS rules of the answer panel (once per run, from app.py)."""
    st.html(STYLE)


def model_path() -> Path:
    """The classifier's file: ``SIGNDIGITS_MODEL``, or the bundled one."""
    return Path(os.environ.get("SIGNDIGITS_MODEL") or DEFAULT_MODEL_PATH)


def localizer_path() -> Path:
    """The hand localizer's file: ``SIGNDIGITS_LOCALIZER``, or the bundled one."""
    return Path(os.environ.get("SIGNDIGITS_LOCALIZER") or DEFAULT_LOCALIZER_PATH)


def threshold_slider():
    st.slider(
        "Say “Not sure” below",
        0,
        100,
        DEFAULT_THRESHOLD,
        5,
        format="%d%%",
        key="threshold",
        help="Answers less confident than this lead with “Not sure” and name the three likeliest digits.",
    )


def threshold() -> float:
    """The confidence below which an answer is uncertain, as a share."""
    return st.session_state.get("threshold", DEFAULT_THRESHOLD) / 100


@st.cache_resource(show_spinner="Loading the model…")
def _load(model_path: str, localizer_path: str):
    from signdigits.classifier import Classifier  # the model runtime, imported only here

    log.info("signdigits: loading the model from %s (localizer %s)", model_path, localizer_path)
    return Classifier(model_path, localizer_path)


def classifier():
    """The models (loaded once per server), or one message with the commands that fix a
    missing or broken model file, after which the page stops."""
    from signdigits.serving import ModelFileError

    try:
        return _load(str(model_path()), str(localizer_path()))
    except ModelFileError as exc:
        log.error("the model could not be loaded: %s", exc)
        st.error(f"**The model could not be loaded.** {exc}")
        st.markdown("To create it, run this in the project folder, then reload the page:")
        st.code("python train_model.py --localizer\npython train_model.py", language="bash")
        st.stop()


def guarded(page):
    """Run ``page``; an unexpected error is logged and becomes one short message."""

    @functools.wraps(page)
    def run(*args, **kwargs):
        try:
            return page(*args, **kwargs)
        except Exception as exc:  # Streamlit's stop/rerun signals are BaseExceptions
            log.exception("page %s failed", page.__name__)
            st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Try another image, or reload the page.")

    return run


def top_rows(prediction: Prediction, k: int = TOP) -> str:
    """The ``k`` likeliest digits as labelled bars with their percentages (HTML)."""
    rows = "".join(
        f'<span>{digit}</span><div class="sd-bar"><div style="width:{p:.1%}"></div></div>'
        f'<span class="sd-pct">{percent(p)}</span>'
        for digit, p in prediction.top(k)
    )
    return f'<div class="sd-top">{rows}</div>'


def answer(prediction: Prediction, verdict: Verdict):
    """The answer first: the digit and how sure, or "Not sure" / "No hand found", then the
    three likeliest digits and one line of advice."""
    if not prediction.ok:
        st.markdown('<div class="sd-answer"><div class="sd-headline">No hand found</div></div>', unsafe_allow_html=True)
    elif verdict.sure:
        st.markdown(
            f'<div class="sd-answer"><div class="sd-label">Digit</div>'
            f'<div class="sd-digit">{prediction.digit}</div>'
            f"<div>{percent(prediction.confidence)} sure</div>{top_rows(prediction)}</div>",
            unsafe_allow_html=True,
        )
    else:
        st.markdown(
            f'<div class="sd-answer sd-unsure"><div class="sd-headline">Not sure</div>'
            f"<div>Maybe {html.escape(top_line(prediction))}</div>{top_rows(prediction)}</div>",
            unsafe_allow_html=True,
        )
    if verdict.advice:
        st.caption(verdict.advice)


def explanation(classifier, model_input, digit: int) -> Image.Image:
    """What pushed the model towards ``digit``, over the crop it saw (PANEL_SIDE square)."""
    from signdigits.explain import overlay, saliency  # the one import of explain

    seen = model_input_to_image(model_input).resize((PANEL_SIDE, PANEL_SIDE), Image.Resampling.BILINEAR)
    return overlay(seen, saliency(classifier, model_input, digit))


def details(classifier, model_input, prediction: Prediction):
    """The 64x64 crop the model read, and what in it drove the answer."""
    seen = model_input_to_image(model_input)
    st.image(seen.resize((PANEL_SIDE, PANEL_SIDE), Image.Resampling.NEAREST), caption="What the model saw (64×64)")
    try:
        st.image(
            explanation(classifier, model_input, prediction.digit), caption=f"Red: what pointed to {prediction.digit}"
        )
    except Exception as exc:
        log.warning("no explanation for this model: %s", exc)
        st.caption("No explanation for this model.")


def probability_chart(prediction: Prediction):
    """All ten digits as bars, each labelled with its percentage (no hover needed)."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(
        {
            "digit": [str(d) for d in range(NUM_CLASSES)],
            "probability": prediction.probabilities,
            "label": [percent(p) for p in prediction.probabilities],
        }
    )
    base = alt.Chart(frame, height=170).encode(
        x=alt.X("digit:N", axis=alt.Axis(labelAngle=0, title=None)),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1.15]), axis=None),
    )
    bars = base.mark_bar().encode(
        color=alt.condition(alt.datum.digit == str(prediction.digit), alt.value(ACCENT), alt.value("#CBD5E1"))
    )
    labels = base.mark_text(dy=-8, fontSize=11).encode(text="label:N")
    st.markdown("**All ten digits**")
    st.altair_chart(bars + labels, width="stretch")


def show_reading(classifier, reading, picture: Image.Image | None = None, caption: str = ""):
    """The result panel: the answer first, then the picture with the hand's box, then what
    the model saw and why, then all ten digits."""
    prediction = classifier.predict_reading(reading)
    verdict = judge(prediction, threshold(), reading.size)
    widths = [4, 4, 3] if picture is not None else [4, 3]
    columns = st.columns(widths, gap="medium")
    with columns[0]:
        answer(prediction, verdict)
    if picture is not None:
        with columns[1]:
            st.image(with_box(picture, reading.box, reading.size, ACCENT), caption=caption or None, width="stretch")
    if not prediction.ok:
        return
    with columns[-1]:
        details(classifier, reading.model_input, prediction)
    probability_chart(prediction)


def read_picture(classifier, data: bytes, name: str):
    """Find the hand in a picture's bytes and show the result panel, or say why the
    picture cannot be read."""
    try:
        reading = classifier.find_hand(data)
    except UnreadableImageError as exc:
        log.info("cannot read %s: %s", name, exc)
        st.error(f"Cannot read **{name}**: {exc}.")
        return
    try:
        picture = display_photo(data)
    except UnreadableImageError as exc:  # the model could read it; show only the answer
        log.warning("cannot show %s: %s", name, exc)
        picture = None
    show_reading(classifier, reading, picture, caption=name)
