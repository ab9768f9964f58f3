"""The Streamlit app, page by page, through Streamlit's AppTest (no browser).

The canvas component sits behind a seam: app.py calls
``streamlit_drawable_canvas.st_canvas`` through the module, so these tests patch it with
a fake result (``image_data``, ``json_data``, ``boxes``) made from a real photo. The
component module can only be imported inside a Streamlit runtime, so each canvas test
runs the app once (which imports it) before patching.
"""

import io
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from signdigits import DEFAULT_MODEL_PATH, report_dir_for
from signdigits.report import read_report
from signdigits.results import CSV_COLUMNS

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def bundled_model(monkeypatch):
    """Every test starts on the bundled model, whatever the environment says."""
    monkeypatch.delenv("SIGNDIGITS_MODEL", raising=False)


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_digits(at: AppTest) -> list[str]:
    """The digits shown in large type on the page."""
    return [digit for m in at.markdown for digit in re.findall(r'class="sd-digit"[^>]*>(\d)<', m.value)]


def upload(path: Path) -> tuple[str, bytes, str]:
    return path.name, path.read_bytes(), "image/jpeg"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_app_opens_on_four_pages_without_errors():
    at = run_app()
    assert [tab.label for tab in at.tabs][-4:] == [
        ":material/photo_camera: One photo", ":material/draw: Draw",
        ":material/photo_library: Batch", ":material/analytics: Model"]
    assert not at.error
    assert at.slider(key="threshold").value == pytest.approx(0.6)


def test_one_photo_shows_the_digit_its_folder_names(confident_photos):
    digit, path = next(iter(confident_photos.items()))
    at = run_app()
    at.file_uploader(key="photo").set_value(upload(path)).run()
    assert not at.exception and not at.error
    assert shown_digits(at) == [str(digit)]
    assert not [w for w in at.warning if "Uncertain" in w.value]
    captions = [caption for image in at.image for caption in image.captions]
    assert len(captions) >= 3  # the photo, what the model saw, the occlusion map


def test_below_the_threshold_the_answer_is_uncertain_with_the_top_two(confident_photos):
    digit, path = next(iter(confident_photos.items()))
    at = run_app()
    at.file_uploader(key="photo").set_value(upload(path))
    at.slider(key="threshold").set_value(1.0).run()
    warnings = [w.value for w in at.warning if "Uncertain" in w.value]
    assert len(warnings) == 1 and f"it is {digit} (" in warnings[0]


@pytest.mark.parametrize("name, content", [
    ("notes.jpg", b"this is not a photo"),
    ("empty.png", b""),
])
def test_an_unreadable_file_gets_a_plain_message(name, content):
    at = run_app()
    at.file_uploader(key="photo").set_value((name, content, "image/jpeg")).run()
    assert not at.exception
    assert any(name in e.value and "Cannot read" in e.value for e in at.error)
    assert shown_digits(at) == []


def test_16_bit_and_transparent_pngs_get_an_answer(confident_photos):
    path = next(iter(confident_photos.values()))
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.uint16) * 257
    sixteen_bit = Image.fromarray(gray.astype(np.uint16))
    transparent = Image.open(path).convert("RGBA")
    transparent.putalpha(200)
    at = run_app()
    for name, image in [("deep.png", sixteen_bit), ("glass.png", transparent)]:
        at.file_uploader(key="photo").set_value((name, png_bytes(image), "image/png")).run()
        assert not at.exception and not at.error, name
        assert len(shown_digits(at)) == 1, name


def fake_canvas(image: Image.Image | None, boxes=()):
    """A stand-in for st_canvas: its result holds ``image`` (as RGBA) and ``boxes``."""
    objects = [{"type": "LabeledRect", "label": "", **box} for box in boxes]
    if image is not None:
        objects.append({"type": "path"})
    result = SimpleNamespace(
        image_data=None if image is None else np.asarray(image.convert("RGBA")),
        json_data={"objects": objects},
        boxes=[dict(box, label="") for box in boxes],
    )
    return mock.patch("streamlit_drawable_canvas.st_canvas", lambda **kwargs: result)


def test_a_drawing_goes_through_the_same_result_panel(confident_photos):
    digit, path = next(iter(confident_photos.items()))
    drawing = Image.open(path).convert("RGBA").resize((360, 360))
    at = run_app()
    with fake_canvas(drawing):
        at.run()
    assert not at.exception and not at.error
    assert shown_digits(at) == [str(digit)]


def test_an_empty_canvas_asks_for_a_drawing():
    at = run_app()
    with fake_canvas(None):
        at.run()
    assert shown_digits(at) == []
    assert any("Draw on the canvas" in i.value for i in at.info)


def test_a_hand_far_away_in_a_room_is_found_and_boxed(classifier, confident_photos):
    """A hand a third of the frame tall in a dark room: the app finds it, draws its box and
    answers what the library answers (a frame the library reads right)."""
    from signdigits.scenes import hand_mask, paste_hand

    for digit, path in confident_photos.items():
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        room = np.zeros((600, 800, 3), np.uint8)
        room[:] = (40, 60, 30)
        scene, _ = paste_hand(room, photo, hand_mask(photo), 200, (560, 330))
        if classifier.predict(scene).digit == digit:
            break
    else:
        pytest.skip("the bundled model reads none of the candidate scenes right")
    at = run_app()
    at.file_uploader(key="photo").set_value(("room.png", png_bytes(Image.fromarray(scene)), "image/png")).run()
    assert not at.exception and not at.error
    assert shown_digits(at) == [str(digit)]
    assert at.image[0].captions == ["room.png"]  # the photo, shown with the box drawn on it


def test_a_rectangle_around_the_hand_is_read_there(classifier, confident_photos):
    """The crop tool corrects the box: the hand is read where the person marked it, as the
    library reads it there (a photo in a room whose marked hand the library reads right)."""
    from signdigits.scenes import hand_mask, mask_box

    for digit, path in confident_photos.items():
        scene = Image.new("RGB", (800, 600), (40, 60, 30))  # a dark, busy-free "room"
        scene.paste(Image.open(path).convert("RGB").resize((200, 200)), (520, 300))
        x0, y0, x1, y1 = mask_box(hand_mask(np.asarray(Image.open(path).convert("RGB").resize((100, 100)))))
        hand = (520 + 2 * x0, 300 + 2 * y0, 520 + 2 * x1, 300 + 2 * y1)  # in the 800x600 photo
        if classifier.predict(scene, box=hand).digit == digit:
            break
    else:
        pytest.skip("the bundled model reads none of the marked hands right")
    # The canvas shows the 800x600 photo at 560x420: 0.7 canvas pixels per photo pixel.
    box = {"left": hand[0] * 0.7, "top": hand[1] * 0.7, "width": (hand[2] - hand[0]) * 0.7,
           "height": (hand[3] - hand[1]) * 0.7}  # fmt: skip
    at = run_app()
    at.segmented_control(key="draw_kind").set_value("Crop a photo").run()
    at.file_uploader(key="crop_photo").set_value(("room.png", png_bytes(scene), "image/png"))
    with fake_canvas(None, [box]):
        at.run()
    assert not at.exception and not at.error
    assert shown_digits(at) == [str(digit)]
    assert "the hand where you marked it" in [c for image in at.image for c in image.captions]


def batch_rows(at: AppTest):
    tables = [df.value for df in at.dataframe if "file" in df.value.columns]
    assert len(tables) == 1
    return tables[0]


def test_batch_gives_one_row_per_file_and_one_error_row(confident_photos):
    photos = list(confident_photos.values())[:5]
    files = [upload(path) for path in photos] + [("broken.jpg", b"\xff\xd8garbage", "image/jpeg")]
    at = run_app()
    at.file_uploader(key="batch_files").set_value(files).run()
    assert not at.exception and not at.error
    rows = batch_rows(at)
    assert len(rows) == len(photos) + 1
    errors = rows[rows["error"] != ""]
    assert list(errors["file"]) == ["broken.jpg"] and errors["digit"].isna().all()
    good = rows[rows["error"] == ""]
    assert list(good["digit"]) == [int(path.parent.name) for path in photos]
    assert good["thumbnail"].str.startswith("data:image/jpeg;base64,").all()

    csv_lines = at.session_state["batch"]["csv"].splitlines()
    assert csv_lines[0] == ",".join(CSV_COLUMNS) and len(csv_lines) == len(photos) + 2
    assert at.download_button[0].label == "Download CSV"

    at.toggle(key="only_doubtful").set_value(True).run()
    assert list(batch_rows(at)["file"]) == ["broken.jpg"]


def test_batch_opens_zip_archives(confident_photos):
    photos = list(confident_photos.values())[:3]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in photos:
            archive.write(path, f"photos/{path.parent.name}/{path.name}")
        archive.writestr("photos/readme.txt", "not an image")
    at = run_app()
    at.file_uploader(key="batch_files").set_value(
        [("photos.zip", buffer.getvalue(), "application/zip")]).run()
    assert not at.exception
    rows = batch_rows(at)
    assert len(rows) == 3 and (rows["error"] == "").all()
    assert any("readme.txt" in c.value for c in at.caption)  # the skipped entry is reported


def test_model_page_shows_the_training_report():
    report = read_report(report_dir_for(DEFAULT_MODEL_PATH))
    at = run_app()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Plain photos"] == f"{report['test']['variants']['plain']['accuracy']:.1%}"
    assert metrics["Webcam frames"] == f"{report['test']['variants']['webcam']['accuracy']:.1%}"
    table = " ".join(m.value for m in at.markdown)
    for variant in ("mirrored", "far", "busy", "webcam", "silhouette", "outline"):
        assert f"| {variant} |" in table, variant
    assert sum(len(image.value) for image in at.image) >= 1  # the reliability diagram


@pytest.mark.parametrize("content", [None, b"not an HDF5 file", "polyglot"])
def test_a_missing_or_broken_model_gives_one_clear_message(tmp_path, monkeypatch, content,
                                                           polyglot_model):  # fmt: skip
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
    assert not at.tabs  # the app stopped before the pages
