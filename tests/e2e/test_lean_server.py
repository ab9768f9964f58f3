"""The app's server answers without TensorFlow: started where TensorFlow, Keras and h5py
cannot be imported (as after ``pip install -r requirements.txt``), it reads a photo, and no
TensorFlow library is mapped into its process, LiteRT's is."""

import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, WAIT_MS, settle
from tests.test_without_tensorflow import WITHOUT_TENSORFLOW

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")]  # fmt: skip


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"PYTHONPATH": f"{WITHOUT_TENSORFLOW}:{ROOT}"}


def mapped_libraries(pid: int) -> set[str]:
    """The file names of the shared objects mapped into process ``pid``."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {Path(line.split()[-1]).name for line in lines if ".so" in line}


def test_the_server_reads_a_photo_without_tensorflow(server, browser, confident_photos):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(WAIT_MS)
        page.goto(server.url)
        path = next(iter(confident_photos.values()))
        page.locator("input[type=file]").first.set_input_files(str(path))
        page.locator(".sd-digit").first.wait_for(state="visible")
        settle(page)
        assert page.locator(".sd-digit").first.inner_text().strip() == path.parent.name
    finally:
        page.close()
    libraries = mapped_libraries(server.process.pid)
    assert not any("tensorflow" in name for name in libraries), sorted(libraries)
    assert any("litert" in name.lower() for name in libraries), sorted(libraries)
