"""Carry out a fetch: transfer what a plan says is missing or corrupt, every body MD5-checked.

:func:`fetch` plans (unless given a plan), takes the destination's lock, removes part files
no live writer owns, prunes when asked, and runs the :class:`~isc_kit.transfer.engine.Engine`
over the entries to transfer; it returns a :class:`FetchResult`. :func:`repair` is a fetch of
exactly what a verify report found missing or corrupt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import records
from ..errors import ConfigError, EmptySelectionError
from ..local import CORRUPT, MISSING, UNVERIFIED, Destination, as_destination
from ..manifest import Item, Manifest
from ..progress import Progress, as_progress, default_progress
from ..source import Source
from .bodywriter import BodyWriter
from .engine import Engine, Tally, monotonic, run_sync
from .getters import Getter, make_getter
from .mirrors import pick_sources, rank_by_probe, reachable
from .plan import FetchPlan, plan_fetch
from .rawhttp import LowSpeed
from .result import FetchResult

if TYPE_CHECKING:
    from ..verify import VerifyReport

logger = logging.getLogger(__name__)

#: Concurrent requests: enough to hide 20 ms per request (bench/RESULTS.md); bodies held in
#: memory stay below 2 x this x 1 MB.
DEFAULT_JOBS = 256
DEFAULT_RETRIES = 5


def check_count(name: str, value: int | None, default: int, *, minimum: int) -> int:
    """``value`` (or ``default`` when None) if it is a whole number of at least ``minimum``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    return value


def fetch(
    manifest_or_plan: Manifest | FetchPlan,
    dest: Destination | str | os.PathLike[str] | None = None,
    *,
    source: Source | None = None,
    region: str | None = None,
    jobs: int | None = None,
    progress: Any = None,
    retries: int = DEFAULT_RETRIES,
    prune: bool = False,
    require_md5: bool = False,
    mirrors: Sequence[str] | None = None,
    rehash: bool = False,
    allow_empty: bool = False,
    low_speed: LowSpeed | None = None,
) -> FetchResult:
    """Transfer what ``dest`` lacks of a manifest (or carry out a plan); returns a :class:`FetchResult`.

    ``region`` is ``us-west``, ``eu``, ``asia`` or ``auto`` (probe the mirrors, take the
    fastest). On repeated failures or an MD5 mismatch an object is retried from the
    ``mirrors`` (default: the other regions for the publisher's bucket, none otherwise).
    ``progress``: see :mod:`isc_kit.progress`. ``prune`` deletes regular files in ``dest`` the
    manifest does not list; pruning a folder down to an empty manifest needs ``allow_empty``.
    ``low_speed``: abort and retry transfers slower than this (default: ``ISC_KIT_LOW_SPEED_*``).
    """
    started = monotonic()
    jobs = check_count("jobs", jobs, DEFAULT_JOBS, minimum=1)
    retries = check_count("retries", retries, DEFAULT_RETRIES, minimum=0)
    if isinstance(manifest_or_plan, FetchPlan):
        plan = manifest_or_plan
        if dest is not None and as_destination(dest) != plan.dest:
            raise ConfigError(f"the plan is for {plan.dest.root}, not {dest}; plan again for the new folder")
    else:
        if dest is None:
            raise ConfigError("fetch needs a destination folder (dest=...)")
        plan = plan_fetch(manifest_or_plan, dest, rehash=rehash)
    manifest = plan.manifest
    if prune and not len(manifest) and plan.extra and not allow_empty:
        raise EmptySelectionError(
            f"the manifest is empty, so --prune would delete all {len(plan.extra):,} files in {plan.dest.root}; "
            "widen the selection, or allow it explicitly (allow_empty / --allow-empty)"
        )
    sources = pick_sources(manifest.bucket, source, region, mirrors)
    todo = plan.todo_rows
    if todo:
        first_key = manifest.key(manifest.relpaths[todo[0]])
        sources = rank_by_probe(sources, first_key) if region == "auto" else reachable(sources, first_key)
    result = FetchResult(region=sources[0].region)
    if not todo and not (prune and plan.extra):
        plan.dest.remove_temps(plan.temps, locked=False)  # only temps of dead writers; nothing else to do
        _account_skipped(result, plan, todo, require_md5)
    else:
        with plan.dest.lock(), default_progress(progress, "fetch", len(todo)) as bar:  # one writer per folder
            _locked_fetch(result, plan, todo, sources, jobs, retries, bar, prune, require_md5, low_speed)
        if result.transferred or result.from_cache:
            _tell_dvc(plan.dest)
    result.seconds = monotonic() - started
    logger.info("%s", result.summary())
    return result


def _account_skipped(result: FetchResult, plan: FetchPlan, todo: list[int], require_md5: bool) -> list[int]:
    """Fill the skipped/unverified/failed counts; returns the rows left to transfer."""
    counts = plan.counts
    result.skipped = counts["verified"] + counts["unverified"]
    result.unverified = counts["unverified"]
    if not require_md5:
        return todo
    md5s = plan.manifest.md5s.offsets
    unknown = [r for r in range(len(plan.manifest)) if md5s[r] == md5s[r + 1]]
    if unknown:
        reason = "md5 unknown (multipart ETag): cannot be verified, and --require-md5 is set"
        rels = plan.manifest.relpaths
        result.failed += [
            (rels[r], reason) for r in unknown if plan.status[r] in (UNVERIFIED, MISSING, CORRUPT)
        ]
        result.skipped -= sum(1 for r in unknown if plan.status[r] == UNVERIFIED)
        result.unverified = 0
        known = set(unknown)
        todo = [r for r in todo if r not in known]
    return todo


def _locked_fetch(
    result: FetchResult,
    plan: FetchPlan,
    todo: list[int],
    sources: list[Source],
    jobs: int,
    retries: int,
    progress: Progress,
    prune: bool,
    require_md5: bool,
    low_speed: LowSpeed | None,
) -> None:
    """Everything that writes to the destination; the caller holds its lock."""
    manifest, dest = plan.manifest, plan.dest
    dest.remove_temps(plan.temps, locked=True)  # under the lock no other writer exists
    if prune and plan.extra:
        result.pruned_files = dest.prune(plan.extra)
        result.pruned = len(result.pruned_files)
        if plan.nested:
            logger.info(
                "left %d nested destination folder(s) alone: %s", len(plan.nested), ", ".join(plan.nested[:3])
            )
    todo = _account_skipped(result, plan, todo, require_md5)
    shared: dict[int, tuple[int, int]] = {}
    if todo:
        from .dvccache import take_from_cache

        shared = _shared_inodes(plan, todo)
        todo, result.from_cache = take_from_cache(manifest, todo, dest)
        _heal(dest, manifest, shared, set(todo))
    if not todo:
        return
    sizes = manifest.sizes
    known = all(sizes[r] >= 0 for r in todo)
    size = sum(sizes[r] for r in todo) if known else None
    logger.info(
        "fetching %d of %d files%s from %s",
        len(todo),
        len(manifest),
        "" if size is None else f", {size / 1e6:,.1f} MB",
        sources[0].describe(),
    )
    recompact = records.has_lines(dest.record_path)
    tally = run_engine(
        manifest.items(todo),
        len(todo),
        size or 0,
        dest,
        sources,
        jobs,
        retries,
        progress,
        low_speed=low_speed,
    )
    result.transferred, result.bytes = tally.transferred, tally.bytes
    result.unverified += tally.unverified
    result.failed += tally.failed
    failed = {rel for rel, _ in tally.failed}
    _heal(
        dest,
        manifest,
        {r: ino for r, ino in shared.items() if r in set(todo)},
        failed_rows(manifest, todo, failed),
    )
    if recompact:  # a record started by this run has one line per file already
        records.compact(dest.record_path)


def failed_rows(manifest: Manifest, rows: list[int], failed: set[str]) -> set[int]:
    rels = manifest.relpaths
    return {r for r in rows if rels[r] in failed}


def _heal(dest: Destination, manifest: Manifest, shared: dict[int, tuple[int, int]], skip: set[int]) -> None:
    """Cache objects that were corrupt files now replaced get the verified bytes (see ``heal_shared``)."""
    todo = {r: ino for r, ino in shared.items() if r not in skip}
    if todo:
        from ..dvcfiles import heal_shared

        rels, md5s = manifest.relpaths, manifest.md5s
        heal_shared(dest.root, ((dest.path(rels[r]), md5s[r], ino) for r, ino in todo.items()))


def _tell_dvc(dest: Destination) -> None:
    """Inside a DVC repository, record the verified files in DVC's state, so DVC never hashes them again."""
    from ..dvcfiles import find_repo
    from ..errors import DvcError

    try:
        find_repo(dest.root)
    except DvcError:
        return  # not in a DVC repository: nothing to tell (and no dvc import)
    from ..dvcstate import record_tree

    record_tree(dest.root)


def _shared_inodes(plan: FetchPlan, todo: list[int]) -> dict[int, tuple[int, int]]:
    """Corrupt files about to be replaced that have other hard links (a DVC cache object, after pin)."""
    out: dict[int, tuple[int, int]] = {}
    rels = plan.manifest.relpaths
    for row in todo:
        if plan.status[row] != CORRUPT:
            continue
        try:
            st = os.lstat(plan.dest.path(rels[row]))
        except OSError:
            continue
        if st.st_nlink > 1 and md5_known(plan.manifest, row):
            out[row] = (st.st_dev, st.st_ino)
    return out


def md5_known(manifest: Manifest, row: int) -> bool:
    o = manifest.md5s.offsets
    return o[row + 1] != o[row]


def run_engine(
    items: Iterator[Item],
    count: int,
    total_bytes: int,
    dest: Destination,
    sources: list[Source],
    jobs: int,
    retries: int,
    progress: Any = None,
    *,
    low_speed: LowSpeed | None = None,
    getter: Getter | None = None,
) -> Tally:
    """Transfer ``count`` items into ``dest``: ``jobs`` requests in flight, bodies finished in batches.

    ``getter``: how objects are read (default: :func:`~.getters.make_getter` for ``sources``; a
    team pull passes its remote's, e.g. a local folder's).
    """
    progress = as_progress(progress)
    progress.set_size(total_bytes)
    with (
        dest.record_writer() as writer,
        BodyWriter(writer) as bodies,
    ):
        engine = Engine(
            dest=dest,
            sources=sources,
            getter=getter or make_getter(sources, min(jobs, max(1, count)), low_speed=low_speed),
            records=writer,
            writer=bodies,
            retries=retries,
            on_bytes=progress.relative_update,
            on_file=progress.file_done,
        )
        return run_sync(lambda: engine.run(items, min(jobs, count)))  # type: ignore[no-any-return]


def repair(
    manifest: Manifest,
    dest: Destination | str | os.PathLike[str],
    *,
    report: VerifyReport | None = None,
    **fetch_options: Any,
) -> FetchResult:
    """Re-fetch only the missing and corrupt files (verifying first unless ``report`` is given)."""
    if report is None:
        from ..verify import verify

        report = verify(manifest, dest)
    return fetch(report.as_plan(), dest, **fetch_options)
