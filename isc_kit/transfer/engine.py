"""The transfer engine: a fixed pool of coroutines pulling entries from one iterator.

A body up to :data:`BUFFER_LIMIT` is received into memory and handed to the
:class:`~isc_kit.transfer.bodywriter.BodyWriter`, which hashes it (in batches) and writes and
renames it only when its MD5 is right; a larger body streams into a temp file beside its final
name while its MD5 is computed, and is moved into place with ``os.replace`` only when size and
MD5 agree with the manifest. Failures
are retried with capped, jittered exponential backoff when a retry can help, and may move to
another mirror; a failed object never stops the others. Memory is bounded by ``jobs`` (never
one task per object).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ChecksumMismatchError
from ..local import Destination, temp_name
from ..manifest import Item
from ..placement import replace_verified
from ..records import RecordWriter
from ..source import Source
from .bodywriter import BodyWriter, write_all
from .getters import GetError, Getter

logger = logging.getLogger(__name__)

try:  # a receive buffer is written whole before it is read: skip bytearray's zero-fill (~4 % of a fetch's CPU)
    from .._placex import alloc as _new_buffer
except ImportError:
    _new_buffer = bytearray

#: Bodies up to this size are collected in memory, then hashed and written in a worker thread;
#: larger ones are streamed to their temp file as they arrive. Memory stays below 2 x jobs x this.
BUFFER_LIMIT = 1 << 20
_SWITCH_AFTER = 3  # consecutive retryable failures on one mirror before trying the next


@dataclass
class Tally:
    transferred: int = 0
    bytes: int = 0
    unverified: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Engine:
    dest: Destination
    sources: list[Source]  # primary first, then mirrors
    getter: Getter
    records: RecordWriter
    writer: BodyWriter  # hashes, writes and places in-memory bodies in batches
    retries: int = 5
    backoff: tuple[float, float] = (0.2, 8.0)  # base, cap (seconds)
    on_bytes: Callable[[int], None] | None = None
    on_file: Callable[[bool], None] | None = None
    tally: Tally = field(default_factory=Tally)
    abort_after: int = 32  # objects failing to connect in a row, with no success yet, stop the run
    _down_streak: int = 0
    _any_ok: bool = False
    _abort: str = ""
    _requests: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    async def run(self, items: Iterator[Item], jobs: int) -> Tally:
        """At most ``jobs`` requests in flight, twice as many workers: while some wait for their bodies
        to be written, the others keep every connection busy (measured ~7 % faster at 20 ms per
        request). Memory stays below 2 x jobs x BUFFER_LIMIT."""
        jobs = max(1, jobs)
        self._requests = asyncio.Semaphore(jobs)
        async with self.getter:
            workers = [asyncio.create_task(self._worker(items)) for _ in range(2 * jobs)]
            try:
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
        return self.tally

    async def _worker(self, items: Iterator[Item]) -> None:
        for item in items:  # a shared iterator: each entry is taken by exactly one worker
            if self._abort:
                self.tally.failed.append((item[0], f"not attempted: {self._abort}"))
                ok = False
            else:
                ok = await self._one(item)
            if self.on_file is not None:
                self.on_file(ok)

    async def _one(self, item: Item) -> bool:
        relpath, key, md5, size = item
        try:
            full = self.dest.path(relpath)
            folder = self.dest.parent(full)
        except (OSError, ValueError) as err:
            self.tally.failed.append((relpath, str(err)))
            return False
        src_index = 0
        streak = 0
        mismatches = 0
        reason = ""
        unreachable = False
        for attempt in range(self.retries + 1):
            source = self.sources[src_index]
            try:
                nbytes = await self._attempt(source, key, relpath, full, folder, md5, size)
            except GetError as err:
                reason = err.reason
                unreachable = err.retryable and not err.status
                if not err.retryable:
                    break
                streak += 1
                if streak >= _SWITCH_AFTER and src_index + 1 < len(self.sources):
                    src_index, streak = src_index + 1, 0
                    logger.debug(
                        "%s: switching to the %s mirror after: %s",
                        relpath,
                        self.sources[src_index].region,
                        reason,
                    )
            except _Mismatch as err:
                reason, unreachable = err.reason, False
                mismatches += 1
                if mismatches >= 2:
                    if src_index + 1 >= len(self.sources):
                        break
                    src_index, mismatches, streak = src_index + 1, 0, 0
                    logger.debug(
                        "%s: trying the %s mirror after: %s", relpath, self.sources[src_index].region, reason
                    )
                    continue
            except OSError as err:  # local disk trouble: retrying will not help
                reason = local_write_error(full, err)
                break
            else:
                self._any_ok, self._down_streak = True, 0
                self.tally.transferred += 1
                self.tally.bytes += nbytes
                if md5 is None:
                    self.tally.unverified += 1
                return True
            if attempt < self.retries:
                base, cap = self.backoff
                await asyncio.sleep(random.uniform(0, min(cap, base * 2**attempt)))
        logger.debug("%s failed: %s", relpath, reason)
        self.tally.failed.append((relpath, reason))
        self._down_streak = self._down_streak + 1 if unreachable else 0
        if not self._any_ok and self._down_streak >= self.abort_after and not self._abort:
            self._abort = f"the source is unreachable ({reason})"
            logger.warning(
                "stopping: %d objects in a row could not be reached and none could", self._down_streak
            )
        return False

    async def _attempt(
        self,
        source: Source,
        key: str,
        relpath: str,
        full: str,
        folder: str,
        md5: str | None,
        size: int | None,
    ) -> int:
        sink = _Sink(os.path.join(folder, temp_name(os.path.basename(full))))
        moved = False
        try:
            async with self._requests:
                n, length = await self.getter.get(source, key, sink)
            if length is not None and n != length:
                raise GetError(f"{source.url(key)}: body truncated at {n} of {length} bytes", retryable=True)
            if size is not None and n != size:
                raise _Mismatch(
                    f"{relpath}: size is {n} bytes, manifest says {size}; the download was discarded. "
                    "Retry, or check the manifest's source."
                )
            if not sink.streaming:
                done = await self.writer.submit(relpath, sink.take_body(), sink.tmp, full, md5)
                if done.error is not None:
                    raise done.error
                if not done.placed:
                    raise _Mismatch(str(ChecksumMismatchError(relpath, md5 or "", done.md5)))
                moved = True
                if self.on_bytes is not None:
                    self.on_bytes(n)
                return n
            actual, st = sink.finish()  # a streamed body, already on disk: close and check it here
            if md5 is not None and actual != md5:
                raise _Mismatch(str(ChecksumMismatchError(relpath, md5, actual)))
            replace_verified(sink.tmp, full)
            moved = True
            self.records.add(relpath, st.st_size, st.st_mtime_ns, actual)
            if self.on_bytes is not None:
                self.on_bytes(n)
            return n
        finally:
            if not moved:
                sink.discard()


def local_write_error(full: str, err: OSError) -> str:
    """One line on why a file could not be written locally, and what to do."""
    import errno

    what = err.strerror or str(err)
    if err.errno == errno.EISDIR:
        return f"{full}: a folder is in the way of the file ({what}); move or remove it, then rerun"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{full}: cannot write: {what}; free space on that disk (`df`), then rerun"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{full}: cannot write: {what}; check the folder's permissions and that it is not mounted read-only"
    return f"{full}: cannot write: {what}; check free space and permissions"


class _Sink:
    """Collects a body in memory (small objects) or streams it to the temp file (large ones), with its MD5.

    A client that knows the length up front asks :meth:`buffer` for one buffer to receive into;
    otherwise chunks arrive through :meth:`write`.
    """

    def __init__(self, tmp: str):
        self.tmp = tmp
        self.chunks: list[bytes] = []
        self.body: bytearray | None = None
        self.n = 0
        self.fd: int | None = None
        self.digest: Any = None

    @property
    def streaming(self) -> bool:
        return self.fd is not None

    def buffer(self, length: int) -> bytearray | None:
        """A buffer of ``length`` bytes to receive the whole body into, if it is small enough to hold."""
        if length > BUFFER_LIMIT or self.chunks or self.fd is not None:
            return None
        self.body = _new_buffer(length)
        self.n = length
        return self.body

    def take_body(self) -> Any:
        """The whole body held in memory (and forget it here)."""
        if self.body is not None:
            held, self.body = self.body, None
            return held
        joined = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        return joined

    def write(self, chunk: bytes) -> None:
        self.n += len(chunk)
        if self.fd is not None:
            self.digest.update(chunk)
            write_all(self.fd, chunk)
            return
        self.chunks.append(chunk)
        if self.n > BUFFER_LIMIT:
            self._open()

    def _open(self) -> None:
        self.fd = os.open(
            self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
        self.digest = hashlib.md5()
        if self.body is not None:
            self.chunks, self.body = [bytes(self.body)], None
        for c in self.chunks:
            self.digest.update(c)
            write_all(self.fd, c)
        self.chunks = []

    def finish(self) -> tuple[str, os.stat_result]:
        """Write what is buffered, close; (md5 hex, stat of the temp file)."""
        if self.fd is None:
            self._open()
        fd, self.fd = self.fd, None
        try:
            st = os.fstat(fd)  # type: ignore[arg-type]
        finally:
            os.close(fd)  # type: ignore[arg-type]
        return self.digest.hexdigest(), st

    def discard(self) -> None:
        self.chunks = []
        self.body = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


class _Mismatch(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def run_sync(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, also inside a notebook's running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    t = threading.Thread(target=target, name="isc-kit-fetch")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def monotonic() -> float:
    return time.perf_counter()
