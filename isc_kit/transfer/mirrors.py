"""Which sources a fetch reads from: the primary and its mirrors, ranked by a probe, the dead ones dropped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from ..catalog import DEFAULT_BUCKET, REGIONS
from ..errors import ConfigError
from ..source import Source, resolve_source, unreachable, where
from .engine import run_sync
from .getters import GetError, Getter, make_getter

logger = logging.getLogger(__name__)


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
    timings = run_sync(lambda: probe(sources, key))
    ranked = sorted(range(len(sources)), key=lambda i: timings[i])
    for i in ranked:
        shown = "unreachable" if timings[i] == float("inf") else f"{timings[i] * 1000:.0f} ms"
        logger.info("probe %s: %s", sources[i].region, shown)
    return [sources[i] for i in ranked]


def reachable(sources: list[Source], key: str) -> list[Source]:
    """The sources that answer at all, the primary first when it does; :class:`SourceError` when none does.

    One HEAD each (in parallel, a few seconds at most), so an unreachable endpoint is one clear
    line at once instead of every object failing after its retries.
    """
    answers = run_sync(lambda: reach(sources, key))
    alive = [s for s, why in zip(sources, answers, strict=True) if why is None]
    if not alive:
        raise unreachable(sources[0], answers[0] or "no answer")
    if alive[0] is not sources[0]:
        logger.warning(
            "%s does not answer (%s); fetching from the %s mirror",
            where(sources[0]),
            answers[0],
            alive[0].region,
        )
    return alive


async def probe(sources: list[Source], key: str, *, tries: int = 2) -> list[float]:
    """Seconds of the fastest of ``tries`` small requests to each source (``inf`` when unreachable)."""

    async def one(getter: Getter, source: Source) -> float:
        best = float("inf")
        for _ in range(tries):
            started = time.perf_counter()
            try:
                await asyncio.wait_for(getter.head(source, key), timeout=5)
            except (GetError, asyncio.TimeoutError):
                continue
            best = min(best, time.perf_counter() - started)
        return best

    async with make_getter(sources, len(sources)) as getter:
        return list(await asyncio.gather(*(one(getter, s) for s in sources)))


async def reach(sources: list[Source], key: str, *, timeout: float = 8.0) -> list[str | None]:
    """Per source: ``None`` when it answers a HEAD of ``key`` at all (any HTTP status), else why not."""

    async def one(getter: Getter, source: Source) -> str | None:
        try:
            await asyncio.wait_for(getter.head(source, key), timeout=timeout)
        except asyncio.TimeoutError:
            return f"no answer within {timeout:g} s"
        except GetError as err:
            return (err.short or err.reason) if err.retryable and err.status == 0 else None
        return None

    async with make_getter(sources, len(sources)) as getter:
        return list(await asyncio.gather(*(one(getter, s) for s in sources)))
