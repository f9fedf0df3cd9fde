"""BodyWriter: bodies hashed in batches on worker threads, placed only when their MD5 is right, recorded."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from isc_kit.local import Destination
from isc_kit.records import iter_entries
from isc_kit.transfer.bodywriter import BodyWriter, Finished, _hashlib_many

MD5_ABC = "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321 test suite
MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"
MD5_DIGITS = "57edf4a22be3c955ac49da2e2107b67a"  # "1234567890" * 8


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def paths(dest: Path, name: str) -> tuple[str, str]:
    """(temp, final) for ``name`` in ``dest``, the temp named the way fetch names it."""
    return str(dest / f".{name}.isc-part-1-test"), str(dest / name)


def records(dest: Path) -> dict[str, tuple[int, int, str]]:
    return {rel: (size, mtime, md5) for rel, size, mtime, md5 in iter_entries(Destination(dest).record_path)}


async def submit_all(
    writer: BodyWriter, dest: Path, jobs: list[tuple[str, Any, str | None]]
) -> list[Finished]:
    futures = [writer.submit(name, body, *paths(dest, name), md5) for name, body, md5 in jobs]
    return list(await asyncio.gather(*futures))


def test_good_bodies_are_placed_and_recorded(dest: Path) -> None:
    jobs = [
        ("R1.jpg", b"abc", MD5_ABC),
        ("R2.jpg", bytearray(), MD5_EMPTY),
        ("R3.jpg", b"1234567890" * 8, None),
    ]

    async def main() -> list[Finished]:
        with Destination(dest).record_writer() as rec, BodyWriter(rec) as writer:
            return await submit_all(writer, dest, jobs)

    results = asyncio.run(main())
    assert results == [Finished(MD5_ABC, True), Finished(MD5_EMPTY, True), Finished(MD5_DIGITS, True)]
    assert sorted(os.listdir(dest)) == ["R1.jpg", "R2.jpg", "R3.jpg"]  # no temp file left
    assert (dest / "R1.jpg").read_bytes() == b"abc"
    assert (dest / "R3.jpg").read_bytes() == b"1234567890" * 8
    recorded = records(dest)
    for name, md5 in (("R1.jpg", MD5_ABC), ("R2.jpg", MD5_EMPTY), ("R3.jpg", MD5_DIGITS)):
        st = (dest / name).stat()
        assert recorded[name] == (st.st_size, st.st_mtime_ns, md5)


def test_a_wrong_md5_never_touches_the_disk(dest: Path) -> None:
    async def main() -> list[Finished]:
        with Destination(dest).record_writer() as rec, BodyWriter(rec) as writer:
            return await submit_all(writer, dest, [("R1.jpg", b"abd", MD5_ABC), ("R2.jpg", b"abc", MD5_ABC)])

    bad, good = asyncio.run(main())
    assert bad == Finished(hashlib.md5(b"abd").hexdigest(), False)
    assert good == Finished(MD5_ABC, True)
    assert os.listdir(dest) == ["R2.jpg"]
    assert list(records(dest)) == ["R2.jpg"]


def test_a_temp_path_in_a_missing_folder_fails_cleanly(dest: Path) -> None:
    missing = dest / "gone"

    async def main() -> list[Finished]:
        with Destination(dest).record_writer() as rec, BodyWriter(rec) as writer:
            lost = writer.submit("gone/R1.jpg", b"abc", *paths(missing, "R1.jpg"), MD5_ABC)
            kept = writer.submit("R2.jpg", b"abc", *paths(dest, "R2.jpg"), MD5_ABC)
            return [await lost, await kept]

    lost, kept = asyncio.run(main())
    assert (lost.md5, lost.placed) == (MD5_ABC, False)
    assert isinstance(lost.error, FileNotFoundError)
    assert kept == Finished(MD5_ABC, True)
    assert not missing.exists()
    assert os.listdir(dest) == ["R2.jpg"]
    assert list(records(dest)) == ["R2.jpg"]


def bodies(n: int) -> list[tuple[str, bytes, str]]:
    out = []
    for i in range(n):
        body = bytes((i * 13 + j) % 256 for j in range(100 + 37 * i))
        out.append((f"R{i:06d}.jpg", body, hashlib.md5(body).hexdigest()))
    return out


def test_many_submits_share_batches(dest: Path) -> None:
    jobs = bodies(200)

    async def main() -> tuple[list[Finished], int]:
        with Destination(dest).record_writer() as rec, BodyWriter(rec) as writer:
            results = await submit_all(writer, dest, list(jobs))
            return results, writer.batches

    results, batches = asyncio.run(main())
    assert 1 <= batches < len(jobs)
    assert [r.md5 for r in results] == [md5 for _, _, md5 in jobs]
    assert all(r.placed and r.error is None for r in results)
    assert sorted(os.listdir(dest)) == [name for name, _, _ in jobs]
    assert len(records(dest)) == len(jobs)
    for name, body, _ in jobs[::37]:
        assert (dest / name).read_bytes() == body


def test_the_hashlib_hasher_gives_the_same_results(tmp_path: Path) -> None:
    jobs: list[tuple[str, Any, str | None]] = [
        *bodies(40),
        ("bad.jpg", b"abd", MD5_ABC),
        ("none.jpg", b"", None),
    ]
    calls: list[int] = []

    def counted(buffers: Sequence[Any]) -> list[str]:
        calls.append(len(buffers))
        return _hashlib_many(buffers)

    async def main(dest: Path, hasher: Any) -> list[Finished]:
        dest.mkdir()
        with Destination(dest).record_writer() as rec, BodyWriter(rec, hasher=hasher) as writer:
            return await submit_all(writer, dest, jobs)

    default = asyncio.run(main(tmp_path / "default", None))
    forced = asyncio.run(main(tmp_path / "forced", counted))
    assert forced == default
    assert sum(calls) == len(jobs)  # the forced hasher did all the hashing
    assert sorted(os.listdir(tmp_path / "forced")) == sorted(os.listdir(tmp_path / "default"))
    assert "bad.jpg" not in os.listdir(tmp_path / "forced")


def test_a_failing_hasher_fails_its_batch_and_the_writer_goes_on(dest: Path) -> None:
    calls: list[int] = []

    def flaky(buffers: Sequence[Any]) -> list[str]:
        calls.append(len(buffers))
        if len(calls) == 1:
            raise MemoryError("no room to hash")
        return _hashlib_many(buffers)

    async def main() -> Finished:
        with Destination(dest).record_writer() as rec, BodyWriter(rec, hasher=flaky) as writer:
            with pytest.raises(MemoryError):
                await writer.submit("R1.jpg", b"abc", *paths(dest, "R1.jpg"), MD5_ABC)
            return await writer.submit("R2.jpg", b"abc", *paths(dest, "R2.jpg"), MD5_ABC)

    assert asyncio.run(main()) == Finished(MD5_ABC, True)
    assert calls == [1, 1]
    assert os.listdir(dest) == ["R2.jpg"]


def test_the_writer_hashes_with_the_multi_buffer_md5_whenever_it_is_built() -> None:
    """A silent fall-back to hashlib (an import gone wrong) would cost a fetch most of its speed."""
    from isc_kit import md5batch
    from isc_kit.transfer.bodywriter import default_hasher

    if md5batch.backend() == "hashlib":
        pytest.skip("the C extension is not built here")
    assert default_hasher() is md5batch.md5_hex_many


def test_a_second_writer_joins_only_when_bytes_pile_up(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads place large bodies side by side; tiny ones stay on one (more would only contend)."""
    import threading

    from isc_kit.transfer import bodywriter

    concurrent: list[int] = []
    active = [0]
    lock = threading.Lock()
    release = threading.Event()
    real = bodywriter.BodyWriter._process

    def held(self: BodyWriter, batch: list[Any]) -> list[Finished]:
        with lock:
            active[0] += 1
            concurrent.append(active[0])
        release.wait(30)  # every batch waits until all bodies are submitted
        with lock:
            active[0] -= 1
        return real(self, batch)

    monkeypatch.setattr(bodywriter.BodyWriter, "_process", held)
    jobs = bodies(60)

    async def run(threshold: int) -> list[Finished]:
        monkeypatch.setattr(bodywriter, "SECOND_WRITER_BYTES", threshold)
        release.clear()
        with Destination(dest).record_writer() as rec, BodyWriter(rec, threads=2) as writer:
            out = [writer.submit(name, body, *paths(dest, name), md5) for name, body, md5 in jobs]
            release.set()
            return list(await asyncio.gather(*out))

    results = asyncio.run(run(1 << 40))  # never enough bytes waiting: one writer at a time
    assert max(concurrent) == 1
    assert len(concurrent) == 2
    assert all(r.placed for r in results)
    for name, _, _ in jobs:
        (dest / name).unlink()
    concurrent.clear()
    results = asyncio.run(run(1))  # a byte waiting is enough: the second writer joins at once
    assert max(concurrent) == 2
    assert all(r.placed for r in results)
    assert sorted(os.listdir(dest)) == [name for name, _, _ in jobs]
    for name, body, _ in jobs[::7]:
        assert (dest / name).read_bytes() == body
