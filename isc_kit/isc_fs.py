"""An fsspec filesystem for the ISC sets: ``isc://<set>/<image>``, MD5-checked when a manifest is given.

Registered as the ``isc`` protocol through fsspec's entry point, so any fsspec user can write::

    fsspec.open("isc://reference/R000123.jpg")
    fsspec.filesystem("isc", manifests={"reference": "manifests/reference.pinned"}).cat("reference/R000123.jpg")
    fsspec.open("simplecache::isc://query/Q00012.jpg")

Paths are ``<set>/<relpath>`` (``query``, ``reference``, ``training``, ``phase2``). Reads go through
the configured source (:func:`isc_kit.source.resolve_source`: arguments, then ``ISC_KIT_*``
settings) to an s3fs filesystem (:func:`isc_kit.source.make_filesystem`); when an object cannot be
read, or its bytes contradict the manifest, the other regional mirrors are tried. Every read of an
image listed in a given manifest is checked against its MD5; bytes that differ are never returned.
Read-only; objects are read whole (ISC images are small), so a checked read is all-or-nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from .catalog import REGIONS, SETS
from .errors import ChecksumMismatchError, ConfigError, IscKitError, ObjectNotFoundError
from .placement import place_bytes
from .source import Source, make_filesystem, resolve_source, translate_error

logger = logging.getLogger(__name__)

#: Options fsspec's base class (its listings cache, instance cache) takes; the rest go to s3fs.
_FSSPEC_OPTIONS = ("use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache")


def _read_errors() -> tuple[type[BaseException], ...]:
    """What an s3fs read raises for a failed request (translated by :func:`translate_error`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, ValueError, BotoCoreError, ClientError)


class _Index:
    """A manifest's relpaths (sorted), MD5s and sizes as fixed-width arrays: a lookup without per-row objects."""

    def __init__(self, manifest: Any):
        relpaths = manifest.relpaths.fixed_width()
        md5 = manifest.md5s.fixed_width()
        sizes = (
            np.frombuffer(manifest.sizes, dtype=np.int64).copy() if len(manifest) else np.zeros(0, np.int64)
        )
        if len(relpaths) > 1 and not (relpaths[1:] > relpaths[:-1]).all():  # pinned: sorted already
            order = np.argsort(relpaths, kind="stable")
            relpaths, md5, sizes = relpaths[order], md5[order], sizes[order]
        self.prefix: str = manifest.prefix
        self.relpaths, self.md5, self.sizes = relpaths, md5, sizes

    def find(self, relpath: str) -> int | None:
        key = relpath.encode()
        i = int(np.searchsorted(self.relpaths, key))
        return i if i < len(self.relpaths) and self.relpaths[i] == key else None


class _VerifiedFile(io.BytesIO):
    """The whole (checked) object in memory, with the attributes fsspec callers look for."""

    def __init__(self, data: bytes, path: str):
        super().__init__(data)
        self.size = len(data)
        self.path = path


class IscFileSystem(AbstractFileSystem):
    """``isc://<set>/<relpath>`` over the configured S3 source and its regional mirrors.

    ``manifests`` maps set names to a :class:`~isc_kit.Manifest` or a ``.pinned`` path: reads of
    that set are then MD5-checked and limited to its entries, and ``ls`` lists it without a
    bucket listing. ``bucket``, ``region``, ``endpoint_url`` and ``anon`` override the
    ``ISC_KIT_*`` settings; ``mirrors=False`` reads one region only; other options go to s3fs.
    """

    protocol = "isc"
    root_marker = ""
    cachable = False  # settings are read when a filesystem is made, never reused from an older one

    def __init__(
        self,
        *,
        manifests: dict[str, Any] | None = None,
        bucket: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        anon: bool | None = None,
        mirrors: bool = True,
        **storage_options: Any,
    ):
        base = {k: storage_options.pop(k) for k in _FSSPEC_OPTIONS if k in storage_options}
        super().__init__(**base)
        self.source = resolve_source(
            bucket=bucket,
            region=region,
            endpoint_url=endpoint_url,
            anon=anon,
            storage_options=storage_options,
        )
        self.mirrors = mirrors
        self._manifest_args = dict(manifests or {})
        for name in self._manifest_args:
            if name not in SETS:
                raise ConfigError(f"manifests: {name!r} is not a set; use one of {', '.join(SETS)}")
        self._indexes: dict[str, _Index] = {}
        self._s3: dict[str, Any] = {}

    # -- paths
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for marker in ("isc://", "isc::"):
            if text.startswith(marker):
                text = text[len(marker) :]
        return text.strip("/")

    def _split(self, path: str) -> tuple[str, str]:
        """``(set, relpath)`` of a stripped path; relpath is ``""`` for the set itself."""
        set_name, _, relpath = self._strip_protocol(path).partition("/")
        if set_name not in SETS:
            raise ObjectNotFoundError(
                f"isc://{path}: {set_name!r} is not an ISC set; paths are isc://<set>/<image>, "
                f"sets: {', '.join(SETS)}",
                url=f"isc://{path}",
            )
        return set_name, relpath

    def _index(self, set_name: str) -> _Index | None:
        if set_name not in self._manifest_args:
            return None
        if set_name not in self._indexes:
            from .manifest import Manifest
            from .pinned import load_pinned

            given = self._manifest_args[set_name]
            manifest = given if isinstance(given, Manifest) else load_pinned(given)
            if manifest.set_name != set_name:
                raise ConfigError(f"manifests[{set_name!r}] is a {manifest.set_name} manifest")
            self._indexes[set_name] = _Index(manifest)
        return self._indexes[set_name]

    def _prefix(self, set_name: str) -> str:
        index = self._index(set_name)
        return index.prefix if index is not None else SETS[set_name].prefix

    def _sources(self) -> list[Source]:
        others = [r for r in REGIONS if r != self.source.region] if self.mirrors else []
        return [self.source, *(self.source.in_region(r) for r in others)]

    def _fs(self, source: Source) -> Any:
        if source.region not in self._s3:
            self._s3[source.region] = make_filesystem(source)
        return self._s3[source.region]

    # -- reading
    def _expected_md5(self, set_name: str, relpath: str, path: str) -> str | None:
        index = self._index(set_name)
        if index is None:
            return None
        i = index.find(relpath)
        if i is None:
            raise ObjectNotFoundError(
                f"isc://{path}: not in the {set_name} manifest given, so it cannot be checked; "
                "pick an image the manifest lists, or open the filesystem without a manifest for this set",
                url=f"isc://{path}",
            )
        return index.md5[i].decode() or None

    def read_verified(self, path: str) -> bytes:
        """The whole object at ``path``, MD5-checked against the manifest when one is given.

        Tries the configured region, then the other mirrors, until one gives bytes that match.
        Raises :class:`~isc_kit.errors.ChecksumMismatchError` when some mirror answered but none with
        the manifest's bytes, else the first mirror's error (``ObjectNotFoundError`` for a 404).
        """
        path = self._strip_protocol(path)
        set_name, relpath = self._split(path)
        if not relpath:
            raise IsADirectoryError(f"isc://{path} is a set, not an image; list it with ls")
        expected = self._expected_md5(set_name, relpath, path)
        key = self._prefix(set_name) + relpath
        failures: list[IscKitError] = []
        for source in self._sources():
            url = f"{source.bucket_name}/{key}"
            try:
                data = self._fs(source).cat_file(url)
            except _read_errors() as err:
                failures.append(translate_error(err, f"s3://{url}", source))
                logger.debug("isc://%s: %s", path, failures[-1])
                continue
            if expected is not None:
                actual = hashlib.md5(data).hexdigest()
                if actual != expected:
                    failures.append(
                        ChecksumMismatchError(
                            f"isc://{path} (s3://{url})", expected, actual, action="the bytes were refused"
                        )
                    )
                    logger.warning("%s", failures[-1])
                    continue
            return data
        mismatch = [f for f in failures if isinstance(f, ChecksumMismatchError)]
        raise (mismatch or failures)[0]

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        data = self.read_verified(path)
        return data[start:end] if start is not None or end is not None else data

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> _VerifiedFile:
        if mode != "rb":
            raise PermissionError(
                f"isc://{self._strip_protocol(path)}: the ISC sets are read-only (mode {mode!r})"
            )
        return _VerifiedFile(self.read_verified(path), self._strip_protocol(path))

    def get_file(
        self,
        rpath: str,
        lpath: Any = None,
        callback: Any = DEFAULT_CALLBACK,
        outfile: Any = None,
        **kwargs: Any,
    ) -> None:
        """Copy one image to ``lpath`` (atomically: a temp file renamed once the bytes are checked)."""
        if (
            outfile is None
            and not hasattr(lpath, "write")
            and not self._split(self._strip_protocol(rpath))[1]
        ):
            os.makedirs(lpath, exist_ok=True)  # a set: fsspec's recursive get makes its folder
            return
        data = self.read_verified(rpath)
        callback.set_size(len(data))
        if outfile is not None or hasattr(lpath, "write"):
            (outfile or lpath).write(data)
        else:
            target = Path(os.fspath(lpath))
            target.parent.mkdir(parents=True, exist_ok=True)
            place_bytes(target, data, expect_size=len(data))  # read_verified checked the MD5
        callback.relative_update(len(data))

    # -- listing
    def _set_entry(self, set_name: str) -> dict[str, Any]:
        return {"name": set_name, "size": 0, "type": "directory"}

    def _from_index(self, set_name: str, index: _Index, i: int) -> dict[str, Any]:
        size = int(index.sizes[i])
        return {
            "name": f"{set_name}/{index.relpaths[i].decode()}",
            "size": size if size >= 0 else None,
            "type": "file",
            "md5": index.md5[i].decode() or None,
        }

    def _from_s3(self, set_name: str, prefix: str, entry: dict[str, Any]) -> dict[str, Any]:
        bucket_key = entry["name"]
        relpath = bucket_key.split("/", 1)[1][len(prefix) :].strip("/")
        etag = str(entry.get("ETag", "")).strip('"')
        return {
            "name": f"{set_name}/{relpath}",
            "size": entry.get("size"),
            "type": entry.get("type", "file"),
            "md5": etag if len(etag) == 32 and "-" not in etag else None,  # a multipart ETag is no MD5
        }

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if not path:
            out = [self._set_entry(name) for name in SETS]
        else:
            set_name, relpath = self._split(path)
            if relpath:
                out = [self.info(path)]
            elif (index := self._index(set_name)) is not None:
                out = [self._from_index(set_name, index, i) for i in range(len(index.relpaths))]
            else:
                prefix = self._prefix(set_name)
                url = f"{self.source.bucket_name}/{prefix}"
                try:
                    found = self._fs(self.source).ls(url, detail=True)
                except _read_errors() as err:
                    raise translate_error(err, f"s3://{url}", self.source) from err
                out = [self._from_s3(set_name, prefix, e) for e in found]
        return out if detail else [e["name"] for e in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        set_name, relpath = self._split(path)
        if not relpath:
            return self._set_entry(set_name)
        expected = self._expected_md5(set_name, relpath, path)
        prefix = self._prefix(set_name)
        failures: list[IscKitError] = []
        for source in self._sources():  # the first mirror that has it
            url = f"{source.bucket_name}/{prefix}{relpath}"
            try:
                entry = self._fs(source).info(url)
                break
            except _read_errors() as err:
                failures.append(translate_error(err, f"s3://{url}", source))
        else:
            raise failures[0]
        out = self._from_s3(set_name, prefix, entry)
        if expected is not None:
            out["md5"] = expected
        return out
