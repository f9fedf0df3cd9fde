"""What a fetch did: :class:`FetchResult` (counts, failures, ``ok``, ``to_dict`` for ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..results import Result


@dataclass
class FetchResult(Result):
    """What :func:`fetch` did. ``ok`` when nothing failed."""

    transferred: int = 0
    skipped: int = 0
    bytes: int = 0
    unverified: int = 0  # entries fetched or kept whose md5 is unknown (multipart ETag)
    pruned: int = 0
    region: str = ""
    pruned_files: list[str] = field(default_factory=list)
    from_cache: int = 0  # placed from the local DVC cache (hashed first), not downloaded

    @property
    def rate(self) -> float:
        """MB/s of transferred bytes."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self, limit: int = 1000) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "transferred": self.transferred,
            "skipped": self.skipped,
            "failed": self.failures(),
            "failed_count": len(self.failed),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.rate, 2),
            "unverified": self.unverified,
            "pruned": self.pruned,
            "pruned_files": self.pruned_files[:limit],
            "from_cache": self.from_cache,
            "region": self.region,
        }

    def summary(self) -> str:
        text = (
            f"{self.transferred:,} transferred, {self.skipped:,} already verified, {len(self.failed):,} failed; "
            f"{self.bytes / 1e6:,.1f} MB in {self.seconds:.1f} s ({self.rate:,.1f} MB/s)"
        )
        if self.unverified:
            text += f"; {self.unverified:,} unverified (md5 unknown)"
        if self.from_cache:
            text += f"; {self.from_cache:,} taken from the local DVC cache"
        if self.pruned:
            text += f"; {self.pruned:,} pruned"
        return text

    __str__ = summary
