"""atomic_path: the one way files are replaced (CSV results, models, dataset arrays)."""

import os

import pytest

from signdigits.atomic import atomic_path


def test_the_new_file_replaces_the_old_one_only_at_the_end(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with atomic_path(path) as temporary:
        temporary.write_text("new")
        assert path.read_text() == "old" and temporary.parent == tmp_path
        assert temporary.name.startswith(".out.csv.") and temporary.name.endswith(".part")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_an_error_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.csv"]


def test_permission_bits_are_kept_or_those_of_a_new_file(tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    with atomic_path(kept) as temporary:
        temporary.write_text("new")
    assert kept.stat().st_mode & 0o777 == 0o640
    umask = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "new.csv") as temporary:
            temporary.write_text("new")
    finally:
        os.umask(umask)
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o640


def test_debris_of_a_killed_run_is_removed_and_nothing_else(tmp_path):
    path = tmp_path / "model.h5"
    stale = tmp_path / ".model.h5.0123456789ab.part.h5"
    other = tmp_path / ".other.h5.0123456789ab.part.h5"
    stale.write_text("killed half-way")
    other.write_text("another file's")
    with atomic_path(path, suffix=".part.h5") as temporary:
        assert temporary.suffix == ".h5"
        temporary.write_text("model")
    assert sorted(os.listdir(tmp_path)) == [other.name, "model.h5"]
