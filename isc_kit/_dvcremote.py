"""A DVC remote as the transfer engine sees it: sources, a key per object, and a getter.

The remote and its settings come from DVC's own config (``Repo(...).config``): ``url``,
``endpointurl``, ``region``, ``profile``, keys, ``allow_anonymous_login``. DVC 3 lays objects
out as ``<url>/files/md5/<2 hex>/<30 hex>``. An S3 remote is read with the engine's own getters
(signed through s3fs unless the remote allows anonymous access and no credentials are set); a
local folder remote with :class:`FolderGetter`, which reads files in place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .catalog import REGIONS, base_bucket, bucket_for_region
from .errors import ConfigError
from .source import Source
from .transfer.getters import GetError, _needs_proxy, make_getter

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: A valid placeholder bucket for a folder remote's Source (the folder getter never uses it).
_FOLDER_BUCKET = "local-folder-remote"


@dataclass(frozen=True)
class DvcRemote:
    """Where a remote's objects are: an S3 source and key prefix, or a local folder."""

    name: str
    url: str
    source: Source
    prefix: str = ""
    folder: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def key(self, oid: str) -> str:
        rel = f"files/md5/{oid[:2]}/{oid[2:]}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def getter(self, jobs: int) -> Any:
        """Folder reads; unsigned GETs; else SigV4 on the lean client (s3fs behind a proxy or without keys)."""
        if self.folder is not None:
            return FolderGetter(self.folder)
        if self.source.anon or _needs_proxy(self.source):
            return make_getter([self.source], jobs)
        from ._s3sign import Credentials, SignedRawGetter, chain_credentials

        entry = self.options
        if entry.get("access_key_id") and entry.get("secret_access_key"):
            creds: Credentials | None = Credentials(
                entry["access_key_id"], entry["secret_access_key"], entry.get("session_token")
            )
        else:
            creds = chain_credentials(entry.get("profile"))
        if creds is None:
            return make_getter([self.source], jobs)  # s3fs says what is missing
        return SignedRawGetter(jobs, creds, _signing_region(entry))

    def describe(self) -> str:
        return f"{self.name} ({self.url})"


def resolve_remote(config: Any, name: str | None) -> DvcRemote:
    """The remote ``name`` (else the default one) from a DVC config mapping."""
    remotes = config.get("remote", {})
    name = name or config.get("core", {}).get("remote")
    if not name:
        raise ConfigError(
            "no DVC remote given and no default set; pass --remote NAME or run `dvc remote add -d NAME URL`"
        )
    if name not in remotes:
        known = ", ".join(remotes) or "none"
        raise ConfigError(f"no DVC remote {name!r} (known: {known}); see `dvc remote list`")
    entry = remotes[name]
    url = str(entry["url"])
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        folder = parsed.path if parsed.scheme == "file" else url
        return DvcRemote(name, url, Source(bucket=_FOLDER_BUCKET), folder=os.path.abspath(folder))
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(
            f"DVC remote {name!r} is {url}: isc-kit pull reads S3 and local folder remotes; use `dvc pull` for it"
        )
    return DvcRemote(
        name, url, _s3_source(parsed.netloc, entry), prefix=parsed.path.strip("/"), options=entry
    )


def _s3_source(bucket: str, entry: dict[str, Any]) -> Source:
    """A Source addressing exactly ``bucket`` (the catalog's regional suffixes are only a naming scheme)."""
    region = next((r for r in REGIONS if bucket_for_region(base_bucket(bucket), r) == bucket), None)
    if region is None:  # pragma: no cover - every name maps to some region
        raise ConfigError(f"{bucket!r} is not a valid S3 bucket name")
    options: dict[str, Any] = {}
    client: dict[str, Any] = {}
    if entry.get("region"):
        client["region_name"] = entry["region"]
    if "ssl_verify" in entry:
        client["verify"] = entry["ssl_verify"]
    if client:
        client.setdefault("region_name", "us-east-1")
        options["client_kwargs"] = client
    for ours, theirs in (("profile", "profile"), ("key", "access_key_id"), ("secret", "secret_access_key")):
        if entry.get(theirs):
            options[ours] = entry[theirs]
    if entry.get("session_token"):
        options["token"] = entry["session_token"]
    anon = bool(entry.get("allow_anonymous_login")) and not _has_credentials(entry)
    endpoint = entry.get("endpointurl")
    return Source(base_bucket(bucket), region, endpoint.rstrip("/") if endpoint else None, anon, options)


def _signing_region(entry: dict[str, Any]) -> str:
    """The remote's ``region``, else the profile's, else us-east-1 (what boto uses at a custom endpoint)."""
    if entry.get("region"):
        return str(entry["region"])
    try:
        import botocore.session

        return (
            botocore.session.Session(profile=entry.get("profile")).get_config_variable("region")
            or "us-east-1"
        )
    except Exception:
        return "us-east-1"


def _has_credentials(entry: dict[str, Any]) -> bool:
    if entry.get("access_key_id"):
        return True
    try:
        import botocore.session

        return botocore.session.Session(profile=entry.get("profile")).get_credentials() is not None
    except Exception:
        return False


class FolderGetter:
    """Reads objects of a local folder remote, with the getters' ``get(source, key, sink)`` protocol.

    Files are read on the event loop's thread: local reads of small objects are cheaper than
    a hand-off to a thread, and the engine bounds how many are in flight.
    """

    def __init__(self, root: str):
        self.root = root

    async def __aenter__(self) -> FolderGetter:
        if not os.path.isdir(self.root):
            raise ConfigError(f"{self.root}: the DVC folder remote does not exist; check `dvc remote list`")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def get(self, source: Source, key: str, sink: Any) -> tuple[int, int | None]:
        """Copy ``<root>/<key>`` into ``sink``; returns (bytes read, file size)."""
        path = os.path.join(self.root, key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise GetError(f"{path}: not in the remote folder", retryable=False, status=404) from None
        except OSError as err:
            raise GetError(
                f"{path}: cannot read: {err.strerror or err}", retryable=False, status=403
            ) from err
        try:
            length = os.fstat(fd).st_size
            n = 0
            buf = sink.buffer(length)
            if buf is not None:
                view = memoryview(buf)
                while n < length and (got := os.readv(fd, [view[n:]])):
                    n += got
                return n, length
            while chunk := os.read(fd, _CHUNK):
                sink.write(chunk)
                n += len(chunk)
            return n, length
        except OSError as err:
            raise GetError(f"{path}: read failed: {err.strerror or err}", retryable=True) from err
        finally:
            os.close(fd)

    async def head(self, source: Source, key: str) -> None:
        if not os.path.exists(os.path.join(self.root, key)):
            raise GetError(f"{key}: not in the remote folder", retryable=False, status=404)
