"""Verify: hash a local tree against a manifest (in parallel processes), and repair what is bad.

:func:`verify` reads every listed file (it is the audit: the verified record is refreshed, not
trusted) and reports missing, corrupt and extra files; it works on trees written by any tool
(``aws s3 cp``, s5cmd, rclone...). :func:`verify_pinned` does the same from a pinned file
without importing pandas (the ``isc-kit verify`` path: start-up is a large part of a verify's
time). :func:`repair` re-fetches only the missing and corrupt ones.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import records as _records
from ._hashing import hash_files
from ._localtree import scan
from ._pinned import PinnedRows, read_rows
from ._status import CORRUPT, MISSING, UNVERIFIED, VERIFIED

if TYPE_CHECKING:
    from .manifest import Manifest
    from .transfer import FetchPlan, FetchResult

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Result of :func:`verify`. ``ok`` when nothing listed is missing or corrupt (extra files are reported only)."""

    manifest: Manifest | None  # None when checked from a pinned file's rows (see verify_pinned)
    dest: Path
    status: bytearray  # per manifest row: 0 missing, 1 verified, 2 unverified, 3 corrupt (as in FetchPlan)
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # relpath -> why it is corrupt
    verified: int = 0
    unverified: int = 0  # present, md5 unknown (size checked when known)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    @property
    def entries(self) -> int:
        return len(self.status)

    def to_dict(self, limit: int | None = 1000) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dest": str(self.dest),
            "entries": self.entries,
            "verified": self.verified,
            "unverified": self.unverified,
            "missing_count": len(self.missing),
            "corrupt_count": len(self.corrupt),
            "extra_count": len(self.extra),
            "missing": self.missing[:limit],
            "corrupt": [{"relpath": r, "reason": self.reasons.get(r, "")} for r in self.corrupt[:limit]],
            "extra": self.extra[:limit],
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        rate = self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.verified:,} verified, {len(self.missing):,} missing, {len(self.corrupt):,} corrupt, "
            f"{len(self.extra):,} extra of {self.entries:,} listed; "
            f"{self.bytes / 1e6:,.1f} MB hashed in {self.seconds:.1f} s ({rate:,.0f} MB/s)"
        )
        if self.unverified:
            text += f"; {self.unverified:,} unverified (md5 unknown)"
        return text

    __str__ = summary

    def as_plan(self, manifest: Manifest | None = None) -> FetchPlan:
        """The fetch plan this report implies: transfer exactly the missing and corrupt entries.

        ``manifest`` is needed when the report came from :func:`verify_pinned`.
        """
        import numpy as np

        from .transfer import FetchPlan

        manifest = manifest if manifest is not None else self.manifest
        if manifest is None or len(manifest) != self.entries:
            raise ValueError("as_plan needs the manifest this report was made from")
        status = np.frombuffer(bytes(self.status), dtype=np.int8).copy()
        return FetchPlan(manifest, self.dest, status, extra=list(self.extra))


def verify(
    manifest: Manifest, dest: str | os.PathLike[str], *, jobs: int | None = None, progress: Any = None
) -> VerifyReport:
    """Hash every file ``manifest`` lists under ``dest`` (``jobs`` processes; default: all cores)."""
    table = manifest.table
    report = _verify_rows(
        table["relpath"].tolist(),
        table["md5"].to_numpy(dtype=object, na_value=None).tolist(),
        table["size"].to_numpy(dtype="int64", na_value=-1).tolist(),
        dest,
        jobs=jobs,
        progress=progress,
    )
    report.manifest = manifest
    return report


def verify_pinned(
    pinned: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    progress: Any = None,
    rows: PinnedRows | None = None,
) -> VerifyReport:
    """:func:`verify` against a pinned manifest file, without pandas when the file is well formed.

    A damaged or hand-edited file goes through :func:`isc_kit.manifest.load_pinned`, which raises
    the precise :class:`~isc_kit.errors.InputFileError`. ``report.manifest`` is ``None`` on the
    light path. ``rows``: the file's rows when the caller has read them already.
    """
    rows = rows if rows is not None else read_rows(pinned)
    if rows is None:
        from .manifest import load_pinned

        return verify(load_pinned(pinned), dest, jobs=jobs, progress=progress)
    return _verify_rows(rows.relpaths, rows.md5s, rows.sizes, dest, jobs=jobs, progress=progress)


def _verify_rows(
    rels: Sequence[str],
    want_md5: Sequence[str | None],
    want_size: Sequence[int],
    dest: str | os.PathLike[str],
    *,
    jobs: int | None,
    progress: Any,
) -> VerifyReport:
    """The check itself, on plain columns (size -1 = unknown); standard library only."""
    started = time.perf_counter()
    root = Path(os.path.abspath(dest))
    tree = scan(str(root))
    where = {rel: i for i, rel in enumerate(tree.rels)}
    status = bytearray(len(rels))  # all MISSING
    reasons: dict[str, str] = {}
    todo: list[tuple[int, str, int]] = []
    total = 0
    listed = 0
    for row, rel in enumerate(rels):
        i = where.get(rel)
        if i is not None:
            listed += 1
            size = tree.sizes[i]
            total += size
            todo.append((row, os.path.join(root, rel), size))
    logger.info("verifying %d file(s), %.1f MB, in %s", len(todo), total / 1e6, root)
    if progress is not None:
        progress.set_size(total)
    on_file = getattr(progress, "file_done", None) if progress is not None else None
    hashed_bytes = 0
    good: list[tuple[str, int, int, str]] = []
    with _records.RecordWriter(root) as writer:
        for h in hash_files(
            todo,
            jobs=jobs,
            total_bytes=total,
            on_bytes=progress.relative_update if progress is not None else None,
        ):
            rel = rels[h.row]
            hashed_bytes += max(h.size, 0)
            if h.md5 is None:
                status[h.row], reasons[rel] = CORRUPT, f"unreadable: {h.error}"
            elif want_size[h.row] >= 0 and h.size != want_size[h.row]:
                status[h.row] = CORRUPT
                reasons[rel] = f"size is {h.size} bytes, manifest says {want_size[h.row]}"
            elif want_md5[h.row] is None:
                status[h.row] = UNVERIFIED
            elif h.md5 != want_md5[h.row]:
                status[h.row], reasons[rel] = CORRUPT, f"md5 is {h.md5}, manifest says {want_md5[h.row]}"
            else:
                status[h.row] = VERIFIED
                good.append((rel, h.size, h.mtime_ns, h.md5))
                if len(good) >= 1000:
                    writer.add_many(good)
                    good.clear()
            if on_file is not None:
                on_file(status[h.row] != CORRUPT)
        writer.add_many(good)
    del todo
    corrupt = sorted(rels[i] for i, s in enumerate(status) if s == CORRUPT)
    _records.compact(root, drop=corrupt)
    extra: list[str] = []
    if listed != len(tree.rels):
        wanted = set(rels)
        extra = sorted(r for r in tree.rels if r not in wanted)
    report = VerifyReport(
        None,
        root,
        status,
        missing=[rels[i] for i, s in enumerate(status) if s == MISSING],
        corrupt=corrupt,
        extra=extra + sorted(tree.symlinks),
        reasons=reasons,
        verified=status.count(VERIFIED),
        unverified=status.count(UNVERIFIED),
        bytes=hashed_bytes,
        seconds=time.perf_counter() - started,
    )
    logger.info("%s", report.summary())
    return report


def repair(
    manifest: Manifest,
    dest: str | os.PathLike[str],
    *,
    report: VerifyReport | None = None,
    jobs: int | None = None,
    progress: Any = None,
    **fetch_options: Any,
) -> FetchResult:
    """Re-fetch only the missing and corrupt files (verifying first unless ``report`` is given)."""
    from .transfer import fetch

    if report is None:
        report = verify(manifest, dest, jobs=None, progress=None)
    return fetch(report.as_plan(manifest), dest, jobs=jobs, progress=progress, **fetch_options)


__all__ = ["VerifyReport", "repair", "verify", "verify_pinned"]
