"""The one judge of what a destination folder holds of a manifest.

:func:`compare` decides, for every entry, whether the local file is missing, verified
(unchanged since its MD5 was checked, or hashed now), unverified (no md5 known) or corrupt.
Fetch plans, ``verify``, ``pin``, the pipeline's metrics and the widgets all ask it. It joins
three lists on relpath: the manifest's entries, the folder's scan and the verified record
(:mod:`isc_kit._join`: loops over one dict of the manifest's relpaths for small folders; numpy
for large ones, numbered relpaths found by their digits, with the folder listed in a thread meanwhile).

The folder itself (paths, scan, part files, pruning, the lock) is :mod:`isc_kit.destination`;
its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
import os
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._hashing import hash_files
from ._join import VECTOR_MIN, join
from .destination import (
    META_DIR,
    SCAN_RELEASES_GIL,
    TEMP_MARK,
    Destination,
    TreeScan,
    as_destination,
    is_temp,
    temp_name,
)
from .manifest import Manifest
from .progress import Progress, as_progress

__all__ = [
    "CORRUPT",
    "META_DIR",
    "MISSING",
    "STATUS_NAMES",
    "TEMP_MARK",
    "UNCHECKED",
    "UNVERIFIED",
    "VERIFIED",
    "Destination",
    "LocalStatus",
    "TreeScan",
    "as_destination",
    "compare",
    "is_temp",
    "temp_name",
]

logger = logging.getLogger(__name__)

#: Entry states: missing; verified (md5 checked, unchanged since); unverified (present, no md5 known);
#: corrupt (wrong size or md5); unchecked (present, not hashed: only when compare() is told not to hash).
MISSING, VERIFIED, UNVERIFIED, CORRUPT, UNCHECKED = 0, 1, 2, 3, 4
STATUS_NAMES = ("missing", "verified", "unverified", "corrupt", "unchecked")
OTHER_BYTES = "verified earlier as other bytes than the manifest names"

# ---------------------------------------------------------------------------------------------- compare


@dataclass
class LocalStatus:
    """What a destination holds of a manifest: one status byte per entry, and what else is there."""

    manifest: Manifest
    dest: Destination
    status: bytearray
    local_sizes: array  # per entry, -1 when missing
    local_mtimes: array
    extra: list[str] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # row -> why it is corrupt
    actual_md5: dict[int, str] = field(default_factory=dict)  # row -> md5 of a corrupt file hashed now
    hashed: int = 0
    hashed_bytes: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {name: self.status.count(i) for i, name in enumerate(STATUS_NAMES)}

    def rows(self, *states: int) -> list[int]:
        """Entries in any of ``states``, ascending."""
        want = bytes(states)
        return [i for i, s in enumerate(self.status) if s in want]

    def reason(self, row: int) -> str:
        return self.reasons.get(row, "")


def compare(
    manifest: Manifest,
    dest: Destination | str | os.PathLike[str],
    *,
    rehash: bool = False,
    jobs: int | None = None,
    progress: Any = None,
    scan: TreeScan | None = None,
    hash_unknown: bool = True,
    record: bool = True,
) -> LocalStatus:
    """Classify every entry against the folder; hash only what the verified record cannot vouch for.

    A file counts as verified when its size and mtime equal a record line whose md5 is the
    manifest's; ``rehash=True`` ignores the record and reads every present file. Newly verified
    files are recorded (best effort: a read-only tree is checked all the same). With
    ``hash_unknown=False`` nothing is read: such files stay ``UNCHECKED``. ``scan``: a scan made
    already (e.g. :meth:`Destination.scan_paths` for a few entries); ``record=False`` writes no record.
    """
    dest = as_destination(dest)
    progress = as_progress(progress)
    n = len(manifest)
    record_path = None if rehash else dest.record_path
    if scan is None and n >= VECTOR_MIN and SCAN_RELEASES_GIL and record_path and record_path.exists():
        # a re-plan of a large folder: list it in C (no GIL held) while the join reads the record
        with ThreadPoolExecutor(1, thread_name_prefix="isc-kit-scan") as pool:
            return _compare(manifest, dest, pool.submit(dest.scan).result, record_path, jobs, progress,
                            hash_unknown, record)  # fmt: skip
    return _compare(
        manifest,
        dest,
        scan if scan is not None else dest.scan(),
        record_path,
        jobs,
        progress,
        hash_unknown,
        record,
    )


def _compare(
    manifest: Manifest,
    dest: Destination,
    scan: TreeScan | Callable[[], TreeScan],
    record_path: Path | None,
    jobs: int | None,
    progress: Progress,
    hash_unknown: bool,
    record: bool,
) -> LocalStatus:
    n = len(manifest)
    out = LocalStatus(manifest, dest, bytearray(n), array("q", [-1]) * n, array("q", [0]) * n)
    if isinstance(scan, TreeScan) and not len(scan):
        out.temps, out.others, out.nested = scan.temps, scan.others, scan.nested
        return out
    # 0 no record line, 1 same bytes as the manifest's md5, 2 other md5, 3 changed since
    tree, recorded = join(manifest, scan, record_path, out.local_sizes, out.local_mtimes, out.extra)
    out.temps, out.others, out.nested = tree.temps, tree.others, tree.nested
    todo = _classify(manifest, out, recorded)
    if todo and hash_unknown:
        _hash_rows(manifest, out, todo, jobs, progress, record)
    else:
        for row in todo:
            out.status[row] = UNCHECKED
    out.extra.sort()
    return out


def _classify(manifest: Manifest, out: LocalStatus, recorded: bytearray) -> list[int]:
    """Set each status from sizes and the record; returns the present rows that need hashing."""
    if len(manifest) >= VECTOR_MIN:
        return _classify_numpy(manifest, out, recorded)
    status, lsize, sizes, md5s = out.status, out.local_sizes, manifest.sizes, manifest.md5s.offsets
    todo: list[int] = []
    for row in range(len(status)):
        size = lsize[row]
        if size < 0:
            continue  # MISSING
        want = sizes[row]
        if want >= 0 and size != want:
            status[row] = CORRUPT
            out.reasons[row] = f"size is {size} bytes, manifest says {want}"
        elif md5s[row] == md5s[row + 1]:
            status[row] = UNVERIFIED
        elif recorded[row] == 1:
            status[row] = VERIFIED
        elif recorded[row] == 2:
            status[row] = CORRUPT
            out.reasons[row] = OTHER_BYTES
        else:
            todo.append(row)
    return todo


def _classify_numpy(manifest: Manifest, out: LocalStatus, recorded: bytearray) -> list[int]:
    """:func:`_classify` for a large manifest: the same rules, in order, as array masks."""
    import numpy as np

    lsize = np.frombuffer(out.local_sizes, np.int64)
    want = np.frombuffer(manifest.sizes, np.int64)
    rec = np.frombuffer(recorded, np.uint8)
    status = np.frombuffer(out.status, np.uint8)  # a view: written in place
    rest = lsize >= 0
    bad_size = rest & (want >= 0) & (lsize != want)
    rest &= ~bad_size
    no_md5 = np.diff(np.frombuffer(manifest.md5s.offsets, np.int64)) == 0
    status[rest & no_md5] = UNVERIFIED
    rest &= ~no_md5
    status[rest & (rec == 1)] = VERIFIED
    other = rest & (rec == 2)
    status[bad_size | other] = CORRUPT
    for row in np.flatnonzero(bad_size).tolist():
        out.reasons[row] = f"size is {lsize[row]} bytes, manifest says {want[row]}"
    for row in np.flatnonzero(other).tolist():
        out.reasons[row] = OTHER_BYTES
    return np.flatnonzero(rest & (rec != 1) & (rec != 2)).tolist()


def _hash_rows(
    manifest: Manifest, out: LocalStatus, todo: list[int], jobs: int | None, progress: Progress, record: bool
) -> None:
    """Hash the rows the record does not vouch for; record the good ones (when ``record``)."""
    dest, rels, md5s = out.dest, manifest.relpaths, manifest.md5s
    total = sum(out.local_sizes[r] for r in todo)
    logger.info("checking %d local file(s) (%.1f MB) not verified before", len(todo), total / 1e6)
    progress.set_size(total)
    items = ((k, dest.path(rels[row]), out.local_sizes[row]) for k, row in enumerate(todo))
    good: list[tuple[str, int, int, str]] = []
    with dest.record_writer(best_effort=True) if record else contextlib.nullcontext() as writer:
        for h in hash_files(items, jobs=jobs, total_bytes=total, on_bytes=progress.relative_update):
            row = todo[h.row]
            out.hashed += 1
            out.hashed_bytes += max(h.size, 0)
            want = md5s[row]
            if h.md5 is None:
                out.status[row], out.reasons[row] = CORRUPT, f"unreadable: {h.error}"
            elif h.md5 != want:
                out.status[row], out.reasons[row] = CORRUPT, f"md5 is {h.md5}, manifest says {want}"
                out.actual_md5[row] = h.md5
            else:
                out.status[row] = VERIFIED
                out.local_sizes[row], out.local_mtimes[row] = h.size, h.mtime_ns
                good.append((rels[row], h.size, h.mtime_ns, h.md5))
                if len(good) >= 1000 and writer is not None:
                    writer.add_many(good)
                    good.clear()
            progress.file_done(out.status[row] != CORRUPT)
        if writer is not None:
            writer.add_many(good)
