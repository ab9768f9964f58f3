"""The live camera: video frames in, the same frames with the hand's box and the digit out.

:class:`LiveReader` is handed every frame of a video (by the WebRTC worker, on its own
thread) and gives it back at once with the latest answer drawn on it: it never waits for
the models. At most one reading runs at a time, on a thread of its own, on the newest
frame, and a new one starts at most every :data:`READ_INTERVAL` seconds, so the models
run several times a second while the video keeps its frame rate. Answers follow the
app's rules: "no hand found" where the localizer sees none, "not sure" below the reader's
``threshold`` (the page sets the app's setting). No Streamlit here (``app_pages/live.py``
is the page).
"""

import functools
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from signdigits.answer import SMALL_HAND, percent
from signdigits.evaluate import UNSURE_BELOW

LOG = logging.getLogger(__name__)

#: Seconds between the starts of two readings: at most five a second.
READ_INTERVAL = 0.2
#: Readings per second are counted over this many seconds.
RATE_WINDOW = 3.0
#: The environment variable with the STUN/TURN servers for WebRTC, as JSON (a list like
#: RTCConfiguration's ``iceServers``). Unset: none, so video goes only between this
#: computer and the browser over the local network, and nothing is asked of other servers.
ICE_SERVERS_ENV = "SIGNDIGITS_ICE_SERVERS"
SURE_COLOUR = (194, 65, 12)  # the app's accent
UNSURE_COLOUR = (100, 116, 139)  # slate: an unsure answer must not look like a sure one


@dataclass(frozen=True)
class LiveAnswer:
    """One reading of a frame: the digit and the top three, or ``error`` ("no hand found").

    ``box`` is where the hand was found, in shares of the frame (x0, y0, x1, y1); below
    ``threshold`` the answer is "not sure".
    """

    digit: int | None = None
    confidence: float | None = None
    top: tuple[tuple[int, float], ...] = ()
    box: tuple[float, float, float, float] | None = None
    error: str | None = None
    threshold: float = UNSURE_BELOW

    @property
    def unsure(self) -> bool:
        return self.digit is None or self.confidence < self.threshold

    @property
    def label(self) -> str:
        """The short text drawn on the video."""
        if self.digit is None:
            return self.error or "no answer"
        if self.unsure:
            return f"not sure ({self.digit}? {percent(self.confidence)})"
        return f"{self.digit}  {percent(self.confidence)}"

    @property
    def advice(self) -> str:
        """One line on what to do, where the answer is not a sure one."""
        if self.digit is None:
            return "Hold one hand up to the camera, palm towards it, in good light."
        if self.box is not None and self.box[3] - self.box[1] < SMALL_HAND:
            return "Come closer: the hand is small in the picture."
        if self.unsure:
            return "Hold the sign still, the whole hand in the picture, fingers apart."
        return ""


def read_frame(classifier, rgb: np.ndarray, threshold: float = UNSURE_BELOW) -> LiveAnswer:
    """A video frame (H, W, 3 uint8 RGB) -> its :class:`LiveAnswer`, through the
    classifier's one path (``find_hand`` then ``predict_reading``)."""
    reading = classifier.find_hand(rgb)
    prediction = classifier.predict_reading(reading)
    if not prediction.ok:
        return LiveAnswer(error=prediction.error, threshold=threshold)
    width, height = reading.size
    x0, y0, x1, y1 = prediction.box
    box = (x0 / width, y0 / height, x1 / width, y1 / height)
    return LiveAnswer(prediction.digit, prediction.confidence, tuple(prediction.top(3)), box, threshold=threshold)


@functools.lru_cache(maxsize=8)
def _font(size: int):
    return ImageFont.load_default(size=size)


def annotate(rgb: np.ndarray, answer: LiveAnswer | None) -> np.ndarray:
    """``rgb`` with the hand's box and the answer's label drawn on it (a new array)."""
    if answer is None:
        return rgb
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    width, height = picture.size
    colour = UNSURE_COLOUR if answer.unsure else SURE_COLOUR
    font = _font(max(14, height // 14))
    pad = max(4, height // 80)
    _, _, label_width, label_height = draw.textbbox((0, 0), answer.label, font=font, anchor="lt")
    x, y = pad, pad  # no hand: the label in the corner
    if answer.box is not None:
        x0, y0, x1, y1 = (v * s for v, s in zip(answer.box, (width, height, width, height)))
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=max(2, round(max(width, height) / 200)))
        x = min(max(pad, x0), width - label_width - 2 * pad)
        y = y0 - label_height - 2 * pad if y0 - label_height - 2 * pad >= pad else y0 + 2 * pad
    draw.rectangle([x - pad, y - pad, x + label_width + pad, y + label_height + pad], fill=colour)
    draw.text((x, y), answer.label, font=font, fill=(255, 255, 255), anchor="lt")
    return np.asarray(picture)


def _start_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="signdigits-live", daemon=True).start()


class LiveReader:
    """Reads a video's frames with ``classifier`` without ever holding the video up.

    ``threshold``: below this confidence an answer is "not sure" (the page keeps it equal
    to the app's setting). ``clock`` and ``start`` (how a reading is started; a daemon
    thread by default) are there for tests.
    """

    def __init__(self, classifier, interval: float = READ_INTERVAL, clock=time.monotonic, start=_start_thread):
        self._classifier, self._interval, self._clock, self._start = classifier, interval, clock, start
        self._lock = threading.Lock()
        self._busy = False
        self._last_start = -math.inf
        self._answer: LiveAnswer | None = None
        self._finished: deque[float] = deque(maxlen=256)
        self._frames: deque[float] = deque(maxlen=256)
        self.readings = 0
        self.threshold = UNSURE_BELOW

    def process(self, rgb: np.ndarray) -> np.ndarray:
        """A frame (H, W, 3 uint8 RGB) -> the same with the latest answer drawn on it.
        Starts a reading of this frame when one is due; never waits for one."""
        now = self._clock()
        with self._lock:
            self._frames.append(now)
            due = not self._busy and now - self._last_start >= self._interval
            if due:
                self._busy, self._last_start = True, now
            answer = self._answer
        if due:
            frame = rgb.copy()
            self._start(lambda: self._read(frame))
        return annotate(rgb, answer)

    def _read(self, rgb: np.ndarray) -> None:
        try:
            answer = read_frame(self._classifier, rgb, self.threshold)
        except Exception:  # one odd frame must not end the live view
            LOG.exception("live: a frame of shape %s could not be read", getattr(rgb, "shape", None))
            answer = LiveAnswer(error="this frame could not be read", threshold=self.threshold)
        with self._lock:
            self._answer, self._busy = answer, False
            self._finished.append(self._clock())
            self.readings += 1

    @property
    def answer(self) -> LiveAnswer | None:
        """The latest answer (None before the first reading)."""
        with self._lock:
            return self._answer

    def readings_per_second(self) -> float:
        """How many readings finished a second over the last :data:`RATE_WINDOW` seconds."""
        return self._rate(self._finished)

    def frames_per_second(self) -> float:
        """How many video frames came in a second over the last :data:`RATE_WINDOW` seconds."""
        return self._rate(self._frames)

    def _rate(self, times: deque) -> float:
        now = self._clock()
        with self._lock:
            recent = [t for t in times if t >= now - RATE_WINDOW]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def reset(self) -> None:
        """Forget the answer (the video stopped); a reading still running is let finish."""
        with self._lock:
            self._answer, self.readings = None, 0
            self._finished.clear()
            self._frames.clear()


def ice_servers(text: str | None) -> list[dict]:
    """The STUN/TURN servers given in :data:`ICE_SERVERS_ENV` (JSON), or none.

    Malformed settings are logged and ignored: the live view then works on this computer
    and its local network only.
    """
    if not text:
        return []
    try:
        servers = json.loads(text)
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ValueError("expected a JSON list of objects with 'urls'")
    except ValueError as exc:
        LOG.warning("%s is ignored: %s", ICE_SERVERS_ENV, exc)
        return []
    return servers
