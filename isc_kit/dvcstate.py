"""Tell DVC's state database what isc_kit already verified, so DVC never hashes those files again.

DVC keeps, per local file, the hash it computed together with the file's inode, mtime and size
(``dvc_data.hashfile.state.State``, reached as ``Repo(...).state``). When ``dvc status``,
``dvc commit`` or ``dvc push`` meets a file whose inode, mtime and size match an entry, it
takes the hash from there instead of reading the file. A file that isc_kit MD5-checked (a fetch,
a pin, a pull) is recorded here through that API, never by writing its database by hand.

A file is recorded only while it is still the bytes that were verified: its size and
``mtime_ns`` must equal the ones given. If the installed DVC lacks the API this module expects,
nothing is recorded (DVC then hashes as before) and a debug line says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

#: Rows handed to DVC per ``save_many`` call (one SQLite transaction each).
BATCH = 20_000

#: (absolute path, md5, size, mtime_ns) of a file whose bytes were verified.
VerifiedRow = tuple[str, str, int, int]


def record_verified(repo_root: str | os.PathLike[str], rows: Iterable[VerifiedRow]) -> int:
    """Record verified files in the DVC state of the repository at ``repo_root``; returns how many.

    ``rows`` are ``(path, md5, size, mtime_ns)``; paths may be absolute or relative to the repo.
    Files that changed since (size or mtime differ) or are gone are left out. Never raises for
    an unusable DVC: falls back to recording nothing, with a debug log line.
    """
    try:
        from dvc.repo import Repo
    except ImportError as err:  # pragma: no cover - dvc is a dependency
        logger.debug("DVC state not updated: dvc is not importable (%s)", err)
        return 0
    try:
        repo = Repo(os.fspath(repo_root))
    except Exception as err:
        logger.debug("DVC state not updated: cannot open the repository %s (%s)", repo_root, err)
        return 0
    try:
        root = os.fspath(repo_root)
        return save_rows(repo.state, (_absolute(root, r) for r in rows))
    finally:
        repo.close()


def _absolute(root: str, row: VerifiedRow) -> VerifiedRow:
    path = row[0] if os.path.isabs(row[0]) else os.path.join(root, row[0])
    return (os.path.abspath(path), row[1], row[2], row[3])


def save_rows(state: Any, rows: Iterable[VerifiedRow], *, checked: bool = False) -> int:
    """Save rows into an open DVC ``State`` in batches; 0 (and a debug line) if its API is not the expected one.

    ``checked``: the caller stat-ed each file just now (size and mtime are current), so skip re-checking.
    """
    try:
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_objects.fs import LocalFileSystem
    except ImportError as err:
        logger.debug("DVC state not updated: dvc-data's API moved (%s)", err)
        return 0
    if not hasattr(state, "save_many"):
        logger.debug("DVC state not updated: %s has no save_many", type(state).__name__)
        return 0
    fs = LocalFileSystem()
    saved = 0
    batch: list[tuple[str, Any, dict[str, Any]]] = []
    try:
        for path, md5, info in _current(rows, checked):
            batch.append((path, HashInfo("md5", md5), info))
            if len(batch) >= BATCH:
                state.save_many(batch, fs)
                saved += len(batch)
                batch = []
        if batch:
            state.save_many(batch, fs)
            saved += len(batch)
    except (TypeError, AttributeError, KeyError, ValueError) as err:
        logger.debug("DVC state not updated: dvc-data's State API differs (%s: %s)", type(err).__name__, err)
        return saved
    logger.debug("recorded %d verified files in DVC's state", saved)
    return saved


def _current(rows: Iterable[Any], checked: bool = False) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, md5, DVC-style info) for each row whose file is still the verified bytes."""
    if checked:  # rows of (path, md5, stat_result)
        for path, md5, st in rows:
            yield path, md5, stat_info(st)
        return
    for path, md5, size, mtime_ns in rows:
        try:
            st = os.stat(path)  # a symlink into the cache counts as its target, as DVC sees it
        except OSError:
            continue
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            continue
        yield path, md5, stat_info(st)


def stat_info(st: os.stat_result) -> dict[str, Any]:
    """The fields of DVC's local ``fs.info`` that its state keys an entry on."""
    return {"ino": st.st_ino, "mtime": st.st_mtime, "size": st.st_size, "type": "file"}


def known_md5s(state: Any, paths: list[str]) -> dict[str, str]:
    """path -> md5 that DVC's state holds for these (unchanged) files; empty if the API differs."""
    try:
        from dvc_objects.fs import LocalFileSystem
    except ImportError:
        return {}
    infos: dict[str, dict[str, Any]] = {}
    for p in paths:
        try:
            infos[p] = stat_info(os.stat(p))
        except OSError:
            continue
    try:
        found = state.get_many(list(infos), LocalFileSystem(), infos)
        return {p: hi.value for p, _meta, hi in found if hi is not None and hi.name == "md5"}
    except (TypeError, AttributeError, KeyError, ValueError) as err:
        logger.debug("DVC state not read: dvc-data's State API differs (%s)", err)
        return {}


def record_pinned(
    repo_root: str | os.PathLike[str], folder: str | os.PathLike[str], entries: Iterable[Any]
) -> int:
    """Record pinned entries (``.relpath``, ``.md5``, ``.size``) of ``folder``: files just verified or hashed."""
    base = os.path.abspath(folder)

    def rows() -> Iterator[VerifiedRow]:
        for e in entries:
            path = os.path.join(base, e.relpath)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size == e.size:
                yield path, e.md5, st.st_size, st.st_mtime_ns

    return record_verified(repo_root, rows())


def record_tree(folder: str | os.PathLike[str]) -> int:
    """Record every file of ``folder`` that isc_kit's verified record vouches for (after a fetch).

    Does nothing (returns 0) when ``folder`` is not inside a DVC repository.
    """
    from .dvcfiles import find_repo
    from .errors import DvcError
    from .local import Destination
    from .records import iter_entries

    try:
        repo = find_repo(folder)
    except DvcError:
        return 0
    base = os.path.abspath(folder)
    rows = (
        (os.path.join(base, rel), md5, size, mtime)
        for rel, size, mtime, md5 in iter_entries(Destination(base).record_path)
    )
    return record_verified(repo.root, rows)
