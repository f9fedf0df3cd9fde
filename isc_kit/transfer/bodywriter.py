"""Finishing downloaded bodies off the event loop, many per hand-off.

A body received in memory is handed to :class:`BodyWriter`; one worker thread takes everything
that queued up while it was busy, hashes the whole batch at once (multi-buffer MD5 when
available, see :mod:`isc_kit.md5batch`), and for each body whose MD5 is right writes a temp file
beside the final name, moves it into place with ``os.replace`` and appends its verified record
line (one ``write`` per batch). A body whose MD5 is wrong never touches the disk. Hashing and
``os.write`` release the GIL, so this runs beside the event loop on another core, and the event
loop pays one wake-up per batch instead of one per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from ..placement import replace_verified
from ..records import RecordWriter

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class Finished(NamedTuple):
    """Outcome for one body: its MD5, whether it is in place, and the error if writing failed."""

    md5: str
    placed: bool
    error: OSError | None = None


class _Job(NamedTuple):
    relpath: str
    body: Any  # bytes-like
    tmp: str
    final: str
    want_md5: str | None
    future: asyncio.Future[Finished]


def _hashlib_many(buffers: Sequence[Any]) -> list[str]:
    return [hashlib.md5(b).hexdigest() for b in buffers]


def default_hasher() -> Callable[[Sequence[Any]], list[str]]:
    """The multi-buffer MD5 when it is built and passed its self-test, else hashlib."""
    try:
        from ..md5batch import md5_hex_many
    except ImportError:
        return _hashlib_many
    return md5_hex_many  # type: ignore[no-any-return]


def write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class BodyWriter:
    """Hash, write, verify and place bodies in batches on one worker thread."""

    def __init__(
        self,
        records: RecordWriter,
        *,
        hasher: Callable[[Sequence[Any]], list[str]] | None = None,
        threads: int = 1,
    ):
        self._records = records
        self._hash = hasher or default_hasher()
        self._pending: list[_Job] = []
        self._threads = max(1, threads)
        self._inflight = 0
        self._pool = ThreadPoolExecutor(self._threads, "isc-kit-write")
        self.batches = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> BodyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(
        self, relpath: str, body: Any, tmp: str, final: str, want_md5: str | None
    ) -> asyncio.Future[Finished]:
        """Queue one body; the future resolves once it is in place (or known bad, or failed to write)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Finished] = loop.create_future()
        self._pending.append(_Job(relpath, body, tmp, final, want_md5, future))
        if self._inflight < self._threads:
            self._kick(loop)
        return future

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._inflight += 1
        done = loop.run_in_executor(self._pool, self._process, batch)
        done.add_done_callback(lambda f: self._settle(loop, batch, f))

    def _settle(self, loop: asyncio.AbstractEventLoop, batch: list[_Job], done: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        error = done.exception()
        results = done.result() if error is None else [error] * len(batch)
        for job, result in zip(batch, results, strict=True):
            if job.future.done():  # its worker was cancelled
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        self.batches += 1
        if self._pending:
            self._kick(loop)

    def _process(self, batch: list[_Job]) -> list[Finished]:
        """In the worker thread: hash all, then write and place those whose MD5 is right."""
        digests = self._hash([job.body for job in batch])
        results: list[Finished] = []
        rows: list[tuple[str, int, int, str]] = []
        for job, actual in zip(batch, digests, strict=True):
            if job.want_md5 is not None and actual != job.want_md5:
                results.append(Finished(actual, False))
                continue
            try:
                st = _place(job)
            except OSError as err:
                results.append(Finished(actual, False, err))
                continue
            rows.append((job.relpath, st.st_size, st.st_mtime_ns, actual))
            results.append(Finished(actual, True))
        if rows:
            try:
                self._records.add_many(rows)
            except OSError as err:  # in place but unrecorded: a later run hashes them again
                results = [r._replace(error=err) if r.placed else r for r in results]
        return results


def _place(job: _Job) -> os.stat_result:
    fd = os.open(job.tmp, _OPEN_FLAGS, 0o644)
    try:
        try:
            write_all(fd, job.body)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        replace_verified(job.tmp, job.final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(job.tmp)
        raise
    return st
