"""The verified record: where it lives, what it trusts, how it survives torn writes, and that no line is lost."""

from __future__ import annotations

import os
from pathlib import Path

from isc_kit import records
from isc_kit.local import VERIFIED, Destination, compare
from isc_kit.manifest import Manifest
from isc_kit.records import RecordWriter, compact, iter_entries

MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5(b"a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5(b"b")


def _entries(path: Path) -> dict[str, tuple[int, int, str]]:
    return {rel: (s, m, h) for rel, s, m, h in iter_entries(path)}


def test_record_lives_beside_the_destination_not_in_it(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "ref"
    assert Destination(dest).record_path == tmp_path / "data" / ".isc-kit" / "ref.verified"
    assert Destination(str(dest) + "/").record_path == Destination(dest).record_path


def test_a_symlinked_alias_shares_the_record_and_the_lock(tmp_path: Path) -> None:
    real = tmp_path / "real" / "ref"
    real.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    alias = Destination(tmp_path / "alias" / "ref")
    assert alias == Destination(real)
    assert alias.record_path == Destination(real).record_path
    assert alias.lock_path == Destination(real).lock_path


def test_an_unchanged_file_is_verified_by_its_record_and_a_touched_one_is_hashed(tmp_path: Path) -> None:
    dest = tmp_path / "ref"
    dest.mkdir()
    f = dest / "R000001.jpg"
    f.write_bytes(b"b")  # the record claims md5(a): only a file read would show it is b
    st = f.stat()
    with RecordWriter(Destination(dest).record_path) as w:
        w.add("R000001.jpg", st.st_size, st.st_mtime_ns, MD5_A)
    manifest = Manifest.from_rows(
        "reference", "b", "all/reference_images/", [("R000001", "R000001.jpg", MD5_A, 1)]
    )
    assert compare(manifest, dest).status[0] == VERIFIED  # trusted: size and mtime match the record
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    local = compare(manifest, dest)
    assert local.status[0] != VERIFIED
    assert local.hashed == 1
    assert "md5 is " + MD5_B in local.reason(0)


def test_later_lines_win_and_torn_or_bad_lines_are_skipped(tmp_path: Path) -> None:
    path = Destination(tmp_path / "ref").record_path
    path.parent.mkdir(parents=True)
    path.write_bytes(
        records.HEADER
        + f"R000001.jpg\t1\t100\t{MD5_A}\n".encode()
        + f"R000002.jpg\t1\t100\t{MD5_A}\n".encode()
        + f"R000001.jpg\t1\t200\t{MD5_B}\n".encode()
        + b"R000003.jpg\tx\t100\tnot-an-md5\n"
        + f"R000004.jpg\t1\t100\t{MD5_A[:10]}".encode()  # torn by a kill -9
    )
    assert _entries(path) == {"R000001.jpg": (1, 200, MD5_B), "R000002.jpg": (1, 100, MD5_A)}
    assert compact(path, drop=["R000002.jpg"]) == 1
    assert path.read_bytes() == records.HEADER + f"R000001.jpg\t1\t200\t{MD5_B}\n".encode()


def test_compaction_never_runs_under_an_appender_so_no_line_is_lost(tmp_path: Path) -> None:
    path = Destination(tmp_path / "ref").record_path
    with RecordWriter(path) as w:
        w.add("R000001.jpg", 1, 1, MD5_A)
        w.add("R000001.jpg", 1, 2, MD5_A)  # a duplicate a compaction would fold
        assert compact(path) is None  # the writer holds its shared lock: nothing rewritten
        w.add("R000002.jpg", 1, 1, MD5_B)
    assert _entries(path) == {"R000001.jpg": (1, 2, MD5_A), "R000002.jpg": (1, 1, MD5_B)}
    assert compact(path) == 2


def test_a_writer_that_opened_the_record_before_a_compaction_appends_to_the_new_file(tmp_path: Path) -> None:
    path = Destination(tmp_path / "ref").record_path
    with RecordWriter(path) as w:
        w.add("R000001.jpg", 1, 1, MD5_A)
        w.add("R000001.jpg", 1, 1, MD5_A)
    assert compact(path) == 1  # the file was replaced
    late = RecordWriter(path)
    late.add("R000002.jpg", 1, 1, MD5_B)
    late.close()
    assert set(_entries(path)) == {"R000001.jpg", "R000002.jpg"}


def test_missing_or_foreign_record_is_empty(tmp_path: Path) -> None:
    assert _entries(tmp_path / "nothing") == {}
    path = Destination(tmp_path / "ref").record_path
    path.parent.mkdir()
    path.write_text("hello\n")
    assert _entries(path) == {}


def test_an_unwritable_record_is_best_effort_when_asked_and_an_error_otherwise(tmp_path: Path) -> None:
    import pytest

    from isc_kit.errors import DestinationError

    path = tmp_path / ".isc-kit" / "ref.verified"
    path.mkdir(parents=True)  # cannot be opened for appending, even as root
    w = RecordWriter(path, best_effort=True)
    w.add("R000001.jpg", 1, 1, MD5_A)  # one warning, no error
    w.close()
    with pytest.raises(DestinationError, match="cannot write the verified record"):
        RecordWriter(path).add("R000001.jpg", 1, 1, MD5_A)
