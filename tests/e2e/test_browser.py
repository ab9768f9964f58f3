"""The real app in a real browser: `streamlit run app.py` driven by Debian's chromium, at
desktop size (1400x1000) and phone size (390x844).

One server for the module (own process group, loopback only, killed at the end; see
conftest.py). Screenshots are written only with SIGNDIGITS_SCREENSHOTS=1.
"""

import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from signdigits.pictures import example_paths
from tests.e2e.conftest import DESKTOP, PHONE, WAIT_MS, screenshot, settle

pytestmark = pytest.mark.e2e


@pytest.fixture
def open_page(browser, server):
    """``open_page(path="", viewport=DESKTOP)``: a new browser page on the app, settled."""
    contexts = []

    def open_(path: str = "", viewport=DESKTOP):
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/{path}")
        page.get_by_text("signdigits · reads").wait_for()
        settle(page)
        return page

    yield open_
    for context in contexts:
        context.close()


def answer_text(page) -> str:
    """The answer's headline: the digit, "Not sure" or "No hand found"."""
    answer = page.locator(".sd-digit, .sd-headline").first
    answer.wait_for(state="visible")
    return answer.inner_text().strip()


def upload_photo(page, path):
    page.locator(".st-key-photo input[type=file]").set_input_files(str(path))
    return answer_text(page)


def test_the_digit_is_visible_without_scrolling_at_desktop_size(open_page, confident_photos):
    path = confident_photos.get(5) or next(iter(confident_photos.values()))
    page = open_page()
    assert upload_photo(page, path) == path.parent.name
    settle(page)
    box = page.locator(".sd-digit").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"], box
    assert page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTop") == 0
    shares = page.locator(".sd-pct").all_inner_texts()
    assert len(shares) == 3 and all(re.fullmatch(r"\d+%", share) for share in shares), shares  # one format
    assert page.get_by_role("button", name="“Not sure” below 60%").is_visible()  # the setting, in it too
    screenshot(page, "one_photo")


def test_on_a_phone_the_answer_is_the_first_thing_under_the_uploader(open_page, confident_photos):
    path = confident_photos.get(5) or next(iter(confident_photos.values()))
    page = open_page(viewport=PHONE)
    assert upload_photo(page, path) == path.parent.name
    settle(page)
    uploader = page.locator(".st-key-photo").bounding_box()
    answer = page.locator(".sd-answer").bounding_box()
    photo = page.locator('[data-testid="stImage"]').first.bounding_box()
    assert uploader["y"] + uploader["height"] <= answer["y"] < photo["y"]
    assert answer["y"] + 120 <= PHONE["height"]  # the digit is on the first screen
    screenshot(page, "one_photo_phone")


def test_a_left_hand_is_read_like_the_right_one(open_page, classifier, confident_photos, tmp_path):
    """An unseen person's photo mirrored (the same sign made with the left hand)."""
    from PIL import Image, ImageOps

    for digit, path in confident_photos.items():
        left = tmp_path / f"left_{digit}.jpg"
        ImageOps.mirror(Image.open(path).convert("RGB")).save(left, quality=95)
        if classifier.predict(left).digit == digit:
            break
    else:
        pytest.skip("no mirrored photo was read right by the bundled model")
    page = open_page()
    assert upload_photo(page, left) == str(digit)


def test_an_example_photo_is_read_on_click(open_page):
    page = open_page()
    screenshot(page, "first_visit")
    for digit in sorted(example_paths())[:3]:
        page.get_by_role("button", name=f"Try {digit}").click()
        page.locator(".sd-digit", has_text=str(digit)).wait_for()
        assert answer_text(page) == str(digit)
    assert page.get_by_text("The ten signs").is_visible()


def raise_threshold_to_the_top(page):
    """Open the settings and move the "Not sure" slider to 100% with the keyboard."""
    page.get_by_role("button", name="“Not sure” below").click()
    page.get_by_role("slider").focus()
    page.keyboard.press("End")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="“Not sure” below 100%").wait_for()


def test_an_uncertain_answer_leads_with_not_sure_and_the_top_three(open_page, confident_photos):
    digit, path = next(iter(confident_photos.items()))
    page = open_page()
    raise_threshold_to_the_top(page)
    assert upload_photo(page, path) == "Not sure"
    assert page.get_by_text(f"Maybe {digit} (").is_visible()
    assert len(page.locator(".sd-pct").all_inner_texts()) == 3
    assert page.locator(".sd-digit").count() == 0  # no big digit that looks certain
    settle(page)
    screenshot(page, "not_sure")


def test_a_hand_in_a_room_is_found_and_boxed(open_page, classifier, photo_paths, tmp_path):
    """A webcam-like frame of an unseen person's hand: the app reads what the library reads."""
    import numpy as np
    from PIL import Image

    from signdigits.scenes import background, hand_mask, paste_hand

    rng = np.random.default_rng(5)
    for path in photo_paths[12::70]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        frame, _ = paste_hand(background(rng, (640, 480), "natural", "eval"), photo, hand_mask(photo), 210, (420, 250))
        answer = classifier.predict(frame)
        if answer.digit == int(path.parent.name) and answer.confidence >= 0.8:
            break
    else:
        pytest.skip("no candidate frame was read surely enough by the bundled model")
    Image.fromarray(frame).save(tmp_path / "room.jpg", quality=90)
    page = open_page()
    assert upload_photo(page, tmp_path / "room.jpg") == str(answer.digit)
    settle(page)
    screenshot(page, "one_photo_room")


def draw_hand(page):
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    left, top = box["x"], box["y"]
    for start, end in [((150, 330), (150, 170)), ((185, 330), (185, 90)), ((215, 330), (220, 70)),
                       ((245, 330), (255, 95)), ((270, 330), (290, 140))]:  # fmt: skip
        page.mouse.move(left + start[0], top + start[1])
        page.mouse.down()
        for step in range(1, 11):
            x = start[0] + (end[0] - start[0]) * step / 10
            y = start[1] + (end[1] - start[1]) * step / 10
            page.mouse.move(left + x, top + y)
        page.mouse.up()


def test_draw_has_labelled_controls_and_reads_a_sketch(open_page):
    page = open_page("draw")
    for label in ("Undo last stroke", "Clear"):
        page.get_by_role("button", name=label).wait_for()  # there before the first stroke
    assert page.get_by_text("Palm outline").is_visible()
    draw_hand(page)
    assert answer_text(page) in [*"0123456789", "Not sure", "No hand found"]
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw on the canvas").wait_for()
    settle(page)  # the old answer stays in the page, marked stale, until the rerun has finished
    page.locator(".sd-answer").wait_for(state="detached")
    assert page.locator(".sd-answer").count() == 0


def test_a_batch_with_hidden_files_and_a_corrupt_one_then_a_new_batch(open_page, photo_paths, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photo_paths[::55][:29]:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is no photo")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "._0_IMG.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    page = open_page("batch")
    page.locator(".st-key-batch_folder input[type=file]").set_input_files(str(folder))
    page.get_by_text("Download CSV").wait_for()
    settle(page)
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert any("Images" in m and "30" in m for m in metrics), metrics
    assert any("Errors" in m and "1" in m for m in metrics), metrics
    assert page.get_by_text("skipped 2 hidden or system files").is_visible()
    screenshot(page, "batch")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert len(rows) == 30
    assert [Path(row["file"]).name for row in rows if row["error"]] == ["broken.jpg"]

    page.get_by_role("button", name="New batch").click()
    page.get_by_text("Results appear here").wait_for()
    settle(page)  # the old results stay in the page, marked stale, until the rerun has finished
    assert not page.get_by_text("Download CSV").is_visible()
    assert page.locator('[data-testid="stFileUploaderFile"]').count() == 0


def test_the_model_page_speaks_plainly(open_page):
    page = open_page("model")
    page.get_by_text("people it never saw").wait_for()
    assert page.get_by_text("Where it goes wrong most often").is_visible()
    for words in ("Macro", "ROC", "AUC", "teacher"):  # no jargon
        assert page.get_by_text(words, exact=False).count() == 0, words
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for(state="visible")  # the robustness table
    signs = page.locator('[data-testid="stImage"]', has_text="sign for")
    signs.first.wait_for(state="visible")
    assert signs.count() >= 2  # the signs it confuses most, each beside the one it takes it for
    settle(page)
    screenshot(page, "model")
