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
from array import array
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


# what the record says of a present file, latest line winning (one byte per row)
_NO_RECORD, _RECORDED_SAME, _RECORDED_OTHER_MD5, _RECORDED_STALE = 0, 1, 2, 3


def _classify(rows: PinnedRows, root: Path, tree: TreeScan) -> tuple[Sequence[int], int] | None:
    """(rows to transfer: missing or known corrupt, present files with no md5); ``None`` if one needs hashing.

    Folds the scan and the streamed record into flat per-row arrays (size, mtime, one state
    byte) through one relpath -> row dict: no per-file objects beyond that dict, whatever the
    record's order or length.
    """
    if not tree.rels:
        return range(len(rows)), 0
    n = len(rows)
    index = {rel: row for row, rel in enumerate(rows.relpaths)}
    if len(index) != n:
        return None  # two rows name one file (a hand-made pin): the full path decides
    lsize = array("q", [-1]) * n  # -1: not present
    lmtime = array("q", [0]) * n
    for rel, size, mtime in zip(tree.rels, tree.sizes, tree.mtimes, strict=True):
        row = index.get(rel)
        if row is not None:
            lsize[row], lmtime[row] = size, mtime
    state = bytearray(n)
    md5s = rows.md5s
    for rel, size, mtime, md5 in _records.iter_entries(root):
        row = index.get(rel)
        if row is None:
            continue
        if size != lsize[row] or mtime != lmtime[row]:
            state[row] = _RECORDED_STALE
        else:
            state[row] = _RECORDED_SAME if md5 == md5s[row] else _RECORDED_OTHER_MD5
    del index
    todo: list[int] = []
    unverified = 0
    for row in range(n):
        size = lsize[row]
        if size < 0:
            todo.append(row)  # missing
            continue
        want_size = rows.sizes[row]
        if want_size >= 0 and size != want_size:
            todo.append(row)  # corrupt: wrong size
        elif md5s[row] is None:
            unverified += 1  # kept as it is: nothing to check it against
        elif state[row] == _RECORDED_OTHER_MD5:
            todo.append(row)  # verified earlier as other bytes than these
        elif state[row] != _RECORDED_SAME:
            return None  # changed or written by another tool: the full path hashes it
    return todo, unverified


def _items(rows: PinnedRows, todo: Sequence[int]) -> Iterator[Item]:
    prefix = rows.prefix
    for row in todo:
        rel, size = rows.relpaths[row], rows.sizes[row]
        yield rel, prefix + rel, rows.md5s[row], None if size < 0 else size
