"""Putting pulled objects into the workspace as ``dvc checkout`` does, and telling DVC's state about them.

Per output, entries are handled in chunks: a file already there as the right bytes (a link to
the cache object, or a file DVC's state or a hash says is right) is left alone; a missing one is
placed (:class:`isc_kit.dvc_checkout.Placer`); a file with other bytes is a local modification,
left alone unless ``force``, as ``dvc checkout`` refuses to lose changes. Every file placed or
confirmed is recorded in DVC's state in batches (:mod:`isc_kit.dvcstate`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

from .dvcstate import BATCH, known_md5s, save_rows
from .errors import UnsafePathError
from .local import Destination, is_temp

if TYPE_CHECKING:
    from .dvc_checkout import Placer
    from .outs import Out, PullResult
    from .pull_cachefill import CacheFill

logger = logging.getLogger(__name__)

CHUNK = 4096


def place_outs(
    repo: Any,
    outs: list[Out],
    cache: str,
    placer: Placer,
    fill: CacheFill,
    force: bool,
    result: PullResult,
    only: set[str] | None = None,
) -> None:
    """Check out every output's files from the cache; record them in DVC's state.

    Called on one thread beside the fetch (it waits for each object as it lands; more placing
    threads only contended here), while one more thread hands finished batches to DVC's state
    (SQLite works without the GIL); at most two batches wait, so memory stays bounded.
    ``only``: place just the files of these md5s (a second pass after ``--from-source``).
    """
    rows: list[Any] = []  # (path, md5, stat_result)
    with ThreadPoolExecutor(1, "isc-kit-dvc-state") as recorder:
        pending: list[Any] = []
        for out in outs:
            dest = Destination(out.root)
            fresh = not os.path.lexists(out.path)  # nothing there yet: no file to compare with
            if out.is_dir and not fresh:
                _sweep(out.path)
            entries = out.entries() if only is None else ((r, m) for r, m in out.entries() if m in only)
            for chunk in _chunks(entries, CHUNK):
                rows += _place_chunk(repo, dest, chunk, fill, placer, force, fresh, result)
                if len(rows) >= BATCH:
                    if len(pending) >= 2:  # at most two batches waiting: memory stays bounded
                        result.recorded += pending.pop(0).result()
                    pending.append(recorder.submit(save_rows, repo.state, rows, checked=True))
                    rows = []
        pending.append(recorder.submit(save_rows, repo.state, rows, checked=True))
        result.recorded += sum(f.result() for f in pending)


def _place_chunk(
    repo: Any,
    dest: Destination,
    chunk: list[tuple[str, str]],
    fill: CacheFill,
    placer: Placer,
    force: bool,
    fresh: bool,
    result: PullResult,
) -> list[Any]:
    todo: list[tuple[str, str]] = []  # (workspace path, md5)
    present: list[tuple[str, str]] = []  # there as some regular file: right bytes or not?
    rows: list[Any] = []  # (path, md5, stat_result)
    for rel, md5 in chunk:
        if md5 in fill.missing:
            continue
        try:
            full = dest.path(rel)
        except UnsafePathError as err:
            result.failed.append((rel, str(err)))
            continue
        kind = "absent" if fresh else _workspace_kind(full, fill.path(md5))
        if kind == "absent":
            todo.append((full, md5))
        elif kind == "linked":
            result.unchanged += 1
        else:
            present.append((full, md5))
    if present:
        known = known_md5s(repo.state, [p for p, _ in present])
        for full, md5 in present:
            if known.get(full) == md5:
                result.unchanged += 1
            elif _md5_file(full) == md5:
                result.unchanged += 1
                rows += _stat_row(full, md5)
            elif force:
                todo.append((full, md5))
            else:
                result.conflicts.append(full)
    for full, md5 in todo:
        if not fill.wait(md5):
            continue  # not fetched: reported with the remote's key
        dest.parent(full)
        error = _place_one(placer, fill.path(md5), full)
        if error:
            result.failed.append((full, error))
        else:
            result.placed += 1
            rows += _stat_row(full, md5)
    return rows


def _workspace_kind(full: str, cache_path: str) -> str:
    """``absent``, ``linked`` (a hard or symbolic link to the cache object) or ``file``."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return "absent"
    if os.path.islink(full):
        return "linked" if os.readlink(full) == cache_path else "file"
    try:
        cst = os.stat(cache_path)
    except OSError:
        return "file"
    return "linked" if (st.st_ino, st.st_dev) == (cst.st_ino, cst.st_dev) else "file"


def _place_one(placer: Placer, cache_path: str, full: str) -> str:
    try:
        placer.place(cache_path, full)
    except OSError as err:
        return f"cannot place {full}: {err.strerror or err}; check free space and permissions"
    return ""


def _stat_row(full: str, md5: str) -> list[tuple[str, str, os.stat_result]]:
    """``[(path, md5, stat)]`` of a file just placed or confirmed (as DVC will see it), ``[]`` if it is gone."""
    try:
        return [(full, md5, os.stat(full))]
    except OSError:
        return []


def _sweep(folder: str) -> None:
    """Remove placement temp files a killed run left in a workspace folder."""
    if not os.path.isdir(folder):
        return
    temps = []
    for root, _dirs, names in os.walk(folder):
        rel = os.path.relpath(root, folder)
        temps += [n if rel == "." else f"{rel}/{n}" for n in names if is_temp(n)]
    Destination(folder).remove_temps(temps, locked=False)


def _chunks(it: Iterator[tuple[str, str]], n: int) -> Iterator[list[tuple[str, str]]]:
    while chunk := list(islice(it, n)):
        yield chunk


def _md5_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()
