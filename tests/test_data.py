"""Building the arrays (folder, zip, download) and loading/validating them.

Every dataset here is generated in tmp_path; nothing from ../shared is copied.
"""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from signdigits import data as data_module
from signdigits.cli import main
from signdigits.data import (
    Dataset,
    DatasetError,
    build_dataset,
    download_upstream,
    load_dataset,
    save_dataset,
    validate_arrays,
)
from signdigits.labels import INDEX_TO_DIGIT, digit_to_index
from signdigits.preprocess import preprocess

pytestmark = pytest.mark.timeout(60)

UPSTREAM_PREFIX = "Sign-Language-Digits-Dataset-master/Dataset"


def photo(digit: int, variant: int) -> bytes:
    """A distinct little JPEG per (digit, variant)."""
    pixels = np.full((100, 100, 3), 255, np.uint8)
    pixels[10 + digit * 8 : 18 + digit * 8, 10 + variant * 20 : 30 + variant * 20] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


# image numbers are deliberately not in string order (IMG_9 < IMG_10 < IMG_100)
NUMBERS = {d: [9 + d * 100, 10 + d * 100] if d % 2 else [100 + d, 9 + d] for d in range(10)}


def participant_of(number: int) -> int:
    return number % 2 + 1


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "sign-digits"
    lines = ["file,digit,participant"]
    for digit, numbers in NUMBERS.items():
        (root / str(digit)).mkdir(parents=True)
        for variant, number in enumerate(numbers):
            (root / str(digit) / f"IMG_{number}.JPG").write_bytes(photo(digit, variant))
            lines.append(f"{digit}/IMG_{number}.JPG,{digit},{participant_of(number)}")
    (root / "participants.csv").write_text("\n".join(lines) + "\n")
    (root / "README.md").write_text("not an image")
    return root


def expected_order():
    """(digit, number) in the order the builder must produce: digit, then image number."""
    return [(d, n) for d in range(10) for n in sorted(NUMBERS[d])]


def assert_convention(dataset: Dataset):
    n = len(dataset.x)
    assert dataset.x.dtype == np.float32 and dataset.x.shape == (n, 64, 64)
    assert dataset.x.min() >= 0.0 and dataset.x.max() <= 1.0
    assert dataset.y.dtype == np.float32 and dataset.y.shape == (n, 10)
    assert np.all(dataset.y.sum(axis=1) == 1) and set(np.unique(dataset.y)) == {0.0, 1.0}
    assert dataset.participants.dtype == np.int64 and dataset.participants.shape == (n,)


def test_build_from_folder(folder):
    log = []
    dataset = build_dataset(folder, log=log.append)
    assert_convention(dataset)
    order = expected_order()
    assert len(dataset.x) == len(order) == 20
    for row, (digit, number) in enumerate(order):
        np.testing.assert_array_equal(dataset.x[row], preprocess(folder / str(digit) / f"IMG_{number}.JPG"))
        assert dataset.y[row, digit_to_index(digit)] == 1.0
        assert INDEX_TO_DIGIT[int(dataset.y[row].argmax())] == digit
        assert dataset.participants[row] == participant_of(number)
    assert list(dataset.digits) == [d for d, _ in order]
    assert dataset.photos.shape == (20, 100, 100, 3) and dataset.photos.dtype == np.uint8
    assert log == []


def test_build_without_participants_csv(folder):
    (folder / "participants.csv").unlink()
    dataset = build_dataset(folder, log=lambda m: None)
    assert np.all(dataset.participants == -1)


def test_unreadable_images_are_skipped_and_logged(folder):
    (folder / "3" / "IMG_999.JPG").write_bytes(b"broken")
    (folder / "4" / "IMG_1000.png").write_bytes(b"")
    log = []
    dataset = build_dataset(folder, log=log.append)
    assert len(dataset.x) == 20
    assert any("3/IMG_999.JPG" in line for line in log) and any("4/IMG_1000.png" in line for line in log)


def test_malformed_participants_csv(folder):
    (folder / "participants.csv").write_text("file,digit,participant\n0/IMG_100.JPG,0,someone\n")
    with pytest.raises(DatasetError, match="participants.csv"):
        build_dataset(folder, log=lambda m: None)
    (folder / "participants.csv").write_text("name,id\nx,1\n")
    with pytest.raises(DatasetError, match="participants.csv"):
        build_dataset(folder, log=lambda m: None)
    (folder / "participants.csv").write_bytes(b"file,digit,participant\n\xff\xfe,0,1\n")
    with pytest.raises(DatasetError, match="UTF-8"):
        build_dataset(folder, log=lambda m: None)


def test_no_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        build_dataset(tmp_path / "empty", log=lambda m: None)
    with pytest.raises(DatasetError, match="neither a folder"):
        build_dataset(tmp_path / "missing", log=lambda m: None)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="neither a folder"):
        build_dataset(tmp_path / "file.txt", log=lambda m: None)


def upstream_zip(folder, path, with_csv=False):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{UPSTREAM_PREFIX}/", b"")
        archive.writestr("Sign-Language-Digits-Dataset-master/README.md", b"readme")
        for digit in range(10):
            for image in (folder / str(digit)).iterdir():
                archive.writestr(f"{UPSTREAM_PREFIX}/{digit}/{image.name}", image.read_bytes())
        archive.writestr("Sign-Language-Digits-Dataset-master/Examples/example_0.JPG", photo(0, 0))
        if with_csv:
            archive.writestr("Sign-Language-Digits-Dataset-master/participants.csv",
                             (folder / "participants.csv").read_bytes())  # fmt: skip
    return path


def test_build_from_upstream_zip(folder, tmp_path, monkeypatch):
    archive = upstream_zip(folder, tmp_path / "master.zip")
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *a, **k: pytest.fail("extracted"))
    before = sorted(p.name for p in tmp_path.iterdir())
    from_zip = build_dataset(archive, log=lambda m: None)
    from_folder = build_dataset(folder, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # read in memory
    assert_convention(from_zip)
    np.testing.assert_array_equal(from_zip.x, from_folder.x)
    np.testing.assert_array_equal(from_zip.y, from_folder.y)
    assert np.all(from_zip.participants == -1)  # upstream ships no participants.csv
    with_csv = build_dataset(upstream_zip(folder, tmp_path / "csv.zip", with_csv=True), log=lambda m: None)
    np.testing.assert_array_equal(with_csv.participants, from_folder.participants)


def test_corrupt_zip_entry_is_skipped(folder, tmp_path):
    archive = upstream_zip(folder, tmp_path / "master.zip")
    data = bytearray(archive.read_bytes())
    name = f"{UPSTREAM_PREFIX}/5/IMG_509.JPG".encode()
    start = data.index(name) + len(name)  # the local header's name, then the entry's data
    for i in range(start + 200, start + 260):
        data[i] ^= 0x5A
    archive.write_bytes(bytes(data))
    log = []
    dataset = build_dataset(archive, log=log.append)
    assert len(dataset.x) == 19
    assert any("5/IMG_509.JPG" in line and "CRC" in line for line in log)


def test_download_from_a_file_url(folder, tmp_path):
    archive = upstream_zip(folder, tmp_path / "served.zip")
    destination = tmp_path / "downloads" / "upstream.zip"
    log = []
    assert download_upstream(destination, archive.as_uri(), log=log.append) == destination
    assert destination.read_bytes() == archive.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["upstream.zip"]  # no partial file
    assert archive.as_uri() in log[0]
    assert len(build_dataset(destination, log=lambda m: None).x) == 20


def test_download_of_something_else(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html>rate limited</html>")
    destination = tmp_path / "upstream.zip"
    with pytest.raises(DatasetError, match="did not return a zip"):
        download_upstream(destination, page.as_uri(), log=lambda m: None)
    with pytest.raises(DatasetError, match="could not download"):
        download_upstream(destination, (tmp_path / "missing.zip").as_uri(), log=lambda m: None)
    assert list(tmp_path.iterdir()) == [page]  # no partial file left behind


# ----------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(folder, tmp_path):
    dataset = build_dataset(folder, log=lambda m: None)
    out = tmp_path / "arrays"
    written = save_dataset(dataset, out)
    assert sorted(p.name for p in out.iterdir()) == ["participants.npy", "photos.npy", "x.npy", "y.npy"]
    assert [p.name for p in written] == ["x.npy", "y.npy", "participants.npy", "photos.npy"]
    loaded = load_dataset(out / "x.npy")
    np.testing.assert_array_equal(loaded.photos, dataset.photos)
    assert loaded.photos.shape == (len(dataset.x), 100, 100, 3) and loaded.photos.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x, dataset.x)
    np.testing.assert_array_equal(loaded.y, dataset.y)
    np.testing.assert_array_equal(loaded.participants, dataset.participants)
    assert loaded.x.dtype == np.float32 and loaded.y.dtype == np.float32


def test_photos_of_another_shape_are_refused(folder, tmp_path):
    dataset = build_dataset(folder, log=lambda m: None)
    save_dataset(dataset, tmp_path)
    np.save(tmp_path / "photos.npy", dataset.photos[:, :50])
    with pytest.raises(DatasetError, match="photos.npy has shape"):
        load_dataset(tmp_path / "x.npy")


def good_arrays(n=20):
    rng = np.random.default_rng(0)
    x = rng.random((n, 64, 64), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
    return x, y


def test_kaggle_file_names_and_layouts(tmp_path):
    x, y = good_arrays()
    np.save(tmp_path / "X.npy", x[..., None].astype(np.float64))  # N x 64 x 64 x 1, float64
    np.save(tmp_path / "Y.npy", y.astype(np.int64))
    loaded = load_dataset(tmp_path / "X.npy")
    assert loaded.x.shape == (20, 64, 64) and loaded.x.dtype == np.float32
    assert loaded.y.dtype == np.float32 and np.all(loaded.participants == -1)


class Explodes:
    """Unpickling this creates a marker folder: it must never happen."""

    marker = None

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def write(tmp_path, x=None, y=None, participants=None, allow_pickle=False):
    gx, gy = good_arrays()
    for name, array in (("x", gx if x is None else x), ("y", gy if y is None else y)):
        if isinstance(array, (bytes, str)):
            (tmp_path / f"{name}.npy").write_bytes(array.encode() if isinstance(array, str) else array)
        else:
            np.save(tmp_path / f"{name}.npy", array, allow_pickle=allow_pickle)
    if participants is not None:
        np.save(tmp_path / "participants.npy", participants, allow_pickle=allow_pickle)
    return tmp_path / "x.npy"


x_good, y_good = good_arrays()
y_two_hot = y_good.copy()
y_two_hot[0, 5] = 1
y_half = y_good * 0.5
y_one_class = np.eye(10, dtype=np.float32)[np.zeros(20, int)]
x_nan = x_good.copy()
x_nan[3, 4, 5] = np.nan
x_inf = x_good.copy()
x_inf[0, 0, 0] = np.inf


@pytest.mark.parametrize(
    "x, y, file_name, fragment",
    [
        (np.zeros((20, 32, 32), np.float32), None, "x.npy", "shape"),
        (np.zeros((20, 64, 64, 3), np.float32), None, "x.npy", "shape"),
        (np.zeros((20, 4096), np.float32), None, "x.npy", "shape"),
        (np.float32(1.0), None, "x.npy", "shape"),
        ((x_good * 255).astype(np.uint8), None, "x.npy", "dtype"),
        (x_good.astype(np.complex64), None, "x.npy", "dtype"),
        (np.array([["a"] * 64] * 64 * 20).reshape(20, 64, 64), None, "x.npy", "dtype"),
        (x_nan, None, "x.npy", "NaN"),
        (x_inf, None, "x.npy", "NaN or infinite"),
        (x_good * 255, None, "x.npy", "[0, 1]"),
        (x_good - 0.5, None, "x.npy", "[0, 1]"),
        (None, y_good[:, :9], "y.npy", "shape"),
        (None, y_good.argmax(axis=1), "y.npy", "shape"),
        (None, y_good[:19], "y.npy", "20 images but y.npy has 19"),
        (None, y_two_hot, "y.npy", "not one-hot"),
        (None, y_half, "y.npy", "not one-hot"),
        (None, np.where(y_good == 1, np.nan, 0).astype(np.float32), "y.npy", "numbers"),
        (None, y_good.astype("U1"), "y.npy", "numbers"),
        (None, y_one_class, "y.npy", "at least 2"),
        (np.zeros((0, 64, 64), np.float32), np.zeros((0, 10), np.float32), "y.npy", "at least 2"),
    ],
    ids=[
        "x-32px", "x-rgb", "x-flat", "x-scalar", "x-uint8", "x-complex", "x-strings", "x-nan",
        "x-inf", "x-0-255", "x-negative", "y-9-columns", "y-indices", "length-mismatch",
        "y-two-hot", "y-half", "y-nan", "y-strings", "one-class", "empty",
    ],
)  # fmt: skip
def test_validation_errors_name_the_file_and_a_fix(tmp_path, x, y, file_name, fragment):
    with pytest.raises(DatasetError) as caught:
        load_dataset(write(tmp_path, x, y))
    message = str(caught.value)
    assert file_name in message and fragment in message, message
    assert "rebuild" in message or "add images" in message, message


@pytest.mark.parametrize("which", ["x", "y"])
def test_missing_files(tmp_path, which):
    write(tmp_path)
    (tmp_path / f"{which}.npy").unlink()
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "x.npy", tmp_path / "y.npy")
    message = str(caught.value)
    assert str(tmp_path / f"{which}.npy") in message and "build-dataset" in message


@pytest.mark.parametrize("which", ["x", "y", "participants"])
def test_object_arrays_are_never_unpickled(tmp_path, which):
    marker = tmp_path / "unpickled"
    Explodes.marker = marker
    evil = np.array([Explodes()] * 20, dtype=object)
    write(tmp_path, **{which: evil}, allow_pickle=True)
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "x.npy")
    assert f"{which}.npy" in str(caught.value) and "objects" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "not a readable .npy"),
        (b"hello, I am text", "no .npy file"),
        ("truncated", "truncated or malformed"),
        ("huge-header", "truncated or malformed"),
        ("npz", ".npz archive"),
    ],
)
def test_broken_npy_files(tmp_path, content, fragment):
    write(tmp_path)
    path = tmp_path / "x.npy"
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif content == "huge-header":  # declares 4 billion values, holds none
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 64, 64)}
        )
        path.write_bytes(header.getvalue() + b"\0" * 64)
    elif content == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, x=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)
    assert "rebuild" in str(caught.value)


@pytest.mark.parametrize(
    "participants",
    [np.arange(19), np.arange(20).astype(np.float32), np.arange(40).reshape(20, 2)],
    ids=["short", "float", "2d"],
)
def test_bad_participants_file(tmp_path, participants):
    with pytest.raises(DatasetError, match="participants.npy") as caught:
        load_dataset(write(tmp_path, participants=participants))
    assert "rebuild it, or delete it" in str(caught.value)


def test_validate_arrays_squeezes_and_casts():
    x, y = good_arrays()
    vx, vy = validate_arrays(x[..., None].astype(np.float16), y.astype(np.uint8))
    assert vx.shape == (20, 64, 64) and vx.dtype == np.float32 and vy.dtype == np.float32


# ----------------------------------------------------------------------------- the CLI


def test_build_dataset_cli_from_folder(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build-dataset", str(folder), "--out", str(out)]) == 0
    loaded = load_dataset(out / "x.npy")
    built = build_dataset(folder, log=lambda m: None)
    np.testing.assert_array_equal(loaded.x, built.x)
    np.testing.assert_array_equal(loaded.participants, built.participants)
    err = capsys.readouterr().err
    assert "20 images, 20 with a participant id" in err and "wrote" in err


def test_build_dataset_cli_from_zip_and_url(folder, tmp_path, capsys):
    archive = upstream_zip(folder, tmp_path / "master.zip")
    out = tmp_path / "out"
    assert main(["build-dataset", str(archive), "--out", str(out)]) == 0
    assert main(["build-dataset", archive.as_uri(), "--out", str(tmp_path / "out2")]) == 0
    assert (tmp_path / "out2" / "upstream.zip").is_file()
    np.testing.assert_array_equal(np.load(out / "x.npy"), np.load(tmp_path / "out2" / "x.npy"))
    assert "20 images, 0 with a participant id" in capsys.readouterr().err


def test_build_dataset_cli_download(folder, tmp_path, monkeypatch, capsys):
    archive = upstream_zip(folder, tmp_path / "master.zip")
    monkeypatch.setattr(data_module, "UPSTREAM_ZIP_URL", archive.as_uri())
    assert main(["build-dataset", "--download", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "x.npy").is_file()
    assert archive.as_uri() in capsys.readouterr().err


def test_build_dataset_cli_errors(tmp_path, capsys):
    assert main(["build-dataset", "--out", str(tmp_path)]) == 2
    assert "give a dataset folder" in capsys.readouterr().err
    assert main(["build-dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing" in err and "Traceback" not in err
    assert main(["build-dataset", (tmp_path / "nope.zip").as_uri(), "--out", str(tmp_path / "o")]) == 2
    assert "could not download" in capsys.readouterr().err
    assert not (tmp_path / "o" / "x.npy").exists()
