"""Files, folders, zip archives and uploads -> named, lazily read images.

Zip entries are read in memory only: hostile names are labels, never paths; bombs are
refused by limits (patched small here, nothing big is ever made).
"""

import io
import os
import zipfile

import pytest
from PIL import Image

from signdigits import sources
from signdigits.sources import iter_paths, iter_uploads, iter_zip

pytestmark = pytest.mark.timeout(60)


def png(value=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (20, 20), value).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def collect(items):
    """[(name, bytes or 'error: ...')] for the items, reading each one."""
    out = []
    for name, read in items:
        try:
            out.append((name, read()))
        except OSError as exc:
            out.append((name, f"error: {exc}"))
    return out


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def notes():
    return []


# ----------------------------------------------------------------------------- zip


def test_zip_images_in_archive_order(notes):
    data = make_zip([("b.png", png(1)), ("sub/a.PNG", png(2)), ("c.jpeg", png(3))])
    result = collect(iter_zip(data, "up.zip", notes.append))
    assert [n for n, _ in result] == ["up.zip/b.png", "up.zip/sub/a.PNG", "up.zip/c.jpeg"]
    assert [d for _, d in result] == [png(1), png(2), png(3)]
    assert notes == []


def test_zip_from_path_and_file_object(tmp_path, notes):
    data = make_zip([("a.png", png())])
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    for source in (str(path), io.BytesIO(data), data):
        assert collect(iter_zip(source, "z", notes.append)) == [("z/a.png", png())]


def test_zip_skips_nested_zips_and_non_images_with_a_note(notes):
    inner = make_zip([("x.png", png())])
    data = make_zip(
        [("inner.zip", inner), ("readme.txt", b"hi"), ("folder/", b""), ("ok.png", png()),
         ("__MACOSX/._ok.png", b"junk"), (".hidden.png", png())]
    )  # fmt: skip
    result = collect(iter_zip(data, "up.zip", notes.append))
    assert result == [("up.zip/ok.png", png())]
    assert any("up.zip/inner.zip" in n and "inside zip" in n for n in notes)
    assert any("up.zip/readme.txt" in n and "not an image" in n for n in notes)
    assert len(notes) == 2


def test_not_a_zip(notes):
    result = collect(iter_zip(b"PK\x03\x04 but not really a zip", "fake.zip", notes.append))
    assert len(result) == 1 and result[0][0] == "fake.zip"
    assert result[0][1].startswith("error: not a readable zip archive")


def test_traversal_and_absolute_names_are_only_labels(tmp_path, monkeypatch, notes):
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    target = tmp_path / "pwned.png"
    names = ["../pwned.png", "../../pwned.png", "../../../../../../../../tmp/pwned.png",
             str(target), "/etc/pwned.png", "..\\..\\pwned.png", "C:/pwned.png"]  # fmt: skip
    data = make_zip([(name, png()) for name in names])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[0] == "../pwned.png"

    def no_extraction(*args, **kwargs):
        raise AssertionError("zip entries must never be extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extraction)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extraction)
    before = tree(tmp_path)
    result = collect(iter_zip(data, "evil.zip", notes.append))
    assert len(result) == len(names)
    assert all(d == png() for _, d in result)  # read, in memory
    assert [n for n, _ in result][0] == "evil.zip/../pwned.png"
    assert tree(tmp_path) == before
    assert not target.exists() and not os.path.exists("/etc/pwned.png")
    assert not os.path.exists("/tmp/pwned.png")


def test_too_many_entries(monkeypatch, notes):
    monkeypatch.setattr(sources, "MAX_ZIP_ENTRIES", 3)
    data = make_zip([(f"{i}.png", png()) for i in range(4)])
    result = collect(iter_zip(data, "many.zip", notes.append))
    assert len(result) == 1 and result[0][0] == "many.zip"
    assert "4 entries" in result[0][1] and "limit is 3" in result[0][1]
    assert len(collect(iter_zip(make_zip([(f"{i}.png", png()) for i in range(3)]), "z", print))) == 3


def test_zip_bomb_is_refused_without_decompressing(monkeypatch, notes):
    monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 1_000_000)
    bomb = b"\0" * 5_000_000  # 5 MB of zeros: about 5 kB compressed
    data = make_zip([("small.png", png()), ("bomb.png", bomb), ("after.png", png())])
    assert len(data) < 20_000
    reads = []
    original_read = zipfile.ZipFile.read

    def counting_read(self, name, pwd=None):
        reads.append(getattr(name, "filename", name))
        return original_read(self, name, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "read", counting_read)
    result = collect(iter_zip(data, "bomb.zip", notes.append))
    assert [n for n, _ in result] == ["bomb.zip/small.png", "bomb.zip/bomb.png", "bomb.zip/after.png"]
    assert result[0][1] == png()
    assert result[1][1].startswith("error:") and "size limit" in result[1][1]
    assert result[2][1].startswith("error:")  # the running total is over the limit too
    assert any("bomb.zip/bomb.png" in n and "size limit" in n for n in notes)
    assert "small.png" in reads and "bomb.png" not in reads  # never decompressed


def test_zip_entry_over_the_file_size_limit(monkeypatch, notes):
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 100)
    data = make_zip([("big.png", b"\0" * 101), ("ok.png", b"\0" * 100)])
    result = collect(iter_zip(data, "z", notes.append))
    assert result[0][1].startswith("error:") and result[1][1] == b"\0" * 100


def test_entry_that_lies_about_its_size_is_an_error_not_a_bomb(notes):
    data = bytearray(make_zip([("liar.png", b"\0" * 2_000_000)]))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("liar.png")
    declared = info.file_size.to_bytes(4, "little")
    assert data.count(declared) >= 2
    data = bytes(data).replace(declared, (100).to_bytes(4, "little"))  # local + central headers
    result = collect(iter_zip(data, "z", notes.append))
    assert len(result) == 1 and result[0][1].startswith("error: cannot read zip entry")


def test_encrypted_and_unsupported_entries_are_errors(notes):
    data = bytearray(make_zip([("locked.png", png()), ("odd.png", png()), ("fine.png", png())]))
    local = [i for i in range(len(data)) if data[i : i + 4] == b"PK\x03\x04"]
    central = [i for i in range(len(data)) if data[i : i + 4] == b"PK\x01\x02"]
    data[local[0] + 6] |= 1  # 'encrypted' flag
    data[central[0] + 8] |= 1
    data[local[1] + 8] = 99  # unknown compression method
    data[central[1] + 10] = 99
    result = collect(iter_zip(bytes(data), "z", notes.append))
    assert [n for n, _ in result] == ["z/locked.png", "z/odd.png", "z/fine.png"]
    assert result[0][1].startswith("error: cannot read zip entry")
    assert result[1][1].startswith("error: cannot read zip entry")
    assert result[2][1] == png()


def test_corrupt_entry_data_is_an_error(notes):
    data = bytearray(make_zip([("a.png", png(0) * 5)]))
    start = data.index(b"a.png") + len("a.png")
    for i in range(start + 10, start + 40):
        data[i] ^= 0x55
    result = collect(iter_zip(bytes(data), "z", notes.append))
    assert len(result) == 1 and result[0][1].startswith("error: cannot read zip entry")


def zip_with_raw_names(raw_names) -> bytes:
    """A zip whose entry names are the given bytes, without the UTF-8 flag."""
    placeholders = [bytes([ord("A") + i]) * len(raw) for i, raw in enumerate(raw_names)]
    entries = [(p.decode("ascii"), png(i * 50)) for i, p in enumerate(placeholders)]
    data = make_zip(entries, zipfile.ZIP_STORED)
    for placeholder, raw in zip(placeholders, raw_names):
        assert data.count(placeholder) == 2  # local header and central directory
        data = data.replace(placeholder, raw)
    return data


def test_non_utf8_names_survive(notes):
    raw_names = ["写真.png".encode("shift_jis"), "Ñandú.jpg".encode("cp437"), "été.png".encode("latin-1")]
    data = zip_with_raw_names(raw_names)
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert all(not info.flag_bits & 0x800 for info in infos)
    result = collect(iter_zip(data, "names.zip", notes.append))
    assert len(result) == 3
    for (name, content), raw, i in zip(result, raw_names, range(3)):
        assert name == "names.zip/" + raw.decode("cp437")  # how zip readers spell them
        assert name.encode("cp437").endswith(raw)  # nothing lost
        assert content == png(i * 50)
        name.encode("utf-8")  # and they can be written to a UTF-8 CSV


def test_utf8_names(notes):
    data = make_zip([("日本語/写真.png", png())])
    assert collect(iter_zip(data, "u.zip", notes.append)) == [("u.zip/日本語/写真.png", png())]


# ----------------------------------------------------------------------------- folders


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "b.png").write_bytes(png(1))
    (root / "a.JPG").write_bytes(png(2))
    (root / "notes.txt").write_text("hi")
    (root / ".secret.png").write_bytes(png())
    (root / "._a.JPG").write_bytes(b"resource fork")
    (root / "sub" / "c.webp").write_bytes(png(3))
    (root / ".hidden" / "d.png").write_bytes(png())
    (root / "pack.zip").write_bytes(make_zip([("z.png", png(4))]))
    return root


def test_folder_walk(folder, notes):
    result = collect(iter_paths([folder], notes.append))
    names = [os.path.relpath(n, folder) for n, _ in result]
    assert names == ["a.JPG", "b.png", "pack.zip/z.png", "sub/c.webp"]
    assert [d for _, d in result] == [png(2), png(1), png(4), png(3)]
    assert any("notes.txt" in n for n in notes)


def test_explicit_files_are_always_tried(folder, notes):
    result = collect(iter_paths([folder / "notes.txt", folder / "b.png", folder / "pack.zip"], notes.append))
    assert [os.path.basename(n) for n, _ in result] == ["notes.txt", "b.png", "z.png"]
    assert result[0][1] == b"hi"


def test_missing_path(tmp_path, notes):
    result = collect(iter_paths([tmp_path / "nope.jpg"], notes.append))
    assert result == [(str(tmp_path / "nope.jpg"), "error: no such file or folder")]


def test_symlink_loops_do_not_hang(folder, notes):
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "sub" / "up").symlink_to("..", target_is_directory=True)
    (folder / "self.png").symlink_to("self.png")
    (folder / "ping.png").symlink_to("pong.png")
    (folder / "pong.png").symlink_to("ping.png")
    result = collect(iter_paths([folder], notes.append))
    names = [os.path.relpath(n, folder) for n, _ in result]
    assert names == ["a.JPG", "b.png", "pack.zip/z.png", "ping.png", "pong.png", "self.png", "sub/c.webp"]
    for name, data in result:
        if name.endswith(("ping.png", "pong.png", "self.png")):
            assert data.startswith("error:")
    # a loop named on the command line is one error item
    assert collect(iter_paths([folder / "self.png"]))[0][1].startswith("error:")


def test_symlinked_folders_are_not_followed(tmp_path, folder, notes):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(png())
    (folder / "link").symlink_to(outside, target_is_directory=True)
    names = [n for n, _ in iter_paths([folder], notes.append)]
    assert not any("x.png" in n for n in names)


def test_unreadable_entries_are_errors(tmp_path, notes):
    root = tmp_path / "odd"
    root.mkdir()
    (root / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
    os.mkfifo(root / "fifo.jpg")
    locked = root / "locked.jpg"
    locked.write_bytes(png())
    locked.chmod(0)
    try:
        result = dict(collect(iter_paths([root], notes.append)))
    finally:
        locked.chmod(0o644)
    assert result[str(root / "dangling.jpg")].startswith("error:")
    assert result[str(root / "fifo.jpg")] == "error: not a regular file"  # and no hang
    if os.geteuid() != 0:  # root reads anything: chmod 000 means nothing there
        assert result[str(locked)].startswith("error:")
    # the same, named explicitly
    explicit = dict(collect(iter_paths([root / "fifo.jpg", root / "dangling.jpg"])))
    assert all(v.startswith("error:") for v in explicit.values())


def test_device_files_are_not_read(notes):
    result = collect(iter_paths(["/dev/zero"], notes.append))
    assert result == [("/dev/zero", "error: not a regular file")]


def test_directory_named_like_an_image_is_walked(tmp_path, notes):
    odd = tmp_path / "x.jpg"
    odd.mkdir()
    (odd / "inside.png").write_bytes(png())
    assert [os.path.basename(n) for n, _ in iter_paths([tmp_path], notes.append)] == ["inside.png"]
    assert [os.path.basename(n) for n, _ in iter_paths([odd], notes.append)] == ["inside.png"]


def test_file_size_limit(tmp_path, monkeypatch, notes):
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 10)
    (tmp_path / "a.png").write_bytes(png())
    result = collect(iter_paths([tmp_path], notes.append))
    assert "larger than" in result[0][1]


def test_reading_is_lazy(tmp_path, notes):
    (tmp_path / "a.png").write_bytes(png())
    items = list(iter_paths([tmp_path], notes.append))
    (tmp_path / "a.png").unlink()  # gone before the classifier gets to it
    with pytest.raises(OSError):
        items[0][1]()


# ----------------------------------------------------------------------------- uploads


def test_uploads(notes):
    uploads = [
        ("a.png", png(1)),
        ("b.png", io.BytesIO(png(2))),
        ("pack.ZIP", io.BytesIO(make_zip([("c.png", png(3)), ("d.txt", b"x")]))),
        (".DS_Store", b"junk"),
        ("weird.txt", b"tried anyway"),
    ]
    result = collect(iter_uploads(uploads, notes.append))
    assert result == [
        ("a.png", png(1)), ("b.png", png(2)), ("pack.ZIP/c.png", png(3)), ("weird.txt", b"tried anyway")
    ]  # fmt: skip
    assert any("d.txt" in n for n in notes)


def test_many_zips_hold_few_file_descriptors(tmp_path):
    """Zips found in a folder are listed and closed; reading reopens at most a couple."""
    import zipfile

    from signdigits.sources import iter_paths

    for i in range(300):
        with zipfile.ZipFile(tmp_path / f"{i:03d}.zip", "w") as archive:
            archive.writestr(f"{i}.png", b"not really a png")
    open_fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_fds()
    items = list(iter_paths([tmp_path]))
    assert len(items) == 300 and open_fds() <= before + 1
    assert all(read() == b"not really a png" for _, read in items)
    assert open_fds() <= before + 3


def test_uploads_skip_hidden_and_system_files_with_one_note():
    """.DS_Store, macOS resource forks and __MACOSX/ entries, loose or zipped, are skipped
    and counted in one note; any other file is kept (and becomes an error row if it is no
    image)."""
    import io
    import zipfile

    from signdigits.sources import iter_uploads

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("album/a.jpg", b"jpeg")
        archive.writestr("__MACOSX/album/._a.jpg", b"fork")
    uploads = [("folder/.DS_Store", b"x"), ("folder/._b.jpg", b"x"), ("folder/b.jpg", b"jpeg"),
               ("folder/notes.txt", b"text"), ("album.zip", buffer.getvalue())]  # fmt: skip
    notes = []
    names = [name for name, _ in iter_uploads(uploads, note=notes.append)]
    assert names == ["folder/b.jpg", "folder/notes.txt", "album.zip/album/a.jpg"]
    assert notes == ["skipped 3 hidden or system files (.DS_Store, ._a.jpg, ._b.jpg)"]
