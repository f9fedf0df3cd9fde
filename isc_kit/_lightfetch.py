"""``isc-kit fetch`` of a pinned file without pandas: the common fresh or resumed download.

It handles the cases a CLI fetch meets most (an empty folder, or one this tool filled and
recorded), with plain lists and dicts: start-up stays ~0.1 s instead of ~1 s of pandas/pyarrow
imports. Anything else (files present but not in the verified record, ``--region auto``,
``--require-md5``, ``--prune``, ``--rehash``) returns ``None`` and the caller takes the full
path (:func:`isc_kit.transfer.plan_fetch` and :func:`~isc_kit.transfer.fetch`), which behaves
identically.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import records as _records
from ._engine import Item
from ._fetchcore import DEFAULT_JOBS, DEFAULT_RETRIES, FetchResult, pick_sources, run_engine
from ._localtree import SafeDest, TreeScan, remove_stale_temps, scan
from ._lock import destination_lock
from ._pinned import PinnedRows
from .errors import ConfigError
from .source import Source

logger = logging.getLogger(__name__)


def fetch_rows(
    rows: PinnedRows,
    dest: str | os.PathLike[str],
    *,
    source: Source | None = None,
    region: str | None = None,
    jobs: int | None = None,
    retries: int = DEFAULT_RETRIES,
    make_progress: Callable[[int], Any] | None = None,
) -> FetchResult | None:
    """Fetch what ``dest`` lacks of ``rows``; ``None`` when the full (pandas) path must decide."""
    started = time.perf_counter()
    if region == "auto":
        return None
    jobs = jobs or DEFAULT_JOBS
    if jobs < 1:
        raise ConfigError(f"jobs must be 1 or more, not {jobs}")
    root = Path(os.path.abspath(dest))
    tree = scan(str(root))
    classified = _classify(rows, root, tree)
    if classified is None:
        return None
    todo, unverified = classified
    sources = pick_sources(rows.bucket, source, region, None)
    result = FetchResult(region=sources[0].region, skipped=len(rows) - len(todo), unverified=unverified)
    if not todo:
        remove_stale_temps(str(root), tree.temps)
    else:
        with destination_lock(root):
            remove_stale_temps(str(root), tree.temps)
            recompact = _records.has_entries(root)
            total = sum(max(rows.sizes[i], 0) for i in todo)
            logger.info(
                "fetching %d of %d files, %.1f MB, from %s",
                len(todo),
                len(rows),
                total / 1e6,
                sources[0].describe(),
            )
            progress = make_progress(len(todo)) if make_progress is not None else None
            try:
                tally = run_engine(
                    _items(rows, todo),
                    len(todo),
                    total,
                    root,
                    SafeDest(root),
                    sources,
                    jobs,
                    retries,
                    progress,
                )
            finally:
                if progress is not None:
                    progress.close()
            result.transferred, result.bytes = tally.transferred, tally.bytes
            result.unverified += tally.unverified
            result.failed += tally.failed
            if recompact:  # a fresh record has one line per file already
                _records.compact(root)
    result.seconds = time.perf_counter() - started
    logger.info("%s", result.summary())
    return result


def _classify(rows: PinnedRows, root: Path, tree: TreeScan) -> tuple[Sequence[int], int] | None:
    """(rows to transfer: missing or known corrupt, present files with no md5); ``None`` if one needs hashing."""
    if not tree.rels:
        return range(len(rows)), 0
    where = {rel: i for i, rel in enumerate(tree.rels)}
    present = {rel: i for rel in rows.relpaths if (i := where.get(rel)) is not None}
    del where
    record = _records.read_entries(root, present)
    todo: list[int] = []
    unverified = 0
    for row, rel in enumerate(rows.relpaths):
        i = present.get(rel)
        if i is None:
            todo.append(row)
            continue
        size, want_size, md5 = tree.sizes[i], rows.sizes[row], rows.md5s[row]
        if want_size >= 0 and size != want_size:
            todo.append(row)  # corrupt: wrong size
        elif md5 is None:
            unverified += 1  # kept as it is: nothing to check it against
        else:
            entry = record.get(rel)
            if entry is None or entry.size != size or entry.mtime_ns != tree.mtimes[i]:
                return None  # changed or written by another tool: the full path hashes it
            if entry.md5 != md5:
                todo.append(row)
    return todo, unverified


def _items(rows: PinnedRows, todo: Sequence[int]) -> Iterator[Item]:
    prefix = rows.prefix
    for row in todo:
        rel, size = rows.relpaths[row], rows.sizes[row]
        yield rel, prefix + rel, rows.md5s[row], None if size < 0 else size
