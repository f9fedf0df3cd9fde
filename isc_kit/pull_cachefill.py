"""Filling DVC's local cache from a remote with the transfer engine, MD5-checked, resumable.

The engine runs with its root at the cache's ``files/md5`` folder, so an object lands at
``ab/cdef...`` only after its MD5 was checked, and each landing is appended to the engine's
verified record (``files/.isc-kit/md5.verified``, beside ``md5``: DVC never looks there). Fetched
objects are then made read-only, as DVC keeps its cache (DVC trusts a read-only cache file
without hashing it). After a ``kill -9`` an object may be in place but still writable: the
record (size and mtime unchanged) vouches for it, else it is hashed again, else refetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import records as _records
from ._dvcremote import DvcRemote
from .local import Destination, is_temp
from .manifest import Item
from .transfer.engine import Tally

if TYPE_CHECKING:
    from .outs import Out, PullResult

logger = logging.getLogger(__name__)

CACHE_MODE = 0o444
_ACTUAL = re.compile(r" is ([0-9a-f]{32}),")


class CacheFill:
    """Which objects the cache lacks, fetching them, and which could not be had."""

    def __init__(self, cache: str, jobs: int, retries: int, result: PullResult):
        self.cache = cache
        self.jobs = jobs
        self.retries = retries
        self.result = result
        self.missing: set[str] = set()  # md5s still absent after the fetch (failed or not on the remote)
        self._fetched_any = False
        self._done = threading.Event()
        self._done.set()  # no fetch running
        self._sweep_temps()

    # ------------------------------------------------------------------------------------ state of one object

    def path(self, oid: str) -> str:
        return f"{self.cache}{os.sep}{oid[:2]}{os.sep}{oid[2:]}"

    def present(self, oid: str, vouched: dict[str, Any] | None = None) -> bool:
        """Whether the cache holds the right bytes for ``oid`` (making a verified writable one read-only)."""
        path = self.path(oid)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if (st.st_mode & 0o777) == CACHE_MODE and not os.path.islink(path):
            return True
        rel = f"{oid[:2]}/{oid[2:]}"
        entry = (vouched if vouched is not None else self._vouched()).get(rel)
        want = oid.removesuffix(".dir")
        good = entry == (st.st_size, st.st_mtime_ns, want)
        if not good:
            good = _md5_file(path) == want
        if good:
            os.chmod(path, CACHE_MODE)
            return True
        logger.warning("%s: cached object does not match its name; fetching it again", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return False

    # ------------------------------------------------------------------------------------ listings

    def fetch_listings(self, remote: DvcRemote, outs: list[Out]) -> None:
        """Load each folder output's ``.dir`` bytes, fetching the ones the cache lacks."""
        lacking = sorted({o.oid for o in outs if o.is_dir and not self.present(o.oid)})
        if lacking:
            tally = self._run(remote, items_for(remote, lacking), len(lacking), 0, None)
            for oid in lacking:
                if self.path(oid) not in self._failed_paths(tally):
                    os.chmod(self.path(oid), CACHE_MODE)
        for out in outs:
            if not out.is_dir:
                continue
            try:
                with open(self.path(out.oid), "rb") as fh:
                    out.listing = fh.read()
            except FileNotFoundError:
                continue  # reported by _run

    # ------------------------------------------------------------------------------------ objects

    def plan_objects(self, outs: list[Out]) -> tuple[set[str], int]:
        """(md5s the cache lacks, files the outputs hold); counts the files whose object is cached."""
        vouched = self._vouched()
        lacking: set[str] = set()
        files = 0
        for out in outs:
            for _rel, md5 in out.entries():
                files += 1
                if md5 in lacking:
                    continue
                if self.present(md5, vouched):
                    self.result.cached += 1
                else:
                    lacking.add(md5)
        self.result.files += files
        return lacking, files

    def fetch_objects(
        self,
        remote: DvcRemote,
        outs: list[Out],
        make_progress: Any,
        alongside: Callable[[], None] | None = None,
    ) -> None:
        """Fetch every object of ``outs`` that the cache lacks; remember the ones that failed.

        ``alongside`` (placing the workspace) runs on another thread during the fetch: objects are
        requested in the outputs' order, and :meth:`wait` hands each one over as it lands.
        """
        lacking, files = self.plan_objects(outs)
        if not lacking:
            if alongside is not None:
                alongside()
            return
        count = len(lacking)
        total = sum(o.size for o in outs)
        estimate = int(total * count / files) if files else 0
        asked = bytearray()  # 16 bytes per object requested (a million: 16 MB)
        progress = make_progress(count) if make_progress is not None else None
        self._done.clear()
        with ThreadPoolExecutor(1, "isc-kit-place") as side:
            placing = side.submit(alongside) if alongside is not None else None
            try:
                tally = self._run(
                    remote, self._in_order(remote, outs, lacking, asked), count, estimate, progress
                )
            finally:
                self._done.set()
                if progress is not None:
                    progress.close()
            failed = self._failed_paths(tally)
            for start in range(0, len(asked), 16):
                md5 = asked[start : start + 16].hex()
                if self.path(md5) in failed:
                    self.missing.add(md5)
                else:
                    self._protect(self.path(md5))
            if placing is not None:
                placing.result()
        self.result.fetched += tally.transferred
        self.result.bytes += tally.bytes

    def _in_order(
        self, remote: DvcRemote, outs: list[Out], lacking: set[str], asked: bytearray
    ) -> Iterator[Item]:
        """Engine items for the lacking objects in the order the outputs list them (each once)."""
        for out in outs:
            for _rel, md5 in out.entries():
                if md5 in lacking:
                    lacking.discard(md5)
                    asked += bytes.fromhex(md5)
                    yield f"{md5[:2]}/{md5[2:]}", remote.key(md5), md5, None

    def wait(self, md5: str) -> bool:
        """Block until ``md5``'s object is in the cache (made read-only) or the fetch ended without it."""
        path = self.path(md5)
        while True:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if self._done.is_set() and not os.path.lexists(path):
                    return False
                self._done.wait(0.002)
                continue
            if st.st_mode & 0o777 != CACHE_MODE:
                self._protect(path)  # only the engine puts objects here during a fetch, once verified
            return True

    @staticmethod
    def _protect(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, CACHE_MODE)

    def from_source(self, pinned: str, remote: DvcRemote) -> set[str]:
        """Fetch the objects the remote lacked from the public bucket, by their md5 in a pinned manifest.

        Returns the md5s now in the cache; their failures are dropped from the result.
        """
        from .pinned import load_pinned
        from .transfer.run import pick_sources, run_engine

        manifest = load_pinned(pinned)
        wanted: dict[str, tuple[str, int | None]] = {}
        for row, md5 in enumerate(manifest.md5s):
            if md5 and md5 in self.missing:
                wanted[md5] = (manifest.relpaths[row], manifest.size(row))
        if not wanted:
            return set()
        logger.info("fetching %d objects the remote lacks from %s", len(wanted), manifest.bucket)
        items = (
            (f"{md5[:2]}/{md5[2:]}", manifest.prefix + rel, md5, size) for md5, (rel, size) in wanted.items()
        )
        sources = pick_sources(manifest.bucket, None, None, None)
        tally = run_engine(items, len(wanted), 0, Destination(self.cache), sources, self.jobs, self.retries)
        failed = self._failed_paths(tally)
        got = {m for m in wanted if self.path(m) not in failed}
        for md5 in got:
            self._protect(self.path(md5))
        self.missing -= got
        keys = {remote.key(m) for m in got}
        self.result.failed = [(o, why) for o, why in self.result.failed if o not in keys]
        for rel, why in tally.failed:
            self.result.failed.append(
                (f"{manifest.bucket}:{manifest.prefix}{wanted[rel.replace('/', '', 1)][0]}", why)
            )
        self.result.fetched += tally.transferred
        self.result.bytes += tally.bytes
        return got

    def _vouched(self) -> dict[str, tuple[int, int, str]]:
        """The engine's record of objects verified by an earlier (interrupted) run: relpath -> (size, mtime, md5)."""
        path = Destination(self.cache).record_path
        if not _records.has_lines(path):
            return {}
        return {rel: (s, m, h) for rel, s, m, h in _records.iter_entries(path)}

    def _run(self, remote: DvcRemote, items: Iterator[Item], count: int, total: int, progress: Any) -> Tally:
        self._fetched_any = True
        logger.info("fetching %d objects from %s", count, remote.describe())
        tally = run_transfer(items, count, total, self.cache, remote, self.jobs, self.retries, progress)
        for rel, why in tally.failed:
            oid = rel.replace("/", "", 1)
            self.result.failed.append((remote.key(oid), _reason(oid, why)))
        return tally

    def _failed_paths(self, tally: Tally) -> set[str]:
        return {os.path.join(self.cache, rel) for rel, _ in tally.failed}

    def finish(self) -> None:
        """Drop the engine's record once every object it lists is read-only (nothing left to vouch for)."""
        if self._fetched_any and not self.missing:
            record = Destination(self.cache).record_path
            record.unlink(missing_ok=True)
            with contextlib.suppress(
                OSError
            ):  # leave .dvc/cache/files as DVC made it when nothing else is there
                record.parent.rmdir()

    def _sweep_temps(self) -> None:
        """Remove partial downloads a killed run left in the cache (only when its record says one ran)."""
        if not Destination(self.cache).record_path.exists() or not os.path.isdir(self.cache):
            return
        temps = []
        for name in os.listdir(self.cache):
            folder = os.path.join(self.cache, name)
            if len(name) == 2 and os.path.isdir(folder):
                temps += [f"{name}/{f}" for f in os.listdir(folder) if is_temp(f)]
        Destination(self.cache).remove_temps(temps, locked=False)


def items_for(remote: DvcRemote, oids: Any) -> Iterator[Item]:
    """Engine items: cache relpath ``ab/cdef...``, remote key, expected md5 (size unknown: the md5 decides)."""
    for oid in oids:
        yield f"{oid[:2]}/{oid[2:]}", remote.key(oid), oid.removesuffix(".dir"), None


def run_transfer(
    items: Iterator[Item],
    count: int,
    total: int,
    root: str,
    remote: DvcRemote,
    jobs: int,
    retries: int,
    progress: Any,
) -> Tally:
    """The fetch engine over ``items`` into the cache folder ``root``, reading through the remote's getter."""
    from .transfer.run import run_engine

    return run_engine(
        items,
        count,
        total,
        Destination(root),
        [remote.source],
        jobs,
        retries,
        progress,
        getter=remote.getter(min(jobs, max(1, count))),
    )


def _reason(oid: str, why: str) -> str:
    """The engine's reason, worded for a content-addressed remote (the object's name is its md5)."""
    m = _ACTUAL.search(why)
    if m is None or "md5 of" not in why:
        return why
    return (
        f"md5 mismatch: the remote's bytes have md5 {m.group(1)}, but the object is named {oid.removesuffix('.dir')}; "
        "refused, nothing placed. The remote copy is damaged: `dvc push` it again from a clone that has it"
    )


def _md5_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()
