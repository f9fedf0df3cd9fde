"""Verify: hash a local tree against a manifest (in parallel processes) and report what is wrong.

:func:`verify` reads every listed file (it is the audit: the verified record is refreshed, not
trusted) through :func:`isc_kit.local.compare` and reports missing, corrupt and extra files; it
works on trees written by any tool (``aws s3 cp``, s5cmd, rclone...) and on read-only trees.
Repair is a fetch: :func:`isc_kit.transfer.repair`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import records
from .errors import DestinationError
from .local import CORRUPT, MISSING, UNVERIFIED, VERIFIED, Destination, LocalStatus, compare
from .manifest import Manifest
from .pinned import load_pinned
from .progress import default_progress

if TYPE_CHECKING:
    from .transfer.plan import FetchPlan

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Result of :func:`verify`. ``ok`` when nothing listed is missing or corrupt (extra files are reported only)."""

    local: LocalStatus
    seconds: float = 0.0

    @property
    def manifest(self) -> Manifest:
        return self.local.manifest

    @property
    def dest(self) -> Path:
        return Path(self.local.dest.root)

    @property
    def status(self) -> bytearray:
        return self.local.status

    @property
    def missing(self) -> list[str]:
        return [self.manifest.relpaths[r] for r in self.local.rows(MISSING)]

    @property
    def corrupt(self) -> list[str]:
        return [self.manifest.relpaths[r] for r in self.local.rows(CORRUPT)]

    @property
    def reasons(self) -> dict[str, str]:
        """relpath -> why it is corrupt."""
        rels = self.manifest.relpaths
        return {rels[r]: why for r, why in self.local.reasons.items() if self.local.status[r] == CORRUPT}

    @property
    def extra(self) -> list[str]:
        """Files the manifest does not list, and anything that is not a regular file (never followed)."""
        return sorted(self.local.extra + self.local.others)

    @property
    def verified(self) -> int:
        return self.local.status.count(VERIFIED)

    @property
    def unverified(self) -> int:
        return self.local.status.count(UNVERIFIED)

    @property
    def bytes(self) -> int:
        return self.local.hashed_bytes

    @property
    def ok(self) -> bool:
        return MISSING not in self.local.status and CORRUPT not in self.local.status

    @property
    def entries(self) -> int:
        return len(self.local.status)

    def to_dict(self, limit: int | None = 1000) -> dict[str, Any]:
        missing, corrupt, extra, reasons = self.missing, self.corrupt, self.extra, self.reasons
        return {
            "ok": self.ok,
            "dest": str(self.dest),
            "entries": self.entries,
            "verified": self.verified,
            "unverified": self.unverified,
            "missing_count": len(missing),
            "corrupt_count": len(corrupt),
            "extra_count": len(extra),
            "missing": missing[:limit],
            "corrupt": [{"relpath": r, "reason": reasons.get(r, "")} for r in corrupt[:limit]],
            "extra": extra[:limit],
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        c = self.local.counts
        rate = self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{c['verified']:,} verified, {c['missing']:,} missing, {c['corrupt']:,} corrupt, "
            f"{len(self.extra):,} extra of {self.entries:,} listed; "
            f"{self.bytes / 1e6:,.1f} MB hashed in {self.seconds:.1f} s ({rate:,.0f} MB/s)"
        )
        if c["unverified"]:
            text += f"; {c['unverified']:,} unverified (md5 unknown)"
        return text

    __str__ = summary

    def as_plan(self) -> FetchPlan:
        """The fetch plan this report implies: transfer exactly the missing and corrupt entries."""
        from .transfer.plan import FetchPlan

        return FetchPlan.of(self.local)


def verify(
    manifest: Manifest,
    dest: Destination | str | os.PathLike[str],
    *,
    jobs: int | None = None,
    progress: Any = None,
) -> VerifyReport:
    """Hash every file ``manifest`` lists under ``dest`` (``jobs`` processes; default: all cores)."""
    started = time.perf_counter()
    with default_progress(progress, "verify", len(manifest)) as bar:
        local = compare(manifest, dest, rehash=True, jobs=jobs, progress=bar)
    corrupt = [manifest.relpaths[r] for r in local.rows(CORRUPT)]
    try:  # drop what is now known bad; skipped (nothing lost) while a fetch appends
        records.compact(local.dest.record_path, drop=corrupt)
    except DestinationError as err:
        logger.warning("%s (the check itself is complete)", err)
    report = VerifyReport(local, seconds=time.perf_counter() - started)
    logger.info("%s", report.summary())
    return report


def verify_pinned(
    pinned: str | os.PathLike[str],
    dest: Destination | str | os.PathLike[str],
    *,
    jobs: int | None = None,
    progress: Any = None,
) -> VerifyReport:
    """:func:`verify` against a pinned manifest file."""
    return verify(load_pinned(pinned), dest, jobs=jobs, progress=progress)


__all__ = ["VerifyReport", "verify", "verify_pinned"]
