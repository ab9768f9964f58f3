"""Live camera: hold up a hand and watch the answer change (streamlit-webrtc).

A page of the app (``app_pages/live.py``). The browser
sends its camera to this server over WebRTC; :mod:`signdigits.live` reads the frames
several times a second and sends them back with the hand's box and the digit, and the
answer beside the video is refreshed from the reader. No STUN/TURN server is used unless
``SIGNDIGITS_ICE_SERVERS`` names some (see :data:`signdigits.live.ICE_SERVERS_ENV`).
"""

import logging
import os

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

import components as ui
from signdigits.answer import percent
from signdigits.live import ICE_SERVERS_ENV, LiveAnswer, LiveReader, ice_servers

LOG = logging.getLogger("signdigits.pages.live")
#: Seconds between two refreshes of the answer beside the video.
ANSWER_REFRESH = 0.5
#: What the browser is asked for: a webcam-sized picture, no sound.
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False}
UNSURE_COLOUR = "#64748B"


def session_reader(classifier) -> LiveReader:
    """This browser session's reader (its answer must not show in another session)."""
    if "live_reader" not in st.session_state:
        st.session_state.live_reader = LiveReader(classifier)
    return st.session_state.live_reader


def frame_callback(reader: LiveReader):
    """The WebRTC worker's callback (its own thread: no Streamlit calls in here)."""

    def annotated(frame: av.VideoFrame) -> av.VideoFrame:
        rgb = frame.to_ndarray(format="rgb24")
        try:
            rgb = reader.process(rgb)
        except Exception:  # the video goes on, without the drawing
            LOG.exception("live: a frame could not be annotated")
        return av.VideoFrame.from_ndarray(rgb, format="rgb24")

    return annotated


def top_three(answer: LiveAnswer) -> str:
    return " · ".join(f"**{digit}** {percent(p)}" for digit, p in answer.top)


def show_answer(reader: LiveReader) -> None:
    """The latest answer in large type, the top three, advice, and how often it is read."""
    answer = reader.answer
    if answer is None:
        st.info("Press **Start the camera** and allow the camera; the answer appears here.")
        return
    if answer.digit is None:
        st.markdown(f'<div class="sd-live-none" style="font-size:2rem;font-weight:700">{answer.error.capitalize()}'
                    "</div>", unsafe_allow_html=True)  # fmt: skip
    elif answer.unsure:
        st.markdown(f'<div class="sd-live-unsure" style="font-size:2rem;font-weight:700;color:{UNSURE_COLOUR}">'
                    "Not sure</div>", unsafe_allow_html=True)  # fmt: skip
        st.markdown(f"Below {percent(answer.threshold)}. It may be {top_three(answer)}")
    else:
        st.markdown(f'<div class="sd-live-answer">Digit<div class="sd-live-digit sd-digit" style="font-size:5.5rem;'
                    f'line-height:1.05">{answer.digit}</div>'
                    f"{percent(answer.confidence)} sure</div>", unsafe_allow_html=True)  # fmt: skip
        st.markdown(f"Top three: {top_three(answer)}")
    if answer.advice:
        st.caption(answer.advice)
    st.caption(f'<span class="sd-live-rate">{reader.readings_per_second():.1f} readings a second '
               f"({reader.readings} so far) · video {reader.frames_per_second():.0f} frames a second</span>",
               unsafe_allow_html=True)  # fmt: skip


def live_page() -> None:
    st.header(":material/videocam: Live camera")
    st.caption("Hold one hand up to the camera and sign a digit: the box shows where the hand was "
               "found, and the answer changes as you move. "
               f"Below {percent(ui.threshold())} it says *not sure*.")  # fmt: skip
    reader = session_reader(ui.classifier())  # the app's one copy of the models
    reader.threshold = ui.threshold()  # the setting (top right) holds here too
    video_column, answer_column = st.columns([3, 2], gap="large")
    with video_column:
        context = webrtc_streamer(
            key="live",
            mode=WebRtcMode.SENDRECV,
            rtc_configuration={"iceServers": ice_servers(os.environ.get(ICE_SERVERS_ENV))},
            media_stream_constraints=CAMERA,
            video_frame_callback=frame_callback(reader),
            async_processing=True,
            translations={"start": "Start the camera", "stop": "Stop"},
        )
    playing = context.state.playing
    if not playing:
        reader.reset()
    with answer_column:
        st.fragment(show_answer, run_every=ANSWER_REFRESH if playing else None)(reader)


try:
    live_page()
except Exception as exc:  # Streamlit's stop/rerun signals are BaseExceptions and pass
    LOG.exception("live: the page failed")
    st.error(f"Something went wrong ({type(exc).__name__}). Reload the page to try again.")
