"""Verify: hash a local tree against a manifest (in parallel processes), and repair what is bad.

:func:`verify` reads every listed file (it is the audit: the verified record is refreshed, not
trusted) and reports missing, corrupt and extra files; it works on trees written by any tool
(``aws s3 cp``, s5cmd, rclone...). :func:`repair` re-fetches only the missing and corrupt ones.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import records as _records
from ._engine import monotonic
from ._hashing import hash_files
from ._localtree import scan
from .manifest import Manifest
from .transfer import CORRUPT, MISSING, UNVERIFIED, VERIFIED, FetchPlan, FetchResult, fetch

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Result of :func:`verify`. ``ok`` when nothing listed is missing or corrupt (extra files are reported only)."""

    manifest: Manifest
    dest: Path
    status: np.ndarray  # per manifest row, as in FetchPlan
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

    def to_dict(self, limit: int | None = 1000) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dest": str(self.dest),
            "entries": len(self.manifest),
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
            f"{len(self.extra):,} extra of {len(self.manifest):,} listed; "
            f"{self.bytes / 1e6:,.1f} MB hashed in {self.seconds:.1f} s ({rate:,.0f} MB/s)"
        )
        if self.unverified:
            text += f"; {self.unverified:,} unverified (md5 unknown)"
        return text

    __str__ = summary

    def as_plan(self) -> FetchPlan:
        """The fetch plan this report implies: transfer exactly the missing and corrupt entries."""
        return FetchPlan(self.manifest, self.dest, self.status.copy(), extra=list(self.extra))


def verify(
    manifest: Manifest, dest: str | os.PathLike[str], *, jobs: int | None = None, progress: Any = None
) -> VerifyReport:
    """Hash every file ``manifest`` lists under ``dest`` (``jobs`` processes; default: all cores)."""
    started = monotonic()
    root = Path(os.path.abspath(dest))
    tree = scan(str(root))
    table = manifest.table
    rels = table["relpath"].to_numpy(dtype=object)
    local = tree.files.set_index("relpath")
    idx = pd.Index(table["relpath"])
    pos = local.index.get_indexer(idx)
    present = pos >= 0
    lsize = np.full(len(table), -1, dtype=np.int64)
    lsize[present] = local["size"].to_numpy()[pos[present]]
    want_md5 = table["md5"].to_numpy(dtype=object, na_value=None)
    want_size = table["size"].to_numpy(dtype=np.int64, na_value=-1)
    status = np.full(len(table), MISSING, dtype=np.int8)
    reasons: dict[str, str] = {}
    rows = np.flatnonzero(present)
    total = int(lsize[rows].sum()) if len(rows) else 0
    logger.info("verifying %d file(s), %.1f MB, in %s", len(rows), total / 1e6, root)
    if progress is not None:
        progress.set_size(total)
    on_file = getattr(progress, "file_done", None) if progress is not None else None
    hashed_bytes = 0
    good: list[tuple[str, int, int, str]] = []
    with _records.RecordWriter(root) as writer:
        for h in hash_files(
            ((int(i), str(root / rels[i]), int(lsize[i])) for i in rows),
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
    corrupt = sorted(rels[status == CORRUPT].tolist())
    _records.compact(root, drop=corrupt)
    files = tree.files["relpath"]
    extra = sorted(files[~files.isin(idx)].tolist()) + sorted(tree.symlinks)
    report = VerifyReport(
        manifest,
        root,
        status,
        missing=rels[status == MISSING].tolist(),
        corrupt=corrupt,
        extra=extra,
        reasons=reasons,
        verified=int((status == VERIFIED).sum()),
        unverified=int((status == UNVERIFIED).sum()),
        bytes=hashed_bytes,
        seconds=monotonic() - started,
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
    if report is None:
        report = verify(manifest, dest, jobs=None, progress=None)
    return fetch(report.as_plan(), dest, jobs=jobs, progress=progress, **fetch_options)


__all__ = ["VerifyReport", "repair", "verify"]
