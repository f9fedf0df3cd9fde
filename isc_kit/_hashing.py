"""MD5 of local files, in parallel worker processes (hashing is CPU-bound; threads would share one core).

Each worker reads a batch of files whole and hashes them together with the multi-buffer MD5
(:mod:`isc_kit.md5batch`; hashlib when it is not built); files of 8 MB or more are streamed.
This module imports only the standard library at the top so worker processes start fast.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import NamedTuple

_BATCH_FILES = 64
_BATCH_BYTES = 16 << 20
#: Below this many bytes in total, hashing in this process beats starting workers.
_INLINE_BYTES = 32 << 20


class Hashed(NamedTuple):
    """Result for one file: md5 (None when unreadable), the stat it was hashed at, or the error."""

    row: int
    md5: str | None
    size: int
    mtime_ns: int
    error: str = ""


_READ = 8 << 20  # files up to this size are read with one read() call


def md5_file(path: str) -> tuple[str, int, int]:
    """(md5 hex, size, mtime_ns) of a regular file, never following a symlink."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        digest = hashlib.md5()
        # one read for a whole image (+1 byte to see EOF at once); hashlib releases the GIL
        while data := os.read(fd, min(st.st_size + 1, _READ) if st.st_size < _READ else _READ):
            digest.update(data)
    finally:
        os.close(fd)
    return digest.hexdigest(), st.st_size, st.st_mtime_ns


_BUFFER = threading.local()  # one reusable read buffer per thread (and per worker process)


def _buffer(nbytes: int) -> memoryview:
    buf = getattr(_BUFFER, "buf", None)
    if buf is None or len(buf) < nbytes:
        buf = _BUFFER.buf = bytearray(max(nbytes, _BATCH_BYTES + _READ))
    return memoryview(buf)


def _read_into(path: str, view: memoryview) -> tuple[int, os.stat_result]:
    """Read a regular file (never following a symlink) into ``view``; (bytes read, its stat)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if st.st_size > len(view):
            raise _TooBig
        got = 0
        while got < st.st_size and (n := os.readv(fd, [view[got : st.st_size]])):
            got += n
    finally:
        os.close(fd)
    return got, st


class _TooBig(Exception):
    pass


def _hash_batch(batch: list[tuple[int, str]]) -> list[Hashed]:
    """Hash a batch: files read into one reusable buffer and hashed together (multi-buffer MD5).

    Files of 8 MB or more, and any that do not fit what is left of the buffer, are streamed.
    """
    from .md5batch import md5_hex_many

    out: list[Hashed] = []
    view = _buffer(_BATCH_BYTES + _READ)
    used = 0
    held: list[tuple[int, memoryview, os.stat_result]] = []
    for index, path in batch:
        try:
            try:
                got, st = _read_into(path, view[used:])
            except _TooBig:
                md5, size, mtime = md5_file(path)
                out.append(Hashed(index, md5, size, mtime))
                continue
            held.append((index, view[used : used + got], st))
            used += got
        except OSError as err:
            out.append(Hashed(index, None, -1, -1, f"{type(err).__name__}: {err.strerror or err}"))
    digests = md5_hex_many([data for _, data, _ in held])
    for (index, data, st), md5 in zip(held, digests, strict=True):
        out.append(Hashed(index, md5, len(data), st.st_mtime_ns))
    return out


def _start_method() -> str | None:
    """``fork`` when this process has a single thread (cheapest, and safe then); ``forkserver`` otherwise."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else None


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _batches(items: Iterable[tuple[int, str, int]]) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    size = 0
    for index, path, nbytes in items:
        batch.append((index, path))
        size += max(nbytes, 0)
        if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_files(
    items: Iterable[tuple[int, str, int]],
    *,
    jobs: int | None = None,
    total_bytes: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Hashed]:
    """Hash ``(index, path, expected_size)`` items; yields :class:`Hashed` in completion order.

    ``jobs`` worker processes (default: the usable cores); at most a few batches per worker are
    in flight, so memory stays flat for any number of files. Small jobs are hashed in-process.
    """
    jobs = jobs or default_jobs()
    if jobs <= 1 or (total_bytes is not None and total_bytes <= _INLINE_BYTES):
        for batch in _batches(items):
            for h in _hash_batch(batch):
                if on_bytes is not None:
                    on_bytes(max(h.size, 0))
                yield h
        return
    ctx = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        pending: set[Future[list[Hashed]]] = set()
        batches = _batches(items)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < 3 * jobs:
                try:
                    batch = next(batches)
                except StopIteration:
                    exhausted = True
                    break
                pending.add(pool.submit(_hash_batch, batch))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                for h in fut.result():
                    if on_bytes is not None:
                        on_bytes(max(h.size, 0))
                    yield h
