"""The shell (app.py): navigation, the threshold, a missing or broken model."""

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP, ROOT, TIMEOUT, run_app

PAGES = ["app_pages/photo.py", "app_pages/draw.py", "app_pages/batch.py", "app_pages/model.py"]


def test_the_shell_needs_no_model_runtime():
    """app.py draws the title with what components.py imports, and that is no model
    runtime: the model (and TensorFlow or LiteRT) loads afterwards, behind a spinner."""
    probe = "import sys, components; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_every_page_opens_without_errors():
    at = run_app()
    assert at.slider(key="threshold").value == 60
    assert "“Not sure” below 60%" in [p.proto.popover.label for p in at.get("popover")]
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception and not at.error, page


def test_the_live_page_opens_from_the_navigation():
    """AppTest has no server session for WebRTC (tests/e2e/test_live_browser.py plays a camera to
    the real page): the page draws its heading, and the streamer's failure here is one
    plain line, never a traceback."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/live.py").run()
    assert not at.exception
    assert any("Live camera" in header.value for header in at.header)
    assert [e.value for e in at.error] == ["Something went wrong (AttributeError). Reload the page to try again."]


@pytest.mark.parametrize("content", [None, b"not an HDF5 file", "polyglot"])
def test_a_missing_or_broken_model_gives_one_clear_message(tmp_path, monkeypatch, content, polyglot_model):
    model_path = tmp_path / "model.h5"
    if content == "polyglot":  # a harmless HDF5 model with a .keras archive appended
        model_path = polyglot_model
    elif content is not None:
        model_path.write_bytes(content)
    monkeypatch.setenv("SIGNDIGITS_MODEL", str(model_path))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.error) == 1 and "could not be loaded" in at.error[0].value
    assert any("python train_model.py" in code.value for code in at.code)
    assert not at.file_uploader  # the page stopped before its controls
    assert any("signdigits · reads" in m.value for m in at.markdown)  # the shell came first


def test_no_pages_folder_beside_the_app():
    """A folder named pages/ beside app.py switches Streamlit to its older multipage mode:
    a link such as /draw would run that file alone, without the shell (title, threshold).
    The pages live in app_pages/."""
    assert not (ROOT / "pages").exists()
