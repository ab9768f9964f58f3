"""``python -m signdigits``: predict (rows for every file, errors on stderr, exit codes),
zip input read in memory, hostile folders, --model; bench and build-dataset parsing.

Most tests call ``cli.main`` in-process (the model loads once per test through a cached
Classifier); one runs the real command from another working directory.
"""

import csv
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH
from signdigits import classifier as classifier_module
from signdigits.cli import Progress, build_parser, main
from signdigits.results import CSV_COLUMNS

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]

HEADER = ",".join(["file", "digit", "confidence", *(f"p{d}" for d in range(10)), "x0", "y0", "x1", "y1", "error"])


def png(value=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (30, 30), value).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(value=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), (value,) * 3).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def whole_picture_classifier(make_tiny_localizer):
    """The bundled classifier behind a localizer that finds the hand filling any picture,
    so that the plain test pictures here get digits."""
    return classifier_module.Classifier(DEFAULT_MODEL_PATH, make_tiny_localizer())


@pytest.fixture(autouse=True)
def reuse_bundled_classifier(whole_picture_classifier, monkeypatch):
    """The CLI builds ``Classifier(args.model, args.localizer)``; for the bundled pair, hand
    it the module's classifier instead of loading the files again (other files load for real)."""
    real = classifier_module.Classifier

    def cached(model_path, localizer_path):
        bundled = (DEFAULT_MODEL_PATH, DEFAULT_LOCALIZER_PATH)
        if all(os.path.realpath(a) == os.path.realpath(b) for a, b in zip((model_path, localizer_path), bundled)):
            return whole_picture_classifier
        return real(model_path, localizer_path)

    monkeypatch.setattr(classifier_module, "Classifier", cached)


def test_the_real_localizer_finds_hands_and_reports_their_absence(photo_paths, tmp_path, capsys):
    """The bundled pair, loaded for real: a photo gets its digit and box, a wall 'no hand found'."""
    localizer = tmp_path / "localizer.h5"
    localizer.write_bytes(DEFAULT_LOCALIZER_PATH.read_bytes())
    wall = tmp_path / "wall.jpg"
    Image.new("RGB", (120, 90), (200, 200, 195)).save(wall)
    out = tmp_path / "out.csv"
    assert main(["predict", str(photo_paths[0]), str(wall), "--localizer", str(localizer),
                 "--csv", str(out)]) == 0  # fmt: skip
    photo, blank = read_csv(out)[1]
    assert photo["digit"] == photo_paths[0].parent.name and float(photo["x1"]) > float(photo["x0"])
    assert blank["error"] == "no hand found" and blank["digit"] == "" and blank["x0"] == ""
    assert "wall.jpg: no hand found" in capsys.readouterr().err


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good1.png").write_bytes(png(0))
    (folder / "good2.jpg").write_bytes(jpeg(200))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a photo")
    (folder / "truncated.jpg").write_bytes(jpeg(50)[:200])
    (folder / "readme.md").write_text("skipped, with a note")
    return folder


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        text = fh.read()
    return text, list(csv.DictReader(io.StringIO(text)))


def test_folder_with_good_and_corrupt_files(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["predict", str(mixed_folder), "--csv", str(out)]) == 0
    text, rows = read_csv(out)
    assert text.splitlines()[0] == HEADER == ",".join(CSV_COLUMNS)
    by_name = {os.path.basename(r["file"]): r for r in rows}
    assert sorted(by_name) == ["empty.jpg", "good1.png", "good2.jpg", "text.jpg", "truncated.jpg"]
    for name in ("good1.png", "good2.jpg"):
        row = by_name[name]
        assert row["error"] == "" and row["digit"] in [str(d) for d in range(10)]
        probabilities = [float(row[f"p{d}"]) for d in range(10)]
        assert 0.5 - 1e-4 <= sum(probabilities) <= 1.0 + 1e-4  # a hand was found: its probability
        assert float(row["confidence"]) == max(probabilities)
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        row = by_name[name]
        assert row["error"] and row["digit"] == "" and row["p0"] == ""
    err = capsys.readouterr().err
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert f"{name}: " in err
    assert "readme.md" in err and "not an image file" in err
    assert "classified 2 of 5 images" in err


def test_rows_go_to_stdout_without_csv(mixed_folder, capsys):
    assert main(["predict", str(mixed_folder / "good1.png"), str(mixed_folder / "text.jpg")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == HEADER and len(lines) == 3
    assert "text.jpg: not a supported image" in captured.err
    assert HEADER not in captured.err


def test_exit_code_when_nothing_was_classified(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out.csv"
    paths = [str(mixed_folder / n) for n in ("empty.jpg", "text.jpg", "truncated.jpg")]
    assert main(["predict", *paths, "--csv", str(out)]) == 1
    _, rows = read_csv(out)
    assert len(rows) == 3 and all(r["error"] for r in rows)
    assert "classified 0 of 3 images" in capsys.readouterr().err


def test_exit_code_when_no_images_found(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["predict", str(tmp_path)]) == 1
    assert "no images found" in capsys.readouterr().err


def test_missing_path_is_an_error_row(tmp_path, capsys):
    good = tmp_path / "good.png"
    good.write_bytes(png())
    assert main(["predict", str(good), str(tmp_path / "nope.jpg")]) == 0
    out, err = capsys.readouterr()
    assert "nope.jpg" + "," * 17 + "cannot read file: no such file or folder" in out
    assert "nope.jpg: cannot read file: no such file or folder" in err


def test_names_that_look_like_options_or_formulas(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("-dash.png", "=HYPERLINK(1).png"):
        (tmp_path / name).write_bytes(png())
    assert main(["predict", "--", "-dash.png", "=HYPERLINK(1).png"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["file"] for r in rows] == ["'-dash.png", "'=HYPERLINK(1).png"]
    assert all(r["digit"] and not r["error"] for r in rows)


def test_help_says_how_to_pass_names_that_begin_with_a_dash(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "-- -photo.jpg" in " ".join(capsys.readouterr().out.split())


def test_unwritable_csv(mixed_folder, tmp_path, capsys):
    assert main(["predict", str(mixed_folder), "--csv", str(tmp_path)]) == 2  # a folder
    err = capsys.readouterr().err
    assert "error: cannot write" in err and "Is a directory" in err and "Traceback" not in err


def test_model_option_picks_another_model(make_tiny_model, make_tiny_localizer, mixed_folder, tmp_path):
    table = (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)
    model = make_tiny_model(table, hot=4)
    out = tmp_path / "out.csv"
    localizer = str(make_tiny_localizer())
    assert main(["predict", str(mixed_folder), "--csv", str(out), "--model", str(model),
                 "--localizer", localizer]) == 0  # fmt: skip
    _, rows = read_csv(out)
    assert [r["digit"] for r in rows if not r["error"]] == [str(table[4])] * 2


def test_bad_model_file(tmp_path, mixed_folder, capsys):
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    for model in (broken, tmp_path / "missing.h5"):
        assert main(["predict", str(mixed_folder), "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(model) in err and "Traceback" not in err


def test_model_file_with_an_archive_appended(polyglot_model, mixed_folder, capsys):
    assert main(["predict", str(mixed_folder), "--model", str(polyglot_model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {polyglot_model} has ") and "bytes after its HDF5 data" in err
    assert len(err.strip().splitlines()) == 1


def test_zip_is_read_in_memory(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/one.png", png(0))
        zf.writestr("../escape.png", png(0))
        zf.writestr("/abs/evil.png", png(0))
        zf.writestr("photos/bad.jpg", b"broken")
        zf.writestr("nested.zip", b"PK")
        zf.writestr("photos/list.txt", b"x")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def no_extraction(*args, **kwargs):
        raise AssertionError("zip entries must never be extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extraction)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extraction)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["predict", str(archive)]) == 0
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert list(scratch.iterdir()) == []
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == [
        f"{archive}/photos/one.png",
        f"{archive}/../escape.png",
        f"{archive}//abs/evil.png",
        f"{archive}/photos/bad.jpg",
    ]
    assert [bool(r["error"]) for r in rows] == [False, False, False, True]
    assert "nested.zip" in err and "list.txt" in err


def test_zip_limits_apply_to_the_cli(tmp_path, monkeypatch, capsys):
    from signdigits import sources

    monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 200_000)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.png", png())
        zf.writestr("bomb.png", b"\0" * 1_000_000)
    assert main(["predict", str(archive)]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [bool(r["error"]) for r in rows] == [False, True]
    assert "size limit" in rows[1]["error"] and "size limit" in err


def test_non_utf8_zip_names_reach_the_csv(tmp_path, capsys):
    raw = "写真.png".encode("shift_jis")
    placeholder = b"Q" * len(raw)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(placeholder.decode(), png())
    archive = tmp_path / "sjis.zip"
    archive.write_bytes(buffer.getvalue().replace(placeholder, raw))
    out = tmp_path / "out.csv"
    assert main(["predict", str(archive), "--csv", str(out)]) == 0
    _, rows = read_csv(out)
    assert len(rows) == 1 and not rows[0]["error"]
    assert rows[0]["file"] == f"{archive}/{raw.decode('cp437')}"


def test_hostile_folder(tmp_path, capsys):
    root = tmp_path / "hostile"
    root.mkdir()
    (root / "good.png").write_bytes(png())
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "self.jpg").symlink_to("self.jpg")
    (root / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    os.mkfifo(root / "fifo.jpg")
    locked = root / "locked.jpg"
    locked.write_bytes(b"\xff\xd8 not readable anyway")
    locked.chmod(0)
    try:
        assert main(["predict", str(root)]) == 0
    finally:
        locked.chmod(0o644)
    out, err = capsys.readouterr()
    rows = {os.path.basename(r["file"]): r for r in csv.DictReader(io.StringIO(out))}
    assert sorted(rows) == ["dangling.jpg", "fifo.jpg", "good.png", "locked.jpg", "self.jpg"]
    assert not rows["good.png"]["error"]
    for name in ("dangling.jpg", "fifo.jpg", "locked.jpg", "self.jpg"):
        assert rows[name]["error"], name
        assert f"{name}: " in err
    assert "not a regular file" in rows["fifo.jpg"]["error"]


def test_progress_bar_for_many_images(tmp_path, capsys):
    for i in range(55):
        (tmp_path / f"{i:02d}.png").write_bytes(png(i))
    (tmp_path / "zz_bad.png").write_bytes(b"x")
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path), "--csv", str(out)]) == 0
    err = capsys.readouterr().err
    assert "56/56 images" in err and "zz_bad.png: " in err
    assert len(read_csv(out)[1]) == 56


def test_progress_class():
    stream = io.StringIO()
    progress = Progress(3, stream=stream, min_total=1)
    for _ in range(3):
        progress.update()
    assert "3/3 images" in stream.getvalue() and stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(3, stream=quiet).update()
    assert quiet.getvalue() == ""


def test_parser():
    parser = build_parser()
    args = parser.parse_args(["predict", "a.jpg", "b", "--csv", "o.csv"])
    assert args.paths == ["a.jpg", "b"] and args.csv == "o.csv"
    assert os.path.isabs(str(args.model)) and str(args.model).endswith("model.h5")
    args = parser.parse_args(["bench", "--json", "b.json", "--images", "10"])
    assert args.json == "b.json" and args.images == 10
    with pytest.raises(SystemExit):
        parser.parse_args([])
    with pytest.raises(SystemExit):
        parser.parse_args(["predict"])


def test_from_another_working_directory(tmp_path, photo_paths):
    """The real command, run elsewhere: it finds the bundled model files by itself."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "good.png").write_bytes(photo_paths[0].read_bytes())
    (elsewhere / "bad.jpg").write_text("nope")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "signdigits", "predict", "good.png", "bad.jpg", "--csv", "out.csv"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr
    text, rows = read_csv(elsewhere / "out.csv")
    assert text.splitlines()[0] == HEADER
    assert [r["file"] for r in rows] == ["good.png", "bad.jpg"]
    assert rows[0]["digit"] and not rows[0]["error"] and rows[1]["error"]
    assert "bad.jpg: not a supported image" in done.stderr
    assert "Traceback" not in done.stderr
