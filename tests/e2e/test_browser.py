"""The real app in a real browser: `streamlit run app.py` driven by Debian's chromium.

One server for the module (own process group, loopback only, killed at the end; see
conftest.py). Each test also writes a screenshot of its page to docs/screenshots/.
"""

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, WAIT_MS, settle

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.get_by_role("tab", name="One photo").wait_for()
    yield page
    context.close()


def screenshot(page, name: str, width: int = 1280):
    """The whole page (Streamlit scrolls inside its main block, so grow the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(500)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(int(height), 3000)})
    page.wait_for_timeout(1500)  # charts lay themselves out again
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def shown_digit(page) -> str:
    digit = page.locator(".sd-digit").first
    digit.wait_for(state="visible")
    return digit.inner_text().strip()


def test_upload_a_photo_and_read_the_digit(page, confident_photos):
    path = confident_photos.get(5) or next(iter(confident_photos.values()))
    page.locator(".st-key-photo input[type=file]").set_input_files(str(path))
    assert shown_digit(page) == path.parent.name
    page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
    settle(page)
    screenshot(page, "one_photo")
    screenshot(page, "one_photo_phone", width=390)


def test_a_hand_in_a_room_is_found_and_boxed(page, classifier, photo_paths, tmp_path):
    """A webcam-like frame: the app shows the box and the digit the library reads."""
    import numpy as np
    from PIL import Image

    from signdigits.scenes import background, hand_mask, paste_hand

    rng = np.random.default_rng(5)
    for path in photo_paths[12::70]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        frame, _ = paste_hand(background(rng, (640, 480), "natural", "eval"), photo,
                              hand_mask(photo), 210, (420, 250))  # fmt: skip
        answer = classifier.predict(frame)
        if answer.digit == int(path.parent.name) and answer.confidence >= 0.8:
            break
    else:
        pytest.skip("no candidate frame was read surely enough by the bundled model")
    Image.fromarray(frame).save(tmp_path / "room.jpg", quality=90)
    page.locator(".st-key-photo input[type=file]").set_input_files(str(tmp_path / "room.jpg"))
    assert shown_digit(page) == str(answer.digit)
    page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
    settle(page)
    screenshot(page, "one_photo_room")


def test_draw_on_the_canvas_and_get_an_answer(page):
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    left, top = box["x"], box["y"]
    for start, end in [((150, 330), (150, 170)), ((185, 330), (185, 90)), ((215, 330), (220, 70)),
                       ((245, 330), (255, 95)), ((270, 330), (290, 140))]:
        page.mouse.move(left + start[0], top + start[1])
        page.mouse.down()
        for step in range(1, 11):
            x = start[0] + (end[0] - start[0]) * step / 10
            y = start[1] + (end[1] - start[1]) * step / 10
            page.mouse.move(left + x, top + y)
        page.mouse.up()
    assert shown_digit(page) in list("0123456789")
    page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
    settle(page)
    screenshot(page, "draw")


def test_batch_of_a_folder_with_one_corrupt_file(page, confident_photos, photo_paths, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photo_paths[::55][:29]:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is no photo")
    page.get_by_role("tab", name="Batch").click()
    page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(folder))
    page.get_by_text("Download CSV").wait_for()
    settle(page)
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("Images" in m and "30" in m for m in metrics), metrics
    assert any("Unreadable" in m and "1" in m for m in metrics), metrics
    screenshot(page, "batch")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert len(rows) == 30
    errors = [row for row in rows if row["error"]]
    assert [Path(row["file"]).name for row in errors] == ["broken.jpg"]
    assert all(row["digit"] in list("0123456789") for row in rows if not row["error"])


def test_model_page_shows_the_report(page):
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("Plain photos").first.wait_for()
    settle(page)
    screenshot(page, "model")
