"""The Batch page: rows, error rows in words, "Not sure" rows, hidden files, a new batch."""

import io
import zipfile

import numpy as np
from PIL import Image

from signdigits.results import CSV_COLUMNS
from tests.app.conftest import png_bytes, run_app, upload

PAGE = "app_pages/batch.py"


def batch_rows(at):
    tables = [df.value for df in at.dataframe if "file" in df.value.columns]
    assert len(tables) == 1
    return tables[0]


def test_one_row_per_file_and_a_readable_error_row(confident_photos):
    photos = list(confident_photos.values())[:5]
    wall = png_bytes(Image.fromarray(np.full((240, 320, 3), 235, np.uint8)))  # a bare wall: no hand
    files = [upload(path) for path in photos] + [("broken.jpg", b"\xff\xd8garbage", "image/jpeg"),
                                                 ("wall.png", wall, "image/png")]  # fmt: skip
    at = run_app(PAGE)
    at.file_uploader(key="batch_files_0").set_value(files).run()
    assert not at.exception and not at.error
    rows = batch_rows(at)
    assert len(rows) == len(photos) + 2
    broken = rows[rows["file"] == "broken.jpg"].iloc[0]
    assert broken["digit"] == "–" and broken["note"][:1].isupper() and "None" not in broken["note"]
    assert broken["thumbnail"] == ""  # an empty cell: a missing value would read "None"
    wall_row = rows[rows["file"] == "wall.png"].iloc[0]
    assert wall_row["note"] == "No hand found" and wall_row["thumbnail"].startswith("data:image/jpeg;base64,")
    good = rows[~rows["file"].isin(["broken.jpg", "wall.png"])]
    assert list(good["digit"]) == [path.parent.name for path in photos] and (good["note"] == "").all()
    assert good["confidence"].between(0, 100).all()
    assert good["thumbnail"].str.startswith("data:image/jpeg;base64,").all()

    csv_lines = at.session_state["batch"]["csv"].splitlines()
    assert csv_lines[0] == ",".join(CSV_COLUMNS) and len(csv_lines) == len(photos) + 3
    at.toggle(key="only_doubtful").set_value(True).run()
    assert list(batch_rows(at)["file"]) == ["broken.jpg", "wall.png"]


def test_uncertain_rows_say_not_sure(confident_photos):
    at = run_app(PAGE)
    at.session_state["threshold"] = 100
    at.file_uploader(key="batch_files_0").set_value([upload(p) for p in list(confident_photos.values())[:3]]).run()
    rows = batch_rows(at)
    assert (rows["note"] == "Not sure").all() and (rows["confidence"] <= 99).all()  # never "100%" beside "Not sure"


def test_hidden_and_system_files_are_skipped_with_one_note(confident_photos):
    path = next(iter(confident_photos.values()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(path, f"photos/{path.name}")
        archive.writestr("__MACOSX/photos/._" + path.name, b"resource fork")
        archive.writestr("photos/.DS_Store", b"finder")
        archive.writestr("photos/readme.txt", "not an image")
    files = [("photos.zip", buffer.getvalue(), "application/zip"), (".DS_Store", b"finder", "application/octet-stream")]
    at = run_app(PAGE)
    at.file_uploader(key="batch_files_0").set_value(files).run()
    assert not at.exception
    assert list(batch_rows(at)["file"]) == [f"photos.zip/photos/{path.name}"]
    captions = [c.value for c in at.caption]
    assert sum("hidden or system files" in c for c in captions) == 1
    assert any("skipped 3 hidden or system files" in c for c in captions)
    assert any("readme.txt" in c for c in captions)  # a non-image inside the zip is named


def test_a_non_image_file_is_an_error_row_not_lost():
    at = run_app(PAGE)
    at.file_uploader(key="batch_files_0").set_value([("notes.txt", b"shopping list", "text/plain")]).run()
    rows = batch_rows(at)
    assert list(rows["file"]) == ["notes.txt"] and rows["note"].iloc[0] != ""


def test_new_batch_empties_the_uploaders_and_the_results(confident_photos):
    at = run_app(PAGE)
    at.file_uploader(key="batch_files_0").set_value([upload(next(iter(confident_photos.values())))]).run()
    assert len(batch_rows(at)) == 1
    at.button(key="new_batch").click().run()
    assert not at.exception and "batch" not in at.session_state
    assert [u.key for u in at.file_uploader] == ["batch_files_1", "batch_folder_1"]
    assert not at.dataframe and any("Results appear here" in i.value for i in at.info)


def test_the_pickers_state_the_limits_that_hold():
    """A photo over 50 MB is an error row; only a .zip may be as big as the uploader takes."""
    at = run_app(PAGE)
    label = at.file_uploader(key="batch_files_0").label
    assert "up to 50 MB each" in label and ".zip (up to 200 MB)" in label
