"""Plan a fetch: what a destination lacks of a manifest (a value you can print, test and act on)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..local import CORRUPT, MISSING, Destination, LocalStatus, compare
from ..manifest import Manifest


@dataclass
class FetchPlan(LocalStatus):
    """Per manifest entry: missing, verified (unchanged since checked), unverified (no md5 known), corrupt.

    The entries to transfer are the missing and corrupt ones; ``extra`` lists regular files the
    manifest does not list (what ``prune`` would delete).
    """

    @classmethod
    def of(cls, status: LocalStatus) -> FetchPlan:
        return cls(**vars(status))

    @property
    def todo_rows(self) -> list[int]:
        return self.rows(MISSING, CORRUPT)

    @property
    def to_fetch(self) -> Manifest:
        """The entries to transfer: missing or corrupt."""
        return self.manifest.take(self.todo_rows)

    @property
    def fetch_bytes(self) -> int | None:
        sizes = self.manifest.sizes
        total = 0
        for row in self.todo_rows:
            if sizes[row] < 0:
                return None
            total += sizes[row]
        return total

    def to_dict(self, limit: int = 1000) -> dict[str, Any]:
        counts = self.counts
        return {
            "dest": self.dest.root,
            "entries": len(self.manifest),
            **counts,
            "to_fetch": counts["missing"] + counts["corrupt"],
            "to_fetch_bytes": self.fetch_bytes,
            "extra": len(self.extra),
            "extra_files": self.extra[:limit],
            "hashed": self.hashed,
        }

    def __str__(self) -> str:
        c = self.counts
        size = self.fetch_bytes
        size_text = "size unknown" if size is None else f"{size / 1e6:,.1f} MB"
        return (
            f"fetch {c['missing'] + c['corrupt']:,} of {len(self.manifest):,} {self.manifest.set_name} files "
            f"({size_text}) into {self.dest.root}: {c['missing']:,} missing, {c['corrupt']:,} corrupt, "
            f"{c['verified']:,} verified, {c['unverified']:,} unverified (no md5), {len(self.extra):,} extra"
        )


def plan_fetch(
    manifest: Manifest,
    dest: Destination | str | os.PathLike[str],
    *,
    rehash: bool = False,
    jobs: int | None = None,
    progress: Any = None,
) -> FetchPlan:
    """Classify every entry of ``manifest`` against ``dest`` (see :func:`isc_kit.local.compare`)."""
    return FetchPlan.of(compare(manifest, dest, rehash=rehash, jobs=jobs, progress=progress))
