"""The pandas-free half of a fetch: its result, where it reads from, and running the engine.

Shared by :mod:`isc_kit.transfer` (plans over pandas manifests) and :mod:`isc_kit._lightfetch`
(the CLI's path for pinned files, which never imports pandas).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import records as _records
from ._bodywriter import BodyWriter
from ._engine import Engine, Item, Tally, run_sync
from ._http import make_getter
from ._localtree import SafeDest
from .catalog import DEFAULT_BUCKET, REGIONS
from .errors import ConfigError
from .source import Source, resolve_source

logger = logging.getLogger(__name__)

#: Concurrent requests: enough to hide 20 ms per request (bench/RESULTS.md); bodies held in
#: memory stay below 2 x this x 1 MB.
DEFAULT_JOBS = 128
DEFAULT_RETRIES = 5


@dataclass
class FetchResult:
    """What :func:`fetch` did. ``ok`` when nothing failed."""

    transferred: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    unverified: int = 0  # entries fetched or kept whose md5 is unknown (multipart ETag)
    pruned: int = 0
    region: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def rate(self) -> float:
        """MB/s of transferred bytes."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "transferred": self.transferred,
            "skipped": self.skipped,
            "failed": [{"relpath": r, "reason": why} for r, why in self.failed],
            "failed_count": len(self.failed),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.rate, 2),
            "unverified": self.unverified,
            "pruned": self.pruned,
            "region": self.region,
        }

    def summary(self) -> str:
        text = (
            f"{self.transferred:,} transferred, {self.skipped:,} already verified, {len(self.failed):,} failed; "
            f"{self.bytes / 1e6:,.1f} MB in {self.seconds:.1f} s ({self.rate:,.1f} MB/s)"
        )
        if self.unverified:
            text += f"; {self.unverified:,} unverified (md5 unknown)"
        if self.pruned:
            text += f"; {self.pruned:,} pruned"
        return text

    __str__ = summary


def pick_sources(
    bucket: str, source: Source | None, region: str | None, mirrors: Sequence[str] | None
) -> list[Source]:
    """The primary source first, then the mirrors to fall back on."""
    if region is not None and region != "auto" and region not in REGIONS:
        raise ConfigError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)} or auto")
    primary = source or resolve_source(bucket=bucket)
    if region and region != "auto":
        primary = primary.in_region(region)
    if mirrors is None:
        mirrors = (
            [r for r in REGIONS if r != primary.region]
            if primary.bucket == DEFAULT_BUCKET or region == "auto"
            else []
        )
    return [primary] + [primary.in_region(r) for r in mirrors if r != primary.region]


def rank_by_probe(sources: list[Source], key: str) -> list[Source]:
    """Order the mirrors by the time of a short probe request (fastest first); unreachable ones last."""
    from ._http import probe

    timings = run_sync(lambda: probe(sources, key))
    ranked = sorted(range(len(sources)), key=lambda i: timings[i])
    for i in ranked:
        logger.info(
            "probe %s: %s",
            sources[i].region,
            "unreachable" if timings[i] == float("inf") else f"{timings[i] * 1000:.0f} ms",
        )
    return [sources[i] for i in ranked]


def run_engine(
    items: Iterator[Item],
    count: int,
    total_bytes: int,
    root: Path,
    safe: SafeDest,
    sources: list[Source],
    jobs: int,
    retries: int,
    progress: Any,
) -> Tally:
    """Transfer ``count`` items: ``jobs`` requests in flight, bodies finished in batches by a BodyWriter."""
    if progress is not None:
        progress.set_size(total_bytes)
    on_file = getattr(progress, "file_done", None) if progress is not None else None
    with (
        _records.RecordWriter(root) as writer,
        BodyWriter(writer) as bodies,  # one thread: measured faster than two (bench.memory --entries 20000)
    ):
        engine = Engine(
            writer=bodies,
            dest=safe,
            sources=sources,
            getter=make_getter(sources, min(jobs, max(1, count))),
            records=writer,
            retries=retries,
            on_bytes=progress.relative_update if progress is not None else None,
            on_file=on_file,
        )
        return run_sync(lambda: engine.run(items, min(jobs, count)))  # type: ignore[no-any-return]
