"""Replace a file so that readers see the old one or the whole new one, never part of one."""

import glob
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; when the block ends without an error the
    file is synced and renamed onto ``path`` (``os.replace``), otherwise it is removed.

    The temporary file is hidden, ``.NAME.<random><suffix>`` (a writer that goes by the
    extension gets e.g. ``suffix=".part.h5"``); such files that a killed earlier run left
    behind are removed first. The new file keeps the permission bits of the file it
    replaces, or has those of any new file (0o666 less the umask).
    """
    path = Path(path)
    prefix = f".{path.name}."
    for stale in path.parent.glob(glob.escape(prefix) + "*" + glob.escape(suffix)):
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f"{prefix}{secrets.token_hex(6)}{suffix}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        try:
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        yield temporary
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
