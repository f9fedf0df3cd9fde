"""isc_kit.placement: verified bytes reach their final name whole, or not at all."""

from __future__ import annotations

import hashlib
import os

import pytest

from isc_kit.errors import ChecksumMismatchError
from isc_kit.placement import SizeMismatchError, place_bytes, place_folder, placing

DATA = b"verified bytes\n" * 100
MD5 = hashlib.md5(DATA).hexdigest()


def _names(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_wrong_md5_leaves_the_target_untouched_and_no_temp(tmp_path):
    target = tmp_path / "a.jpg"
    target.write_bytes(b"old")
    with pytest.raises(ChecksumMismatchError):
        place_bytes(target, DATA, expect_md5="0" * 32)
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["a.jpg"]


def test_wrong_precomputed_digest_is_refused_without_hashing(tmp_path):
    target = tmp_path / "a.jpg"
    with pytest.raises(ChecksumMismatchError), placing(target, expect_md5=MD5, md5="f" * 32) as p:
        p.write(DATA)
    assert _names(tmp_path) == []


def test_wrong_size_is_refused(tmp_path):
    with pytest.raises(SizeMismatchError):
        place_bytes(tmp_path / "a.jpg", DATA, expect_size=len(DATA) + 1, expect_md5=MD5)
    assert _names(tmp_path) == []


def test_an_exception_mid_write_leaves_no_temp(tmp_path):
    target = tmp_path / "a.jpg"
    temps = []

    def broken_stream() -> None:
        with placing(target, expect_md5=MD5) as p:
            p.write(DATA[:10])
            temps.append(p.tmp)
            raise RuntimeError("connection reset")

    with pytest.raises(RuntimeError, match="connection reset"):
        broken_stream()
    assert os.path.dirname(temps[0]) == str(tmp_path)
    assert os.path.basename(temps[0]).startswith(".a.jpg.")
    assert _names(tmp_path) == []


def test_success_places_and_calls_the_record(tmp_path):
    target = tmp_path / "a.jpg"
    seen = []
    st = place_bytes(
        target,
        DATA,
        expect_size=len(DATA),
        expect_md5=MD5,
        fsync="full",
        record=lambda path, st, md5: seen.append((path, st.st_size, st.st_mtime_ns, md5)),
    )
    assert target.read_bytes() == DATA
    assert seen == [(str(target), len(DATA), st.st_mtime_ns, MD5)]
    assert os.stat(target).st_mtime_ns == st.st_mtime_ns
    assert _names(tmp_path) == ["a.jpg"]


def test_a_file_made_by_another_tool_is_hashed_before_the_rename(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(DATA)
    (tmp_path / "out").mkdir()
    seen = []
    with placing(
        tmp_path / "out" / "b.jpg", expect_md5=MD5, mode=0o600, record=lambda *a: seen.append(a[2])
    ) as p:
        os.link(src, p.tmp)
    assert seen == [MD5]
    assert (tmp_path / "out" / "b.jpg").read_bytes() == DATA
    with pytest.raises(ChecksumMismatchError), placing(tmp_path / "out" / "c.jpg", expect_md5="0" * 32) as p:
        os.link(src, p.tmp)
    assert _names(tmp_path / "out") == ["b.jpg"]


def test_an_unknown_fsync_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fsync policy"):
        place_bytes(tmp_path / "a", DATA, fsync="always")  # type: ignore[arg-type]
    assert _names(tmp_path) == []


def test_place_folder_keeps_the_first_finished_tree(tmp_path):
    first, second, final = tmp_path / "t1", tmp_path / "t2", tmp_path / "final"
    for d in (first, second):
        d.mkdir()
        (d / "x").write_text(d.name)
    assert place_folder(first, final) is True
    assert place_folder(second, final) is False
    assert (final / "x").read_text() == "t1"
