"""Turn what a person hands us (files, folders, zip archives, uploads) into named images.

Each image is a ``(name, read)`` pair, where ``read()`` returns its bytes only when the
classifier gets to it, so a batch of thousands is never held in memory at once. Zip
entries are read in memory and never written to disk, so names such as ``../x`` or
``/etc/x`` are only labels. Things that are skipped (non-images, nested zips, entries
over the limits) are reported through ``note``.
"""

import io
import os
import stat
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from signdigits.preprocess import MAX_FILE_BYTES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif")
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_TOTAL_BYTES = 2 * 1024**3  # uncompressed, all image entries together

Item = tuple[str, Callable[[], bytes]]

#: Test hook: with both set, reading item number PAUSE_AT (from 0) of a run first creates
#: the file PAUSE_FILE, then waits while it exists (once per process), so that a test can
#: stop or leave a run at a known point instead of racing it.
PAUSE_FILE_ENV, PAUSE_AT_ENV = "SIGNDIGITS_TEST_PAUSE_FILE", "SIGNDIGITS_TEST_PAUSE_AT"
_PAUSED = threading.Event()


def _ignored(name: str) -> bool:
    """Hidden files and macOS resource forks (``__MACOSX/``, ``._photo.jpg``).

    ``..`` is no hidden file: a zip entry ``../x.jpg`` (or, from Windows tools,
    ``..\\x.jpg``) is read in memory like any other; its name is only a label.
    """
    parts = Path(name.replace("\\", "/")).parts[-2:]
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


def hidden_note(names: list[str]) -> str:
    """One note for the hidden and system files skipped in a batch."""
    kinds = sorted({Path(n.replace("\\", "/")).name for n in names})
    shown = ", ".join(kinds[:3]) + (", …" if len(kinds) > 3 else "")
    return f"skipped {len(names):,} hidden or system file{'s' * (len(names) != 1)} ({shown})"


def _declared_entries(stream) -> int:
    """The entry count a zip's end record declares (0 if it cannot be read here)."""
    end_record = getattr(zipfile, "_EndRecData", None)  # CPython's reader of that record
    if end_record is None:
        return 0
    if isinstance(stream, (str, os.PathLike)):
        with open(stream, "rb") as fh:
            record = end_record(fh)
    else:
        record = end_record(stream)
        stream.seek(0)
    return int(record[zipfile._ECD_ENTRIES_TOTAL]) if record else 0


def iter_zip(source, label: str, note: Callable[[str], None],
             hidden: Callable[[str], None] = lambda name: None) -> Iterator[Item]:  # fmt: skip
    """Image entries of a zip (path, bytes or file-like), in archive order, read lazily;
    the names of hidden and system entries go to ``hidden``."""
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        declared = _declared_entries(stream)
        if declared > MAX_ZIP_ENTRIES:  # refused before its directory is parsed into memory
            yield label, _raiser(f"zip has {declared:,} entries; the limit is {MAX_ZIP_ENTRIES:,}")
            return
        if isinstance(stream, (str, os.PathLike)):  # listed, then closed: reads reopen it
            with zipfile.ZipFile(stream) as listing:
                infos, archive = listing.infolist(), os.fspath(stream)
        else:
            archive = zipfile.ZipFile(stream)
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield label, _raiser(f"not a readable zip archive ({exc})")
        return
    if len(infos) > MAX_ZIP_ENTRIES:
        yield label, _raiser(f"zip has {len(infos):,} entries; the limit is {MAX_ZIP_ENTRIES:,}")
        return
    total = 0
    for info in infos:
        name = f"{label}/{info.filename}"
        lower = info.filename.lower()
        if info.is_dir():
            continue
        if _ignored(info.filename):
            hidden(name)
            continue
        if lower.endswith(".zip"):
            note(f"skipped {name}: zip archives inside zip archives are not opened")
            continue
        if not lower.endswith(IMAGE_SUFFIXES):
            note(f"skipped {name}: not an image file")
            continue
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES or total > MAX_ZIP_TOTAL_BYTES:
            note(f"skipped {name}: over the size limit for zip contents")
            yield name, _raiser("skipped: zip contents over the size limit")
            continue
        yield name, zip_entry_reader(archive, info)


class _OpenArchives:
    """The few zip files on disk being read right now; older ones are closed, so a run over
    thousands of zips holds a bounded number of file descriptors."""

    def __init__(self, size: int = 2):
        self.size, self.archives, self.lock = size, OrderedDict(), threading.Lock()

    def read(self, path: str, info: zipfile.ZipInfo) -> bytes:
        with self.lock:
            archive = self.archives.pop(path, None) or zipfile.ZipFile(path)
            self.archives[path] = archive
            while len(self.archives) > self.size:
                self.archives.popitem(last=False)[1].close()
            return archive.read(info)


_OPEN_ARCHIVES = _OpenArchives()


def zip_entry_reader(archive, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    """Read one entry of ``archive`` (an open ZipFile, or a zip's path) in memory.

    A broken entry (bad CRC, encrypted, unknown method) becomes an OSError.
    """

    def read():
        try:
            if isinstance(archive, zipfile.ZipFile):
                return archive.read(info)
            return _OPEN_ARCHIVES.read(archive, info)
        except Exception as exc:  # bad CRC, encryption, zlib/bz2/lzma errors, ...
            raise OSError(f"cannot read zip entry: {exc}") from exc

    return read


def _raiser(message: str) -> Callable[[], bytes]:
    def read():
        raise OSError(message)

    return read


def _read_file(path: Path) -> Callable[[], bytes]:
    def read():
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise OSError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(f"file is larger than {MAX_FILE_BYTES // 2**20} MB")
        return path.read_bytes()

    return read


def _pausing(items: Iterator[Item]) -> Iterator[Item]:
    """``items``, the read of one of them held for a test (see :data:`PAUSE_FILE_ENV`)."""
    marker, at = os.environ.get(PAUSE_FILE_ENV), os.environ.get(PAUSE_AT_ENV)
    if not marker or not at:
        yield from items
        return

    def held(read):
        def paused_read():
            if not _PAUSED.is_set():
                _PAUSED.set()
                Path(marker).touch()
                while os.path.exists(marker):
                    time.sleep(0.02)
            return read()

        return paused_read

    for index, (name, read) in enumerate(items):
        yield name, held(read) if index == int(at) else read


def iter_paths(paths, note: Callable[[str], None] = lambda message: None) -> Iterator[Item]:
    """Files, folders (recursively, symlinked folders not followed) and zip archives.

    A file named explicitly is always tried (and becomes an error row if it is not an
    image); inside folders only image files and zips are taken.
    """
    return _pausing(_iter_paths(paths, note))


def _iter_paths(paths, note: Callable[[str], None]) -> Iterator[Item]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for file_name in sorted(files):
                    file_path = Path(folder) / file_name
                    if _ignored(file_name):
                        continue
                    if file_name.lower().endswith(".zip"):
                        yield from iter_zip(str(file_path), str(file_path), note)
                    elif file_name.lower().endswith(IMAGE_SUFFIXES):
                        yield str(file_path), _read_file(file_path)
                    else:
                        note(f"skipped {file_path}: not an image file")
        elif path.suffix.lower() == ".zip" and path.is_file() and zipfile.is_zipfile(path):
            yield from iter_zip(str(path), str(path), note)
        elif path.exists() or path.is_symlink():
            yield str(path), _read_file(path)
        else:
            yield str(path), _raiser("no such file or folder")


def _bytes_of(data) -> bytes:
    return data.getvalue() if hasattr(data, "getvalue") else bytes(data)


def iter_uploads(uploads, note: Callable[[str], None] = lambda message: None) -> Iterator[Item]:
    """Uploaded ``(name, data)`` pairs (bytes or file-like); zip uploads are opened. Hidden
    and system files (``.DS_Store``, ``._photo.jpg``, ``__MACOSX/``) are skipped with one
    note at the end; any other file is tried, and becomes an error row if it is no image."""
    return _pausing(_iter_uploads(uploads, note))


def _iter_uploads(uploads, note: Callable[[str], None]) -> Iterator[Item]:
    hidden: list[str] = []
    for name, data in uploads:
        if _ignored(name):
            hidden.append(name)
        elif name.lower().endswith(".zip"):
            yield from iter_zip(_bytes_of(data), name, note, hidden.append)
        else:
            yield name, (lambda data=data: _bytes_of(data))
    if hidden:
        note(hidden_note(hidden))
