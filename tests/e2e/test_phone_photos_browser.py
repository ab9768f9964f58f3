"""Phone photos in the real app: a HEIC photo and a 64-megapixel JPEG uploaded in Chromium
are read, the uploader states its limits, and a batch turns a file it cannot read into an
error row."""

import csv
import io
from pathlib import Path

import pytest
from PIL import Image

from signdigits.preprocess import MAX_FILE_BYTES
from tests.e2e.conftest import WAIT_MS, settle
from tests.test_phone_photos import heic_bytes, phone_jpeg  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.locator(".st-key-photo input[type=file]").wait_for(state="attached")
    yield page
    context.close()


@pytest.fixture(scope="module")
def heic_file(confident_photos, tmp_path_factory):
    """A real photo the bundled model reads surely, saved as an iPhone-style HEIC file."""
    digit, path = sorted(confident_photos.items())[-1]
    heic = tmp_path_factory.mktemp("heic") / "IMG_0042.HEIC"
    heic.write_bytes(heic_bytes(Image.open(path).resize((300, 300), Image.Resampling.BICUBIC)))
    return heic, digit


def test_a_heic_photo_is_read_and_the_limits_are_stated(page, heic_file):
    uploader = page.locator(".st-key-photo")
    instructions = uploader.locator('[data-testid="stFileUploaderDropzoneInstructions"]').inner_text()
    assert f"{MAX_FILE_BYTES // 2**20}MB" in instructions.replace(" ", "") and "HEIC" in instructions.upper()
    path, digit = heic_file
    uploader.locator("input[type=file]").set_input_files(str(path))
    shown = page.locator(".sd-digit").first
    shown.wait_for(state="visible")
    assert shown.inner_text().strip() == str(digit)
    assert not page.get_by_text("Cannot read").count()


@pytest.mark.slow
def test_a_64_megapixel_phone_jpeg_is_read(page, phone_jpeg):  # noqa: F811 (the fixture)
    """Decoded at reduced scale (libjpeg), never whole: the answer, not "too large"."""
    path, digit = phone_jpeg
    page.locator(".st-key-photo input[type=file]").set_input_files(str(path))
    shown = page.locator(".sd-digit").first
    shown.wait_for(state="visible")
    assert shown.inner_text().strip() == str(digit)


def test_a_batch_keeps_every_file_as_a_row(page, heic_file, tmp_path):
    path, digit = heic_file
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    page.get_by_role("link", name="Batch").click()
    page.locator(".st-key-batch_files input[type=file]").set_input_files([str(path), str(notes)])
    page.get_by_text("Download CSV").wait_for()
    settle(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    by_name = {row["file"]: row for row in rows}
    assert set(by_name) == {"IMG_0042.HEIC", "notes.txt"}
    assert by_name["IMG_0042.HEIC"]["digit"] == str(digit) and not by_name["IMG_0042.HEIC"]["error"]
    assert "not a supported image" in by_name["notes.txt"]["error"]
