"""The verified record: where it lives, what it trusts, and how it survives torn writes."""

from __future__ import annotations

import os
from pathlib import Path

from isc_kit import records
from isc_kit.records import RecordWriter, compact, load_verified, record_path, verified_md5

MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5(b"a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5(b"b")


def test_record_lives_beside_the_destination_not_in_it(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "ref"
    assert record_path(dest) == tmp_path / "data" / ".isc-kit" / "ref.verified"
    assert record_path(str(dest) + "/") == record_path(dest)


def test_roundtrip_and_unchanged_check(tmp_path: Path) -> None:
    dest = tmp_path / "ref"
    dest.mkdir()
    f = dest / "R000001.jpg"
    f.write_bytes(b"a")
    st = f.stat()
    with RecordWriter(dest) as w:
        w.add("R000001.jpg", st.st_size, st.st_mtime_ns, MD5_A)
    assert load_verified(dest) == {"R000001.jpg": records.VerifiedEntry(1, st.st_mtime_ns, MD5_A)}
    assert verified_md5(dest, "R000001.jpg", f.stat()) == MD5_A
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert verified_md5(dest, "R000001.jpg", f.stat()) is None
    assert verified_md5(dest, "R000002.jpg", f.stat()) is None


def test_later_lines_win_and_torn_or_bad_lines_are_skipped(tmp_path: Path) -> None:
    dest = tmp_path / "ref"
    path = record_path(dest)
    path.parent.mkdir(parents=True)
    path.write_text(
        records.HEADER
        + f"R000001.jpg\t1\t100\t{MD5_A}\n"
        + f"R000002.jpg\t1\t100\t{MD5_A}\n"
        + f"R000001.jpg\t1\t200\t{MD5_B}\n"
        + "R000003.jpg\tx\t100\tnot-an-md5\n"
        + f"R000004.jpg\t1\t100\t{MD5_A[:10]}"  # torn by a kill -9
    )
    got = load_verified(dest)
    assert got == {
        "R000001.jpg": records.VerifiedEntry(1, 200, MD5_B),
        "R000002.jpg": records.VerifiedEntry(1, 100, MD5_A),
    }
    assert compact(dest, drop=["R000002.jpg"]) == 1
    assert path.read_text() == records.HEADER + f"R000001.jpg\t1\t200\t{MD5_B}\n"


def test_missing_or_foreign_record_is_empty(tmp_path: Path) -> None:
    assert load_verified(tmp_path / "nothing") == {}
    path = record_path(tmp_path / "ref")
    path.parent.mkdir()
    path.write_text("hello\n")
    assert load_verified(tmp_path / "ref") == {}
