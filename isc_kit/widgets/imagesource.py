"""Where widgets get image bytes: a local tree, or S3 read lazily (same source as fetch) with a local cache.

Both kinds answer the same questions: the bytes of some manifest entries (:meth:`read_many`),
a cache token for the current bytes without reading them (:meth:`token`, used to find cached
thumbnails), and each entry's verification state (:meth:`state`). Constructors touch nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ChecksumMismatchError, IscKitError, ObjectNotFoundError
from ..manifest import Manifest
from ..outputs import write_output
from ..source import Source, make_filesystem, read_objects, resolve_source

logger = logging.getLogger(__name__)

VERIFIED = "verified"
MISSING = "missing"
CORRUPT = "corrupt"
UNCHECKED = "unchecked (md5 unknown)"
NOT_CACHED = "not cached yet"
STATES = (VERIFIED, MISSING, CORRUPT, UNCHECKED, NOT_CACHED)
CACHE_ENV = "ISC_KIT_WIDGET_CACHE"


def default_cache_dir() -> Path:
    """``$ISC_KIT_WIDGET_CACHE``, else ``$XDG_CACHE_HOME/isc_kit/widgets`` (``~/.cache/...``); read now."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "isc_kit" / "widgets"


@dataclass(frozen=True)
class Entry:
    """One manifest row as plain Python values."""

    image_id: str
    relpath: str
    md5: str | None
    size: int | None


def entries(manifest: Manifest, ids: Iterable[str] | None = None) -> list[Entry]:
    """Rows of ``manifest`` (all, or those of ``ids`` in that order; unknown ids are skipped)."""
    if ids is None:
        rows: Iterable[int] = range(len(manifest))
    else:
        found = (bisect_left(manifest.ids, i) for i in ids)
        rows = [r for r, i in zip(found, ids, strict=False) if r < len(manifest) and manifest.ids[r] == i]
    return [Entry(manifest.ids[r], manifest.relpaths[r], manifest.md5(r), manifest.size(r)) for r in rows]


def _short(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:24]


class ImageSource(Protocol):
    """What the widgets need from a place that holds images."""

    def describe(self) -> str: ...

    def token(self, manifest: Manifest, entry: Entry) -> str | None: ...

    def read_many(self, manifest: Manifest, items: Sequence[Entry]) -> dict[str, bytes | IscKitError]: ...

    def state(self, manifest: Manifest, entry: Entry) -> str: ...

    def local_path(self, manifest: Manifest, entry: Entry) -> Path | None: ...


class LocalImages:
    """Images in a local folder: ``root/<relpath>`` (a fetch destination, ``layout="dest"``) or
    ``root/<set prefix><relpath>`` (a copy of the bucket's key layout, ``layout="bucket"``).
    """

    def __init__(self, root: str | os.PathLike[str], *, layout: str = "dest"):
        if layout not in ("dest", "bucket"):
            raise ValueError(f"layout must be 'dest' or 'bucket', not {layout!r}")
        self.root = Path(root)
        self.layout = layout
        self._states: dict[tuple[str, int, int], str] = {}

    def describe(self) -> str:
        return f"local folder {self.root}"

    def path(self, manifest: Manifest, entry: Entry) -> Path:
        rel = manifest.key(entry.relpath) if self.layout == "bucket" else entry.relpath
        return self.root / rel

    def local_path(self, manifest: Manifest, entry: Entry) -> Path | None:
        p = self.path(manifest, entry)
        return p if p.is_file() else None

    def token(self, manifest: Manifest, entry: Entry) -> str | None:
        p = self.path(manifest, entry)
        try:
            st = p.stat()
        except OSError:
            return None
        return "f-" + _short(p.resolve(), st.st_size, st.st_mtime_ns)

    def read_many(self, manifest: Manifest, items: Sequence[Entry]) -> dict[str, bytes | IscKitError]:
        out: dict[str, bytes | IscKitError] = {}
        for e in items:
            p = self.path(manifest, e)
            try:
                out[e.image_id] = p.read_bytes()
            except OSError:
                out[e.image_id] = ObjectNotFoundError(
                    f"{p}: not in the local tree; fetch it (isc-kit fetch) or point the widget at S3"
                )
        return out

    def state(self, manifest: Manifest, entry: Entry) -> str:
        """The entry's state as :func:`isc_kit.local.compare` judges it (memoised by path, size and mtime)."""
        path = self.path(manifest, entry)
        try:
            st = path.lstat()
        except OSError:
            return MISSING
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._states:
            self._states[key] = self._compare(manifest, entry)
        return self._states[key]

    def _compare(self, manifest: Manifest, entry: Entry) -> str:
        from .. import local

        one = Manifest.from_rows(
            manifest.set_name,
            manifest.bucket,
            manifest.prefix,
            [(entry.image_id, entry.relpath, entry.md5, entry.size)],
        )
        root = self.root / manifest.prefix if self.layout == "bucket" else self.root
        dest = local.Destination(root)
        status = local.compare(
            one, dest, scan=dest.scan_paths([entry.relpath]), record=self.layout == "dest"
        ).status[0]
        return {local.VERIFIED: VERIFIED, local.UNVERIFIED: UNCHECKED, local.CORRUPT: CORRUPT}.get(
            status, MISSING
        )


class S3Images:
    """Images read lazily from the bucket (real or embedded S3) and kept in a local cache.

    A download is MD5-checked against the manifest before it enters the cache; cached copies
    are content-addressed by MD5, so they are shared across endpoints and never stale.
    """

    def __init__(
        self,
        source: Source | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        fs: Any = None,
    ):
        self._source = source
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._fs = fs
        self._failed: dict[str, str] = {}

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = resolve_source()
        return self._source

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            self._cache_dir = default_cache_dir()
        return self._cache_dir

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = make_filesystem(self.source)
        return self._fs

    def describe(self) -> str:
        return f"{self.source.describe()}, cached in {self.cache_dir / 'objects'}"

    def _url_path(self, manifest: Manifest, entry: Entry) -> str:
        return f"{self.source.bucket_name}/{manifest.key(entry.relpath)}"

    def cache_path(self, manifest: Manifest, entry: Entry) -> Path:
        objects = self.cache_dir / "objects"
        if entry.md5:
            return objects / entry.md5[:2] / f"{entry.md5}.jpg"
        where = self.source.endpoint_url or "aws"
        return objects / "by-key" / f"{_short(where, self._url_path(manifest, entry))}.jpg"

    def local_path(self, manifest: Manifest, entry: Entry) -> Path | None:
        p = self.cache_path(manifest, entry)
        return p if p.is_file() else None

    def token(self, manifest: Manifest, entry: Entry) -> str | None:
        if entry.md5:
            return "m-" + entry.md5
        where = self.source.endpoint_url or "aws"
        return "k-" + _short(where, self._url_path(manifest, entry))

    def read_many(self, manifest: Manifest, items: Sequence[Entry]) -> dict[str, bytes | IscKitError]:
        out: dict[str, bytes | IscKitError] = {}
        todo: dict[str, Entry] = {}
        for e in items:
            cached = self.cache_path(manifest, e)
            if cached.is_file():
                out[e.image_id] = cached.read_bytes()
            else:
                todo[self._url_path(manifest, e)] = e
        if not todo:
            return out
        logger.debug("reading %d images from %s", len(todo), self.source.describe())
        got = read_objects(self.source, [manifest.key(e.relpath) for e in todo.values()], fs=self.fs)
        for e, data in zip(todo.values(), got, strict=True):
            if isinstance(data, IscKitError):
                self._failed[e.image_id] = MISSING if isinstance(data, ObjectNotFoundError) else str(data)
                out[e.image_id] = data
                continue
            actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if e.md5 and actual != e.md5:
                self._failed[e.image_id] = CORRUPT
                out[e.image_id] = ChecksumMismatchError(
                    e.relpath, e.md5, actual, action="it was not cached and is shown as corrupt"
                )
                continue
            self._failed.pop(e.image_id, None)
            write_output(self.cache_path(manifest, e), data, make_parents=True)
            out[e.image_id] = data
        return out

    def state(self, manifest: Manifest, entry: Entry) -> str:
        failed = self._failed.get(entry.image_id)
        if failed in (MISSING, CORRUPT):
            return failed
        if self.cache_path(manifest, entry).is_file():
            return VERIFIED if entry.md5 else UNCHECKED
        return NOT_CACHED


def image_source(
    root: str | os.PathLike[str] | None = None,
    *,
    layout: str = "dest",
    source: Source | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LocalImages | S3Images:
    """A local tree when ``root`` is given, else lazy S3 reads through ``source`` (default: resolved now)."""
    if root is not None:
        return LocalImages(root, layout=layout)
    return S3Images(source, cache_dir=cache_dir)
