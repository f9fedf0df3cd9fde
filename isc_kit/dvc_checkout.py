"""Reading DVC ``.dir`` objects compactly, and placing cache files into the workspace as ``dvc checkout`` does.

A ``.dir`` object of a million entries is ~70 MB of JSON; ``json.loads`` would make a million
dicts (~400 MB). :func:`iter_listing` walks DVC's canonical bytes with one regular expression
instead, one ``(relpath, md5)`` at a time, and falls back to ``json`` for anything else.

:class:`Placer` links or copies a cache file to its workspace path the way DVC's checkout
does for the repository's ``cache.type`` list (default ``reflink,copy``): the first type that
works is kept, a type the file system refuses is dropped for the rest of the run. Each file is
made under a temp name and renamed into place by :func:`isc_kit.placement.placing`, so an
interrupted run never leaves a partial file under a final name.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from collections.abc import Iterator

from .errors import DvcError
from .placement import placing

_ENTRY = re.compile(rb'\{"md5": "([0-9a-f]{32})", "relpath": "((?:[^"\\]|\\.)*)"\}')
#: errnos DVC treats as "this link type is not available here" (dvc_objects' generic transfer)
_UNSUPPORTED = {
    errno.EPERM,
    errno.ENOTSUP,
    errno.EXDEV,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EAGAIN,
}
_FICLONE = 0x40049409
_UMASK = os.umask(0)
os.umask(_UMASK)
_CHUNK = 1 << 20
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")


def iter_listing(data: bytes) -> Iterator[tuple[str, str]]:
    """``(relpath, md5)`` of each entry of a ``.dir`` object's bytes, in their (sorted) order."""
    count = 0
    for m in _ENTRY.finditer(data):
        raw = m.group(2)
        rel = json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8")
        count += 1
        yield rel, m.group(1).decode("ascii")
    if count != data.count(b'"relpath"'):  # not DVC's canonical form: read it as plain JSON
        if count:
            raise DvcError("a .dir object mixes formats; run `dvc pull` for it")  # pragma: no cover
        for entry in json.loads(data):
            yield entry["relpath"], entry["md5"]


def listing_size(data: bytes) -> int:
    return data.count(b'"relpath"')


class Placer:
    """Put cache files at workspace paths with the first link type that works, in ``cache.type`` order."""

    def __init__(self, link_types: list[str]):
        unknown = [t for t in link_types if t not in LINK_TYPES]
        if unknown or not link_types:
            raise DvcError(f"cache.type {','.join(link_types)} is not one of {', '.join(LINK_TYPES)}")
        self.types = list(link_types)
        self.used: list[str] = []
        self._lock = threading.Lock()

    def place(self, cache_path: str, dest: str) -> str:
        """Make ``dest`` the cache file's bytes; returns the link type used."""
        while True:
            kind = self.types[0] if self.types else ""
            if not kind:
                raise DvcError(
                    f"no cache.type left to place {dest} (the file system refused them all); "
                    "set one that works with `dvc config cache.type copy`"
                )
            made = False
            try:
                with placing(dest) as p:
                    _MAKERS[kind](cache_path, p.tmp)
                    made = True
            except OSError as err:
                if made or kind == "copy" or err.errno not in _UNSUPPORTED:
                    raise
                with self._lock:
                    if self.types and self.types[0] == kind:
                        self.types.pop(0)
                continue
            if kind not in self.used:
                self.used.append(kind)
            return kind


def _reflink(src: str, dst: str) -> None:
    import fcntl

    fin = os.open(src, os.O_RDONLY)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            fcntl.ioctl(fout, _FICLONE, fin)
        finally:
            os.close(fout)
    finally:
        os.close(fin)
    os.chmod(dst, 0o666 & ~_UMASK)  # a clone may carry the cache's read-only mode; DVC resets it


def _hardlink(src: str, dst: str) -> None:
    os.link(src, dst)


def _symlink(src: str, dst: str) -> None:
    os.symlink(src, dst)


def _copy(src: str, dst: str) -> None:
    """A plain copy, writable (umask) while the cache stays read-only; two reads and one write for a small file."""
    fin = os.open(src, os.O_RDONLY)
    try:
        fout = os.open(dst, _OPEN_NEW, 0o666)
        try:
            while chunk := os.read(fin, _CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fout, view) :]
        finally:
            os.close(fout)
    finally:
        os.close(fin)


_MAKERS = {"reflink": _reflink, "hardlink": _hardlink, "symlink": _symlink, "copy": _copy}
