"""The shell (app.py): navigation, the threshold, a missing or broken model."""

import shutil
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


def test_a_live_page_is_listed_once_its_file_exists(tmp_path):
    """The live page comes from another branch: with its file, the app links to it; without
    it, nothing links nowhere."""
    shutil.copy(APP, tmp_path / "app.py")
    shutil.copy(ROOT / "components.py", tmp_path / "components.py")
    shutil.copytree(ROOT / "app_pages", tmp_path / "app_pages", ignore=shutil.ignore_patterns("live.py", "__pycache__"))
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=TIMEOUT).run()
    with pytest.raises(Exception, match="live"):
        at.switch_page("app_pages/live.py").run()
    (tmp_path / "app_pages" / "live.py").write_text('import streamlit as st\nst.markdown("the live page")\n')
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/live.py").run()
    assert not at.exception and "the live page" in [m.value for m in at.markdown]


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
    The pages live in app_pages/ (a live page arriving as pages/live.py belongs there)."""
    assert not (ROOT / "pages").exists()
