"""Pin a verified local tree into DVC without hashing it again.

DVC 3 addresses content by the plain MD5 of a file (``hash: md5``), the number the publisher
ships. A file that the fetch verified against that MD5 can therefore go straight into the DVC
cache (``<cache>/files/md5/<2 hex>/<30 hex>``, hard-linked and read-only, never copied), and
the directory object and ``PATH.dvc`` can be written exactly as DVC writes them (see
:mod:`isc_kit.dvcfiles`).

Only verified files are pinned: DVC trusts read-only cache files and never re-checks them.
:func:`plan_pin` (in :mod:`isc_kit.pin_plan`) decides what is missing, unverified, extra;
:func:`pin` acts on the plan; :func:`pin_shards` pins one ``.dvc`` per id range.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dvcfiles import (
    LINK_MODES,
    DvcRepo,
    add_to_gitignore,
    dvcfile_text,
    find_repo,
    place_object,
    write_text_atomic,
    write_tree,
)
from .dvcfiles import tree_bytes as tree_bytes  # re-exported: tests import it from here
from .dvcfiles import tree_oid as tree_oid
from .errors import DvcError
from .local import Destination
from .manifest import Manifest
from .pin_plan import PinEntry, PinPlan, file_md5, plan_pin
from .progress import as_progress

logger = logging.getLogger(__name__)

__all__ = [
    "PinEntry",
    "PinPlan",
    "PinResult",
    "file_md5",
    "link_entries",
    "pin",
    "pin_shards",
    "plan_pin",
    "shard_name",
    "split_shards",
]


# ---------------------------------------------------------------------------------------------- act


@dataclass
class PinResult:
    """What :func:`pin` did."""

    path: str
    dvcfile: str
    oid: str
    nfiles: int
    bytes: int
    linked: int
    already_cached: int
    hashed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pin(
    manifest: Manifest,
    path: str | os.PathLike[str],
    *,
    hash_unverified: bool = False,
    manifest_path: str = "MANIFEST",
    jobs: int | None = None,
    progress: Any = None,
    link: str = "hardlink",
) -> PinResult:
    """Place the verified files of ``path`` into the DVC cache, write the ``.dir`` object and ``PATH.dvc``.

    ``link``: ``hardlink`` (default: no second copy on disk, but the workspace file *is* the cache
    object, so an in-place write changes both; ``isc-kit verify --repair`` heals that),
    ``reflink`` (copy-on-write clone, where the file system has them) or ``copy`` (twice the disk,
    nothing shared). Raises before touching anything when a file is missing, unverified (and
    ``hash_unverified`` is off), contradicts the manifest, is not a regular file, or the folder
    holds files the manifest does not list.
    """
    if link not in LINK_MODES:
        raise DvcError(f"unknown link mode {link!r}; choose one of {', '.join(LINK_MODES)}")
    start = time.perf_counter()
    target = Path(os.path.abspath(path))
    repo = find_repo(target)
    plan = plan_pin(manifest, target, hash_unverified=hash_unverified, jobs=jobs)
    plan.raise_if_blocked(manifest_path)
    linked, cached = link_entries(repo, target, plan.entries, progress=progress, mode=link)
    oid = write_tree(repo, ((e.relpath, e.md5) for e in plan.entries))
    size = sum(e.size for e in plan.entries)
    dvcfile = target.with_name(target.name + ".dvc")
    write_text_atomic(dvcfile, dvcfile_text(target.name, oid, size, len(plan.entries)))
    add_to_gitignore(target)
    result = PinResult(
        path=str(path),
        dvcfile=str(dvcfile),
        oid=oid,
        nfiles=len(plan.entries),
        bytes=size,
        linked=linked,
        already_cached=cached,
        hashed=plan.hashed + sum(e.hashed for e in plan.entries),
        seconds=time.perf_counter() - start,
    )
    logger.info(
        "pinned %d files (%d linked into the cache, %d already there) as %s",
        result.nfiles,
        linked,
        cached,
        oid,
    )
    from .dvcstate import record_pinned  # DVC's first status after a pin hashes nothing

    record_pinned(repo.root, target, plan.entries)
    return result


def link_entries(
    repo: DvcRepo, root: Path, entries: Iterable[PinEntry], *, progress: Any = None, mode: str = "hardlink"
) -> tuple[int, int]:
    """Place each verified file into the cache read-only (``mode``: hardlink, reflink or copy); (placed, already there).

    An object already in the cache counts only when it is this very file (same inode) or its bytes
    hash to the md5; otherwise it is replaced (a cache object corrupted in place, say).
    """
    progress = as_progress(progress)
    entries = list(entries)
    progress.set_size(len(entries))
    linked = cached = 0
    made: set[str] = set()
    base = str(root) + os.sep
    for e in entries:
        dst = str(repo.object_path(e.md5))
        folder = os.path.dirname(dst)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        src = base + e.relpath
        try:
            _place(src, dst, mode, repo)
        except FileExistsError:
            if _vouched(src, dst, e.md5):
                cached += 1
            else:
                logger.warning("%s: the cache object does not hold the verified bytes; replacing it", dst)
                os.unlink(dst)
                _place(src, dst, mode, repo)
                linked += 1
        else:
            linked += 1
        progress.relative_update(1)
    return linked, cached


def _place(src: str, dst: str, mode: str, repo: DvcRepo) -> None:
    try:
        place_object(src, dst, mode)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno in (
            errno.EXDEV,
            errno.EPERM,
            errno.EMLINK,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EINVAL,
        ):
            other = "copy" if mode != "copy" else "dvc add"
            raise DvcError(
                f"cannot place {src} into the DVC cache {repo.cache} by {mode} ({err.strerror}); use --link {other}"
                + (
                    " or put the cache on the same file system (`dvc cache dir`)"
                    if mode == "hardlink"
                    else ""
                )
            ) from err
        raise


def _vouched(src: str, dst: str, md5: str) -> bool:
    """Whether the existing cache object ``dst`` holds the bytes of ``md5`` (the verified ``src``)."""
    a, b = os.lstat(src), os.lstat(dst)
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return True  # the verified file itself
    return b.st_size == a.st_size and file_md5(dst) == md5


# ---------------------------------------------------------------------------------------------- shards


def shard_name(manifest: Manifest, number: int, size: int) -> str:
    """``R000000-R049999``: the id range a shard covers (stable when the selection changes)."""
    image_set = manifest.image_set
    first = number // size * size
    return f"{image_set.format_id(first)}-{image_set.format_id(min(first + size - 1, image_set.last))}"


def split_shards(manifest: Manifest, size: int) -> dict[str, Manifest]:
    """The manifest cut into fixed id ranges of ``size`` ids (empty ranges left out)."""
    if size < 1:
        raise DvcError(f"shard size must be 1 or more, not {size}")
    rows: dict[str, list[int]] = {}
    for row, image_id in enumerate(manifest.ids):
        rows.setdefault(shard_name(manifest, int(image_id[1:]), size), []).append(row)
    return {name: manifest.take(part) for name, part in rows.items()}


def pin_shards(
    manifest: Manifest,
    path: str | os.PathLike[str],
    size: int,
    *,
    hash_unverified: bool = False,
    manifest_path: str = "MANIFEST",
    jobs: int | None = None,
    link: str = "hardlink",
) -> list[PinResult]:
    """Pin ``PATH/<shard>/`` folders of ``size`` ids each, one ``.dvc`` file per shard.

    Files fetched flat into ``PATH`` are first moved (renamed, same filesystem) into their shard
    folder, carrying their verified records along; every shard is planned before any is pinned.
    """
    from .records import iter_entries

    root = Path(os.path.abspath(path))
    find_repo(root)
    shards = split_shards(manifest, size)
    wanted = set(manifest.relpaths)
    flat = {rel: (s, m, h) for rel, s, m, h in iter_entries(Destination(root).record_path) if rel in wanted}
    for name, part in shards.items():
        dest = root / name
        moved = []
        for rel in part.relpaths:
            src = root / rel
            if src.is_file() and not src.is_symlink() and not (dest / rel).exists():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dest / rel)  # same file system: mtime and bytes stay, so the record line does
                if rel in flat:
                    moved.append((rel, *flat[rel]))
        if moved:
            with Destination(dest).record_writer() as writer:
                writer.add_many(moved)
            logger.info("moved %d files into shard %s", len(moved), name)
    plans = {
        name: plan_pin(part, root / name, hash_unverified=hash_unverified, jobs=jobs)
        for name, part in shards.items()
    }
    for plan in plans.values():
        plan.raise_if_blocked(manifest_path)
    return [
        pin(
            part,
            root / name,
            hash_unverified=hash_unverified,
            manifest_path=manifest_path,
            jobs=jobs,
            link=link,
        )
        for name, part in shards.items()
    ]
