"""Fetch: plan what a destination lacks, then transfer it with every byte MD5-checked.

:func:`plan_fetch` compares a manifest with a local folder and the verified record (see
:mod:`isc_kit.records`): files whose size and mtime still match their record are not re-read;
changed or unknown ones are hashed (in parallel). :func:`fetch` transfers what is missing or
corrupt and returns a :class:`FetchResult`. Whatever ends up under a final name has the MD5
the manifest names; a rerun after any interruption does only what is left.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import records as _records
from ._engine import Item, Tally, monotonic
from ._fetchcore import DEFAULT_JOBS, DEFAULT_RETRIES, FetchResult, pick_sources, rank_by_probe, run_engine
from ._hashing import default_jobs, hash_files
from ._localtree import SafeDest, TreeScan, remove_stale_temps, scan
from ._lock import destination_lock
from ._status import CORRUPT, MISSING, STATUS_NAMES, UNVERIFIED, VERIFIED
from .errors import ConfigError
from .manifest import Manifest
from .source import Source

logger = logging.getLogger(__name__)


@dataclass
class FetchPlan:
    """Per manifest entry: missing, verified (unchanged since checked), unverified (no md5 known), corrupt."""

    manifest: Manifest
    dest: Path
    status: np.ndarray  # int8, aligned with manifest.table rows
    extra: list[str] = field(default_factory=list)  # regular files the manifest does not list
    stale_temps: list[str] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    hashed: int = 0  # files read during planning

    @property
    def counts(self) -> dict[str, int]:
        found = np.bincount(self.status, minlength=len(STATUS_NAMES))
        return {name: int(found[i]) for i, name in enumerate(STATUS_NAMES)}

    @property
    def to_fetch(self) -> Manifest:
        """The entries to transfer: missing or corrupt."""
        return self.manifest.subset((self.status == MISSING) | (self.status == CORRUPT))

    @property
    def fetch_bytes(self) -> int | None:
        return self.to_fetch.total_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": str(self.dest),
            "entries": len(self.manifest),
            **self.counts,
            "to_fetch": int(((self.status == MISSING) | (self.status == CORRUPT)).sum()),
            "to_fetch_bytes": self.fetch_bytes,
            "extra": len(self.extra),
            "hashed": self.hashed,
        }

    def __str__(self) -> str:
        c = self.counts
        n = c["missing"] + c["corrupt"]
        size = self.fetch_bytes
        size_text = "size unknown" if size is None else f"{size / 1e6:,.1f} MB"
        return (
            f"fetch {n:,} of {len(self.manifest):,} {self.manifest.set_name} files ({size_text}) into {self.dest}: "
            f"{c['missing']:,} missing, {c['corrupt']:,} corrupt, {c['verified']:,} verified, "
            f"{c['unverified']:,} unverified (no md5), {len(self.extra):,} extra"
        )


# ---------------------------------------------------------------------------------------------- plan


def plan_fetch(
    manifest: Manifest,
    dest: str | os.PathLike[str],
    *,
    rehash: bool = False,
    jobs: int | None = None,
    progress: Any = None,
) -> FetchPlan:
    """Classify every entry of ``manifest`` against ``dest``, hashing only files not verified unchanged.

    ``rehash=True`` ignores the verified record and reads every present file again. Newly
    verified files are added to the record.
    """
    root = Path(os.path.abspath(dest))
    tree = scan(str(root))
    return _classify(manifest, root, tree, rehash=rehash, jobs=jobs, progress=progress)


def _classify(
    manifest: Manifest, root: Path, tree: TreeScan, *, rehash: bool, jobs: int | None, progress: Any
) -> FetchPlan:
    """Join manifest, scan and record on relpath in Arrow (hash joins over the columns, no Python object per entry).

    Takes ``tree.rels`` over (emptied once copied to Arrow): the caller's scan is for this plan only.
    """
    table = manifest.table
    rels = _strings(table["relpath"])
    status = np.full(len(table), MISSING, dtype=np.int8)
    if not len(tree):  # nothing local: every entry is missing
        _release()
        return FetchPlan(manifest, root, status, [], tree.temps, tree.symlinks, 0)
    local = pa.array(tree.rels, type=pa.string())
    tree.rels = []  # plan_fetch's own scan: Arrow's copy replaces ~80 MB of Python strings per 1M files
    pos = _positions(rels, local)
    present = pos >= 0
    extra = [] if len(local) == int(present.sum()) else _extra(local, rels)
    del local
    lsize = _take(np.frombuffer(tree.sizes, dtype=np.int64), pos, -1)
    lmtime = _take(np.frombuffer(tree.mtimes, dtype=np.int64), pos, -1)
    del pos
    md5s = _strings(table["md5"])
    has_md5 = table["md5"].notna().to_numpy()
    msize = table["size"].to_numpy(dtype=np.int64, na_value=-1)

    size_bad = present & (msize >= 0) & (lsize != msize)
    status[present & ~has_md5] = UNVERIFIED
    status[size_bad] = CORRUPT
    todo = present & has_md5 & ~size_bad
    del msize, size_bad, has_md5
    if not rehash and todo.any():
        rec = _records.read_table(root)
        rpos = _positions(rels, rec["relpath"])
        known = todo & (rpos >= 0)
        same = known & (_take(rec["size"].to_numpy(), rpos, -1) == lsize)
        same &= _take(rec["mtime_ns"].to_numpy(), rpos, -1) == lmtime
        rmd5 = pc.take(rec["md5"], pa.array(rpos, mask=rpos < 0))
        del rec, rpos, known
        equal = np.asarray(
            pc.fill_null(pc.equal(rmd5, md5s), False).to_numpy(zero_copy_only=False), dtype=bool
        )
        del rmd5
        status[same & equal] = VERIFIED
        status[same & ~equal] = CORRUPT
        todo &= ~same
    _release()
    hashed = 0
    rows = np.flatnonzero(todo)
    if len(rows):
        hashed = _hash_unknown(rows, rels, md5s, lsize, lmtime, root, status, jobs, progress)
    return FetchPlan(manifest, root, status, extra, tree.temps, tree.symlinks, hashed)


def _hash_unknown(
    rows: np.ndarray,
    rels: pa.ChunkedArray,
    md5s: pa.ChunkedArray,
    lsize: np.ndarray,
    lmtime: np.ndarray,
    root: Path,
    status: np.ndarray,
    jobs: int | None,
    progress: Any,
) -> int:
    """Hash the present files the record does not vouch for; record the good ones. Returns how many were read."""
    total = int(lsize[rows].sum())
    logger.info("checking %d local file(s) (%.1f MB) not verified before", len(rows), total / 1e6)
    if progress is not None:
        progress.set_size(total)
    take = pa.array(rows)
    names = pc.take(rels, take).to_pylist()  # Python strings for these files only
    want = pc.take(md5s, take).to_pylist()
    items = ((k, str(root / names[k]), int(lsize[row])) for k, row in enumerate(rows))
    hashed = 0
    with _records.RecordWriter(root) as writer:
        batch: list[tuple[str, int, int, str]] = []
        for h in hash_files(
            items,
            jobs=jobs,
            total_bytes=total,
            on_bytes=progress.relative_update if progress is not None else None,
        ):
            hashed += 1
            if h.md5 is not None and h.md5 == want[h.row]:
                status[rows[h.row]] = VERIFIED
                batch.append((names[h.row], h.size, h.mtime_ns, h.md5))
            else:
                status[rows[h.row]] = CORRUPT
            if len(batch) >= 1000:
                writer.add_many(batch)
                batch.clear()
        writer.add_many(batch)
    return hashed


def _strings(column: pd.Series) -> pa.ChunkedArray:
    """A string column as Arrow (zero-copy for the pyarrow-backed columns a Manifest holds)."""
    array = column.array
    if isinstance(array, pd.arrays.ArrowStringArray):
        return array.__arrow_array__()
    return pa.chunked_array([pa.array(column, type=pa.string(), from_pandas=True)])


def _positions(values: pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """For each of ``values``, its index in ``keys`` (unique), or -1."""
    found = pc.index_in(values, value_set=keys)
    out = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    del found
    _release()  # the hash table's memory
    return out


def _release() -> None:
    """Give Arrow's freed blocks back to the system, so Python and numpy can reuse the pages."""
    pa.default_memory_pool().release_unused()


def _take(values: np.ndarray, pos: np.ndarray, fill: Any) -> np.ndarray:
    """``values[pos]`` with ``fill`` where ``pos`` is -1 (not found)."""
    out = np.full(len(pos), fill, dtype=values.dtype if fill is not None else object)
    found = pos >= 0
    out[found] = values[pos[found]]
    return out


def _extra(local: pa.Array, rels: pa.ChunkedArray) -> list[str]:
    """Scanned relpaths the manifest does not list."""
    listed = np.asarray(pc.is_in(local, value_set=rels).to_numpy(zero_copy_only=False), dtype=bool)
    return [str(r) for r in pc.filter(local, pa.array(~listed)).to_pylist()]


# ---------------------------------------------------------------------------------------------- fetch


def fetch(
    manifest_or_plan: Manifest | FetchPlan,
    dest: str | os.PathLike[str] | None = None,
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
) -> FetchResult:
    """Transfer what ``dest`` lacks of a manifest (or carry out a plan); returns a :class:`FetchResult`.

    ``region`` is ``us-west``, ``eu``, ``asia`` or ``auto`` (probe the mirrors, take the
    fastest). On repeated failures or an MD5 mismatch an object is retried from the
    ``mirrors`` (default: the other regions for the publisher's bucket, none otherwise).
    ``progress`` is an fsspec ``Callback`` (bytes; an optional ``file_done(ok)`` method counts
    files). ``prune`` deletes regular files in ``dest`` the manifest does not list.
    """
    started = monotonic()
    if isinstance(manifest_or_plan, FetchPlan):
        plan = manifest_or_plan
        if dest is not None and Path(os.path.abspath(dest)) != plan.dest:
            raise ConfigError(f"the plan is for {plan.dest}, not {dest}; plan again for the new folder")
    else:
        if dest is None:
            raise ConfigError("fetch needs a destination folder (dest=...)")
        plan = plan_fetch(manifest_or_plan, dest, rehash=rehash, jobs=None)
    manifest, root = plan.manifest, plan.dest
    jobs = jobs or DEFAULT_JOBS
    if jobs < 1:
        raise ConfigError(f"jobs must be 1 or more, not {jobs}")
    sources = pick_sources(manifest.bucket, source, region, mirrors)
    if region == "auto" and plan.counts["missing"] + plan.counts["corrupt"]:
        key = manifest.prefix + (str(manifest.table["relpath"].iloc[0]) if len(manifest) else "")
        sources = rank_by_probe(sources, key)
    result = FetchResult(region=sources[0].region)
    if plan.counts["missing"] + plan.counts["corrupt"] == 0 and not (prune and plan.extra):
        remove_stale_temps(str(root), plan.stale_temps)  # only temps of dead writers; nothing else to do
        _account_skipped(result, plan, require_md5)
    else:
        with destination_lock(root):  # one writer per destination, prune included: a second fails at once
            _locked_fetch(result, plan, sources, jobs, retries, progress, prune, require_md5)
    result.seconds = monotonic() - started
    logger.info("%s", result.summary())
    return result


def _account_skipped(result: FetchResult, plan: FetchPlan, require_md5: bool) -> Manifest:
    """Fill the skipped/unverified/failed counts; returns the entries left to transfer."""
    manifest = plan.manifest
    counts = plan.counts
    result.skipped = counts["verified"] + counts["unverified"]
    result.unverified = counts["unverified"]
    todo = plan.to_fetch
    if require_md5:
        no_md5 = todo.table["md5"].isna().to_numpy() if len(todo) else np.zeros(0, bool)
        kept = manifest.table["md5"].isna().to_numpy() & (plan.status == UNVERIFIED)
        reason = "md5 unknown (multipart ETag): cannot be verified, and --require-md5 is set"
        result.failed += [(r, reason) for r in manifest.table["relpath"][kept]]
        result.failed += [(r, reason) for r in todo.table["relpath"][no_md5]]
        result.skipped -= int(kept.sum())
        result.unverified = 0
        todo = todo.subset(~no_md5)
    return todo


def _locked_fetch(
    result: FetchResult,
    plan: FetchPlan,
    sources: list[Source],
    jobs: int,
    retries: int,
    progress: Any,
    prune: bool,
    require_md5: bool,
) -> None:
    """Everything that writes to the destination; the caller holds its lock."""
    manifest, root = plan.manifest, plan.dest
    remove_stale_temps(str(root), plan.stale_temps)
    safe = SafeDest(root)
    if prune and plan.extra:
        result.pruned = len(safe.prune(pd.Series(plan.extra), set()))
    todo = _account_skipped(result, plan, require_md5)
    if len(todo):
        size = todo.total_bytes
        logger.info(
            "fetching %d of %d files%s from %s",
            len(todo),
            len(manifest),
            "" if size is None else f", {size / 1e6:,.1f} MB",
            sources[0].describe(),
        )
        recompact = _records.has_entries(root)
        tally = _transfer(todo, root, safe, sources, jobs, retries, progress)
        result.transferred = tally.transferred
        result.bytes = tally.bytes
        result.unverified += tally.unverified
        result.failed += tally.failed
        if recompact:  # a record started by this run has one line per file already
            _records.compact(root)


def _items(todo: Manifest) -> Iterator[Item]:
    """Entries in blocks, so no per-entry Python objects exist for the whole manifest at once."""
    table = todo.table
    for start in range(0, len(table), 10_000):
        block = table.iloc[start : start + 10_000]
        rels = block["relpath"].tolist()
        md5s = block["md5"].to_numpy(dtype=object, na_value=None).tolist()
        sizes = block["size"].to_numpy(dtype=object, na_value=None).tolist()
        for rel, md5, size in zip(rels, md5s, sizes, strict=True):
            yield rel, todo.prefix + rel, md5, None if size is None else int(size)


def _transfer(
    todo: Manifest, root: Path, safe: SafeDest, sources: list[Source], jobs: int, retries: int, progress: Any
) -> Tally:
    return run_engine(
        _items(todo), len(todo), todo.total_bytes or 0, root, safe, sources, jobs, retries, progress
    )


__all__ = ["FetchPlan", "FetchResult", "default_jobs", "fetch", "plan_fetch"]
