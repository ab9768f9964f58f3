"""Helpers of the AppTest suite: the app on the bundled model, one page at a time.

The canvas component sits behind a seam: pages/draw.py calls
``streamlit_drawable_canvas.st_canvas`` through the module, so tests patch it with a fake
result made from a real photo. The component module can only be imported inside a
Streamlit runtime, so each canvas test runs the app once (which imports it) first.
"""

import io
import re
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def bundled_model(monkeypatch):
    """Every test starts on the bundled model, whatever the environment says."""
    monkeypatch.delenv("SIGNDIGITS_MODEL", raising=False)


def run_app(page: str | None = None) -> AppTest:
    """The app, run once, on ``page`` (``"app_pages/draw.py"``) or the default page."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_digits(at: AppTest) -> list[str]:
    """The digits stated plainly, in large type."""
    return [d for m in at.markdown for d in re.findall(r'class="sd-digit">(\d)<', m.value)]


def headlines(at: AppTest) -> list[str]:
    """The "Not sure" / "No hand found" headlines."""
    return [h for m in at.markdown for h in re.findall(r'class="sd-headline">([^<]+)<', m.value)]


def upload(path: Path) -> tuple[str, bytes, str]:
    return path.name, path.read_bytes(), "image/jpeg"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def fake_canvas(image: Image.Image | None, boxes=()):
    """A stand-in for st_canvas: its result holds ``image`` (RGBA) and ``boxes`` (in the
    background picture's pixels, as ``boxes_in_image_space`` gives them)."""
    objects = [{"type": "LabeledRect", "label": "", **box} for box in boxes]
    if image is not None:
        objects.append({"type": "path"})
    result = SimpleNamespace(
        image_data=None if image is None else np.asarray(image.convert("RGBA")),
        json_data={"objects": objects},
        boxes_in_image_space=[dict(box, label="") for box in boxes],
    )
    return mock.patch("streamlit_drawable_canvas.st_canvas", lambda **kwargs: result)
