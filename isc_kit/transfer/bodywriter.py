"""Finishing downloaded bodies off the event loop, many per hand-off.

A body received in memory is handed to :class:`BodyWriter`; a worker thread takes everything
that queued up while it was busy, hashes the whole batch at once (multi-buffer MD5 when
available, see :mod:`isc_kit.md5batch`), puts every body whose MD5 is right in place with one
:func:`isc_kit.placement.place_many` (temp file beside the final name, ``os.replace``) and appends
their verified record lines (one ``write`` per batch). A body whose MD5 is wrong never touches the
disk. The hash and the placement each release the GIL once per batch, so this runs beside the
event loop on another core, and the event loop pays one wake-up per batch instead of one per object.
A second thread takes a batch of its own only while the first is busy and 4 MB of bodies wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from ..placement import place_many
from ..records import RecordWriter

#: Writer threads of a fetch: two, so writing and hashing large bodies spreads over two cores
#: (10,000 x 177 KB at 20 ms per request: 1.99 s with two and 256 requests in flight, 2.22 s with one;
#: bench/RESULTS.md); a second batch starts only once this many bytes wait.
WRITER_THREADS = 2
SECOND_WRITER_BYTES = 4 << 20


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
    """Hash, write, verify and place bodies in batches on up to ``threads`` worker threads."""

    def __init__(
        self,
        records: RecordWriter,
        *,
        hasher: Callable[[Sequence[Any]], list[str]] | None = None,
        threads: int = WRITER_THREADS,
    ):
        self._records = records
        self._hash = hasher or default_hasher()
        self._pending: list[_Job] = []
        self._pending_bytes = 0
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
        self._pending_bytes += len(body)
        self._maybe_kick(loop)
        return future

    def _maybe_kick(self, loop: asyncio.AbstractEventLoop) -> None:
        """An idle writer takes what is pending; a further one joins only when bytes pile up (large
        bodies: their writes are the cost), not for many tiny ones (where more threads only contend)."""
        if self._pending and (
            self._inflight == 0
            or (self._inflight < self._threads and self._pending_bytes >= SECOND_WRITER_BYTES)
        ):
            self._kick(loop)

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._pending_bytes = 0
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
        self._maybe_kick(loop)

    def _process(self, batch: list[_Job]) -> list[Finished]:
        """In the worker thread: hash all, then write and place those whose MD5 is right (one call)."""
        digests = self._hash([job.body for job in batch])
        good = [
            i
            for i, (job, actual) in enumerate(zip(batch, digests, strict=True))
            if job.want_md5 is None or actual == job.want_md5
        ]
        placed = place_many([(batch[i].tmp, batch[i].final, batch[i].body) for i in good])
        results = [Finished(actual, False) for actual in digests]
        rows: list[tuple[str, int, int, str]] = []
        for i, outcome in zip(good, placed, strict=True):
            if isinstance(outcome, OSError):
                results[i] = Finished(digests[i], False, outcome)
            else:
                rows.append((batch[i].relpath, outcome.size, outcome.mtime_ns, digests[i]))
                results[i] = Finished(digests[i], True)
        if rows:
            try:
                self._records.add_many(rows)
            except OSError as err:  # in place but unrecorded: a later run hashes them again
                results = [r._replace(error=err) if r.placed else r for r in results]
        return results
