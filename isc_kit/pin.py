"""Pin a verified local tree into DVC without hashing it again.

DVC 3 addresses content by the plain MD5 of a file (``hash: md5``), the number the publisher
ships. A file that the fetch verified against that MD5 can therefore go straight into the DVC
cache (``<cache>/files/md5/<2 hex>/<30 hex>``, hard-linked and read-only, never copied), and
the directory object and ``PATH.dvc`` can be written exactly as DVC writes them (see
:mod:`isc_kit._dvcfiles`).

Only verified files are pinned: DVC trusts read-only cache files and never re-checks them.
:func:`plan_pin` decides (what is missing, unverified, extra); :func:`pin` acts on the plan.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._dvcfiles import (
    LINK_MODES,
    DvcRepo,
    add_to_gitignore,
    dvcfile_text,
    find_repo,
    place_object,
    write_text_atomic,
    write_tree,
)
from ._dvcfiles import tree_bytes as tree_bytes  # re-exported: tests import it from here
from ._dvcfiles import tree_oid as tree_oid
from .errors import ChecksumMismatchError, DvcError, InputFileError, Problem
from .local import MISSING, UNCHECKED, UNVERIFIED, VERIFIED, Destination, compare
from .manifest import Manifest
from .progress import as_progress

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------- hashing


def file_md5(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest() if hasattr(hashlib, "file_digest") else _md5(fh)


def _md5(fh: Any) -> str:
    h = hashlib.md5()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PinEntry:
    relpath: str
    md5: str
    size: int
    hashed: bool = False


@dataclass
class PinPlan:
    """What :func:`pin` would do: entries to pin and everything that stops it."""

    path: Path
    entries: list[PinEntry] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # regular files the manifest does not list
    others: list[str] = field(default_factory=list)  # symlinks, FIFOs, devices: never followed, never pinned
    bad: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why) known wrong without hashing
    writing: list[str] = field(default_factory=list)  # part files of a live fetch
    hashed: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.unverified
            or self.mismatched
            or self.extra
            or self.others
            or self.bad
            or self.writing
        )

    def raise_if_blocked(self, manifest_path: str = "manifest") -> None:
        """One clear error naming the first problem of each kind and what to run."""
        where = str(self.path)
        if self.mismatched:
            rel, expected, actual = self.mismatched[0]
            raise ChecksumMismatchError(
                f"{where}/{rel}", expected, actual, action=f"nothing was pinned ({len(self.mismatched)} bad)"
            )
        if self.writing:
            raise DvcError(
                f"{where} is being written by a running fetch ({self.writing[0]} and {len(self.writing) - 1} more part "
                "files); wait for it to finish, then pin again"
            )
        problems: list[Problem] = []
        hint = ""
        if self.missing:
            problems += [Problem(0, "relpath", r, "listed in the manifest but missing") for r in self.missing]
            hint = f"fetch first: `isc-kit fetch {manifest_path} {where}`"
        if self.unverified:
            problems += [Problem(0, "relpath", r, "no matching verified record") for r in self.unverified]
            hint = hint or (
                f"run `isc-kit verify {manifest_path} {where}` (or pin with --hash to hash them now)"
            )
        if self.bad:
            problems += [Problem(0, "relpath", r, why) for r, why in self.bad]
            hint = hint or f"repair them: `isc-kit verify --repair {manifest_path} {where}`"
        if self.others:
            problems += [
                Problem(0, "relpath", r, "not a regular file (a symlink, FIFO or device): never pinned")
                for r in self.others
            ]
            hint = hint or "replace them with the real files (`isc-kit verify --repair` fetches them)"
        if self.extra:
            problems += [
                Problem(0, "relpath", r, "in the folder but not in the manifest") for r in self.extra
            ]
            hint = hint or f"remove them, or `isc-kit fetch --prune {manifest_path} {where}`"
        if problems:
            raise InputFileError(where, problems, hint=f"nothing was pinned; {hint}")


def plan_pin(
    manifest: Manifest,
    path: str | os.PathLike[str],
    *,
    hash_unverified: bool = False,
    jobs: int | None = None,
) -> PinPlan:
    """Check ``path`` against ``manifest``: every file present, verified (or hashed), nothing else there."""
    root = Path(path)
    plan = PinPlan(root)
    if not root.is_dir():
        plan.missing = list(manifest.relpaths)
        return plan
    dest = Destination(root)
    local = compare(manifest, dest, hash_unknown=hash_unverified, jobs=jobs)
    dest.remove_temps(local.temps, locked=False)
    rels, md5s, sizes = manifest.relpaths, manifest.md5s, local.local_sizes
    for row, state in enumerate(local.status):
        if state == VERIFIED:
            plan.entries.append(PinEntry(rels[row], md5s[row], sizes[row]))
        elif state == MISSING:
            plan.missing.append(rels[row])
        elif state == UNCHECKED or (state == UNVERIFIED and not hash_unverified):
            plan.unverified.append(rels[row])
        elif state == UNVERIFIED:  # no md5 to check against: pin what it is, hashed now
            plan.entries.append(PinEntry(rels[row], file_md5(dest.path(rels[row])), sizes[row], hashed=True))
        elif row in local.actual_md5:
            plan.mismatched.append((rels[row], md5s[row], local.actual_md5[row]))
        else:  # wrong size, or recorded as other bytes: a fetch (or verify --repair) mends it
            plan.bad.append((rels[row], local.reason(row)))
    plan.hashed = local.hashed
    plan.extra = local.extra
    plan.others = sorted(local.others)
    if plan.others:  # a symlink (or FIFO...) at a listed name is refused as what it is, not as "missing"
        refused = set(plan.others)
        plan.missing = [r for r in plan.missing if r not in refused]
    plan.writing = [t for t in local.temps if os.path.lexists(dest.path(t))]
    return plan


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
