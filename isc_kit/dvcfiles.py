"""DVC's on-disk formats, written exactly as DVC writes them: the repository and its cache, the
``.dir`` object, the ``.dvc`` file and the ``.gitignore`` line.

DVC 3 addresses content by the plain MD5 of a file (``hash: md5``): ``<cache>/files/md5/<2 hex>/<30
hex>``. A directory object is a JSON list of ``{"md5", "relpath"}`` sorted by relpath,
``json.dumps(..., sort_keys=True)`` with default separators, whose id is the MD5 of those bytes plus
``.dir``. Metadata writers go through :func:`isc_kit.outputs.write_output` (temp file, fsync, ``os.replace``) and cache
objects through :func:`isc_kit.placement.placing`, so a killed writer leaves no partial object under a final
name; its temp file is removed by the next run.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._proc import pid_alive
from .errors import DvcError
from .local import META_DIR
from .outputs import write_output, write_text
from .placement import placing

CACHE_MODE = 0o444
HASH_NAME = "md5"
#: How a verified file is placed into the cache: a hard link (no extra disk, but the workspace file
#: *is* the cache object), a reflink (copy-on-write clone, where the file system has them) or a copy.
LINK_MODES = ("hardlink", "reflink", "copy")
_FICLONE = 0x40049409  # Linux ioctl: clone a file's extents (btrfs, XFS, bcachefs...)


# ---------------------------------------------------------------------------------------------- formats


def tree_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """DVC's ``.dir`` object for ``(relpath, md5)`` pairs: sorted by relpath, canonical JSON, UTF-8."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries, key=lambda e: e[0])]
    return json.dumps(listing, sort_keys=True).encode("utf-8")


def tree_oid(data: bytes) -> str:
    """The id DVC gives a ``.dir`` object: MD5 of its bytes plus ``.dir``."""
    return hashlib.md5(data).hexdigest() + ".dir"


def dvcfile_text(path: str, oid: str, size: int | None, nfiles: int) -> str:
    """The ``.dvc`` file ``dvc add`` writes for a folder (same YAML dumper and key order).

    ``size`` None (sizes unknown, as for a publisher CSV's entries) leaves the key out, as DVC does for
    an output whose size it does not know; never a made-up 0.
    """
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out: dict[str, object] = {"md5": oid, "size": size, "nfiles": nfiles, "hash": HASH_NAME, "path": path}
    if size is None:
        del out["size"]
    stream = io.StringIO()
    yaml.dump({"outs": [out]}, stream)
    return stream.getvalue()


# ---------------------------------------------------------------------------------------------- repo


@dataclass(frozen=True)
class DvcRepo:
    """A DVC repository root and its local cache folder (``.dvc/cache`` unless configured)."""

    root: Path
    cache: Path
    cache_type: str = "reflink,copy"  # DVC's default: how checkout places cache objects in the workspace

    def object_path(self, oid: str) -> Path:
        """``<cache>/files/md5/<2 hex>/<30 hex>``."""
        return self.cache / "files" / HASH_NAME / oid[:2] / oid[2:]


def find_repo(start: str | os.PathLike[str]) -> DvcRepo:
    """The DVC repository containing ``start`` (a path that may not exist yet)."""
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return DvcRepo(folder, *_cache_config(folder / ".dvc"))
    raise DvcError(f"{start}: not inside a DVC repository; run `dvc init` in the project folder first")


def _cache_config(dvc_dir: Path) -> tuple[Path, str]:
    """``cache.dir`` (relative to ``.dvc``) and ``cache.type``, ``.dvc/config.local`` over ``.dvc/config``."""
    from configobj import ConfigObj, ConfigObjError

    cache_dir: Path | None = None
    cache_type: str | None = None
    for name in ("config.local", "config"):
        path = dvc_dir / name
        if not path.exists():
            continue
        try:
            conf = ConfigObj(str(path), encoding="utf-8")
        except ConfigObjError as err:
            raise DvcError(f"{path}: cannot read the DVC config ({err}); fix it with `dvc config`") from None
        section = conf.get("cache", {})
        if cache_dir is None and section.get("dir"):
            p = Path(section["dir"])
            cache_dir = p if p.is_absolute() else (dvc_dir / p).resolve()
        if cache_type is None and section.get("type"):
            value = section["type"]
            cache_type = ",".join(value) if isinstance(value, list) else str(value)
    return cache_dir or dvc_dir / "cache", cache_type or "reflink,copy"


# ---------------------------------------------------------------------------------------------- write


def write_tree(repo: DvcRepo, entries: Iterable[tuple[str, str]]) -> str:
    """Write the ``.dir`` object into the cache (read-only) and return its id."""
    data = tree_bytes(entries)
    oid = tree_oid(data)
    dst = repo.object_path(oid)
    if dst.parent.is_dir():
        _remove_legacy_temps(dst.parent, ".*.tmp-*")
    if not dst.exists():
        write_output(dst, data, make_parents=True, mode=CACHE_MODE)
    return oid


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` (e.g. ``PATH.dvc``) atomically through the one output writer."""
    if path.parent.is_dir():
        _remove_legacy_temps(path.parent, f"{glob.escape('.' + path.name)}.tmp-*")
    write_text(path, text, make_parents=True)


def _remove_legacy_temps(folder: Path, pattern: str) -> None:
    """Delete ``<name>.tmp-<pid>`` files (the scheme before :mod:`isc_kit.outputs`) whose writer is gone."""
    for tmp in folder.glob(pattern):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


#: Characters DVC escapes with a backslash in a ``.gitignore`` entry (its scmrepo calls pathspec's
#: ``GitWildMatchPattern.escape``, which escapes exactly these), so git reads the name literally.
GITIGNORE_SPECIAL = "\\[]!*#?"


def gitignore_entry(name: str) -> str:
    """The line ``dvc add`` writes to the sibling ``.gitignore`` for ``name``: ``/`` + the escaped name."""
    return "/" + "".join(f"\\{c}" if c in GITIGNORE_SPECIAL else c for c in name)


def add_to_gitignore(target: Path) -> None:
    """Add ``target``'s entry to the sibling ``.gitignore`` as ``dvc add`` does, and keep the records out of git.

    A line an older isc_kit wrote unescaped for the same name (which git reads as a glob, so it did
    not ignore the folder) is replaced. The record folder beside the target (``.isc-kit/``) gets its
    own ``.gitignore`` of ``*``, so neither it nor anything in it ever shows in ``git status``.
    """
    ignore = target.parent / ".gitignore"
    line = gitignore_entry(target.name)
    legacy = f"/{target.name}"
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    lines = text.splitlines()
    if legacy != line and legacy in lines:
        lines = [line if x == legacy else x for x in lines]
        write_text(ignore, "\n".join(dict.fromkeys(lines)) + "\n")
    elif line not in lines:
        sep = "" if not text or text.endswith("\n") else "\n"
        write_text(ignore, f"{text}{sep}{line}\n")
    ignore_record_folder(target.parent)


def ignore_record_folder(parent: Path) -> None:
    """Give ``parent/.isc-kit/`` (if it exists) a ``.gitignore`` of ``*``: git then skips the whole folder."""
    folder = parent / META_DIR
    marker = folder / ".gitignore"
    if folder.is_dir() and not marker.exists():
        write_text(marker, "# isc-kit bookkeeping (verified records, locks): never committed\n*\n")


# ---------------------------------------------------------------------------------------------- cache objects


def place_object(src: str, dst: str, mode: str) -> None:
    """Put the bytes of the regular file ``src`` at the cache path ``dst``, read-only (``FileExistsError`` if there).

    ``hardlink`` links (never following a symlink); ``reflink`` clones, ``copy`` copies, both into
    a temp file beside ``dst`` that is renamed only when complete.
    """
    if mode == "hardlink":
        os.link(src, dst, follow_symlinks=False)
        os.chmod(dst, CACHE_MODE)
        return
    if mode not in LINK_MODES:
        raise DvcError(f"unknown link mode {mode!r}; choose one of {', '.join(LINK_MODES)}")
    if os.path.lexists(dst):
        raise FileExistsError(dst)
    with (
        placing(dst, mode=CACHE_MODE) as p,
        open(src, "rb", opener=_nofollow) as fin,
        open(p.tmp, "xb") as fout,
    ):
        if mode == "reflink":
            import fcntl

            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        else:
            import shutil

            shutil.copyfileobj(fin, fout, 1 << 20)


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def heal_shared(dest: str, replaced: Iterable[tuple[str, str, tuple[int, int]]]) -> int:
    """After corrupt files were replaced: cache objects that *were* those files (one inode) get the new bytes.

    ``replaced`` holds ``(path of the new, verified file, its md5, (st_dev, st_ino) of the file it
    replaced)``. A cache object of that md5 with the replaced inode holds the corrupt bytes (an
    in-place write to a hard-linked workspace file changes both); it is swapped for a link to the
    new file. Outside a DVC repository nothing is done. Returns how many objects were healed.
    """
    import logging

    try:
        repo = find_repo(dest)
    except DvcError:
        return 0
    healed = 0
    for path, md5, old in replaced:
        obj = repo.object_path(md5)
        try:
            st = os.lstat(obj)
        except FileNotFoundError:
            continue
        if (st.st_dev, st.st_ino) != old:
            continue
        os.unlink(obj)
        try:
            place_object(path, str(obj), "hardlink")
        except OSError:
            place_object(path, str(obj), "copy")
        healed += 1
    if healed:
        logging.getLogger(__name__).warning(
            "%d DVC cache object(s) were the same file as a corrupt workspace file (hard link) and held its bad "
            "bytes; they now hold the verified ones",
            healed,
        )
    return healed
