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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ._dvcfiles import (
    CACHE_MODE,
    HASH_NAME,
    DvcRepo,
    add_to_gitignore,
    dvcfile_text,
    find_repo,
    write_text_atomic,
    write_tree,
)
from ._dvcfiles import tree_bytes as tree_bytes  # re-exported: tests import it from here
from ._dvcfiles import tree_oid as tree_oid
from .errors import ChecksumMismatchError, DvcError, InputFileError, Problem
from .manifest import Manifest

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
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unverified or self.mismatched or self.extra)

    def raise_if_blocked(self, manifest_path: str = "manifest") -> None:
        """One clear error naming the first problem of each kind and what to run."""
        where = str(self.path)
        if self.mismatched:
            rel, expected, actual = self.mismatched[0]
            raise ChecksumMismatchError(
                f"{where}/{rel}", expected, actual, action=f"nothing was pinned ({len(self.mismatched)} bad)"
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
    """Check ``path`` against ``manifest``: every file present, verified (or hashed), nothing extra."""
    from .records import load_verified, verified_md5

    root = Path(path)
    plan = PinPlan(root)
    if not root.is_dir():
        plan.missing = list(manifest.table["relpath"])
        return plan
    records = load_verified(root)
    md5s = [None if isinstance(m, type(pd.NA)) else m for m in manifest.table["md5"]]
    expected: dict[str, str | None] = dict(zip(manifest.table["relpath"], md5s, strict=True))
    to_hash: list[tuple[str, int]] = []
    base = str(root) + os.sep
    for rel, want in expected.items():
        try:
            st = os.stat(base + rel)
        except FileNotFoundError:
            plan.missing.append(rel)
            continue
        got = verified_md5(root, rel, st, records=records)
        if got is not None and want is not None and got == want:
            plan.entries.append(PinEntry(rel, got, st.st_size))
        elif hash_unverified:
            to_hash.append((rel, st.st_size))
        else:
            plan.unverified.append(rel)
    if to_hash:
        plan.entries += _hash_all(root, to_hash, expected, plan, jobs)
    plan.extra = sorted(set(_walk(root)) - expected.keys())
    plan.entries.sort(key=lambda e: e.relpath)
    return plan


def _hash_all(
    root: Path, items: list[tuple[str, int]], expected: dict[str, Any], plan: PinPlan, jobs: int | None
) -> list[PinEntry]:
    logger.info("hashing %d unverified files in %s", len(items), root)
    with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 1)) as pool:
        md5s = list(pool.map(lambda item: file_md5(root / item[0]), items))
    out = []
    for (rel, size), got in zip(items, md5s, strict=True):
        want = expected[rel]
        if isinstance(want, str) and want != got:
            plan.mismatched.append((rel, want, got))
        else:
            out.append(PinEntry(rel, got, size, hashed=True))
    return out


def _walk(root: Path) -> Iterable[str]:
    """Relative POSIX paths of every file below ``root``."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        with os.scandir(root / prefix if prefix else root) as it:
            for entry in it:
                rel = f"{prefix}/{entry.name}" if prefix else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                else:
                    yield rel


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
) -> PinResult:
    """Hard-link the verified files of ``path`` into the DVC cache, write the ``.dir`` object and ``PATH.dvc``.

    Raises before touching anything when a file is missing, unverified (and ``hash_unverified``
    is off), contradicts the manifest, or the folder holds files the manifest does not list.
    """
    start = time.perf_counter()
    target = Path(os.path.abspath(path))
    repo = find_repo(target)
    plan = plan_pin(manifest, target, hash_unverified=hash_unverified, jobs=jobs)
    plan.raise_if_blocked(manifest_path)
    linked, cached = link_entries(repo, target, plan.entries, progress=progress)
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
        hashed=sum(e.hashed for e in plan.entries),
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
    repo: DvcRepo, root: Path, entries: Iterable[PinEntry], *, progress: Any = None
) -> tuple[int, int]:
    """Hard-link each file into the cache as read-only; returns (linked, already cached)."""
    entries = list(entries)
    if progress is not None:
        progress.set_size(len(entries))
    linked = cached = 0
    made: set[str] = set()
    objects = str(repo.cache / "files" / HASH_NAME) + os.sep
    base = str(root) + os.sep
    for e in entries:
        folder = objects + e.md5[:2]
        dst = folder + os.sep + e.md5[2:]
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        try:
            os.link(base + e.relpath, dst)
        except FileExistsError:
            cached += 1
        except OSError as err:
            if err.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise DvcError(
                    f"cannot hard-link {base + e.relpath} into the DVC cache {repo.cache} ({err.strerror}); "
                    "put the cache on the same filesystem (`dvc cache dir`) or use `dvc add`"
                ) from err
            raise
        else:
            os.chmod(dst, CACHE_MODE)
            linked += 1
        if progress is not None:
            progress.relative_update(1)
    return linked, cached


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
    numbers = pd.Series([int(i[1:]) for i in manifest.table["image_id"]], dtype="int64")
    names = [shard_name(manifest, n, size) for n in numbers]
    return {name: manifest.subset([x == name for x in names]) for name in dict.fromkeys(names)}


def pin_shards(
    manifest: Manifest,
    path: str | os.PathLike[str],
    size: int,
    *,
    hash_unverified: bool = False,
    manifest_path: str = "MANIFEST",
    jobs: int | None = None,
) -> list[PinResult]:
    """Pin ``PATH/<shard>/`` folders of ``size`` ids each, one ``.dvc`` file per shard.

    Files fetched flat into ``PATH`` are first moved (renamed, same filesystem) into their shard
    folder, carrying their verified records along; every shard is planned before any is pinned.
    """
    from .records import RecordWriter, load_verified

    root = Path(os.path.abspath(path))
    find_repo(root)
    shards = split_shards(manifest, size)
    flat = load_verified(root) if root.is_dir() else {}
    for name, part in shards.items():
        dest = root / name
        moved = []
        for rel in part.table["relpath"]:
            src = root / rel
            if src.is_file() and not (dest / rel).exists():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dest / rel)
                if rel in flat:
                    moved.append((rel, *flat[rel]))
        if moved:
            with RecordWriter(dest) as writer:
                writer.add_many(moved)
            logger.info("moved %d files into shard %s", len(moved), name)
    plans = {
        name: plan_pin(part, root / name, hash_unverified=hash_unverified, jobs=jobs)
        for name, part in shards.items()
    }
    for plan in plans.values():
        plan.raise_if_blocked(manifest_path)
    return [
        pin(part, root / name, hash_unverified=hash_unverified, manifest_path=manifest_path, jobs=jobs)
        for name, part in shards.items()
    ]
