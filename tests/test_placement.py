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


# place_many: the fetch's batch placement, in C (isc_kit._placex) or its Python twin


@pytest.fixture(params=["c", "python"])
def place_many(request, monkeypatch):
    from isc_kit import placement

    if request.param == "python":
        monkeypatch.setattr(placement, "_placex", None)
    elif placement._placex is None:
        if os.environ.get("CI"):
            pytest.fail("isc_kit._placex is not built: the fetch would lose its fast placement")
        pytest.skip("isc_kit._placex is not built here")
    return placement.place_many


def test_place_many_places_every_buffer_and_reports_its_stat(tmp_path, place_many):
    bodies = [b"", b"abc", bytearray(DATA), memoryview(DATA)[5:900]]
    jobs = [(str(tmp_path / f".f{i}.isc-part-1-t"), str(tmp_path / f"f{i}"), b) for i, b in enumerate(bodies)]
    results = place_many(jobs)
    assert _names(tmp_path) == ["f0", "f1", "f2", "f3"]  # no temp left
    for (_tmp, final, body), placed in zip(jobs, results, strict=True):
        st = os.stat(final)
        assert (placed.size, placed.mtime_ns) == (st.st_size, st.st_mtime_ns)
        with open(final, "rb") as fh:
            assert fh.read() == bytes(body)


def test_place_many_failures_leave_no_temp_and_do_not_stop_the_others(tmp_path, place_many):
    (tmp_path / "taken").mkdir()  # a folder in the way of a final name: the rename fails
    (tmp_path / ".busy.isc-part-1-t").write_bytes(b"another writer's")  # its temp exists: O_EXCL
    (tmp_path / "old").write_bytes(b"old bytes")
    jobs = [
        (str(tmp_path / "gone" / ".a.isc-part-1-t"), str(tmp_path / "gone" / "a"), b"x"),
        (str(tmp_path / ".taken.isc-part-1-t"), str(tmp_path / "taken"), b"y"),
        (str(tmp_path / ".busy.isc-part-1-t"), str(tmp_path / "busy"), b"z"),
        (str(tmp_path / ".old.isc-part-1-t"), str(tmp_path / "old"), b"new bytes"),
    ]
    missing, in_the_way, exists, replaced = place_many(jobs)
    assert isinstance(missing, FileNotFoundError)
    assert missing.filename == jobs[0][0]
    assert isinstance(in_the_way, IsADirectoryError)
    assert in_the_way.filename2 == jobs[1][1]
    assert isinstance(exists, FileExistsError)
    assert replaced.size == len(b"new bytes")
    assert _names(tmp_path) == [".busy.isc-part-1-t", "old", "taken"]
    assert (tmp_path / ".busy.isc-part-1-t").read_bytes() == b"another writer's"  # not ours: kept
    assert (tmp_path / "old").read_bytes() == b"new bytes"
    assert os.listdir(tmp_path / "taken") == []


def test_place_many_refuses_a_malformed_job(tmp_path, place_many):
    with pytest.raises((TypeError, ValueError)):
        place_many([(str(tmp_path / ".a"), str(tmp_path / "a"))])
    assert _names(tmp_path) == []


def test_the_uninitialised_receive_buffer_is_a_bytearray_of_the_length():
    from isc_kit.transfer import engine

    for n in (0, 1, 177_000):
        buf = engine._new_buffer(n)
        assert type(buf) is bytearray
        assert len(buf) == n
