"""Where images come from: a bucket in one region, reached through fsspec/s3fs.

A :class:`Source` is a plain value (constructing it touches nothing); :func:`make_filesystem`
creates the s3fs filesystem, and :func:`list_objects` lists a prefix server-side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .catalog import (
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    REGIONS,
    aws_region,
    base_bucket,
    bucket_for_region,
    valid_bucket_name,
)
from .config import env_bool, env_str, resolve_endpoint
from .errors import AccessDeniedError, ConfigError, ObjectNotFoundError, SourceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A bucket (base name, without regional suffix), a region, an endpoint and how to sign."""

    bucket: str = DEFAULT_BUCKET
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    anon: bool = True
    storage_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ConfigError(f"unknown region {self.region!r}; choose one of {', '.join(REGIONS)}")
        if not valid_bucket_name(self.bucket):
            raise ConfigError(f"{self.bucket!r} is not a valid S3 bucket name")

    @property
    def bucket_name(self) -> str:
        """The regional bucket actually addressed."""
        return bucket_for_region(self.bucket, self.region)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket_name}/{key}"

    def in_region(self, region: str) -> Source:
        """The same source, another mirror."""
        return Source(self.bucket, region, self.endpoint_url, self.anon, self.storage_options)

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"s3://{self.bucket_name} ({self.region}, {where}, {'anonymous' if self.anon else 'signed'})"


def resolve_source(
    *,
    bucket: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    anon: bool | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Source:
    """A Source from explicit values, then ``ISC_KIT_BUCKET/REGION/ENDPOINT_URL/ANON``, then defaults."""
    bucket = bucket or env_str("ISC_KIT_BUCKET") or DEFAULT_BUCKET
    return Source(
        bucket=base_bucket(bucket),
        region=region or env_str("ISC_KIT_REGION") or DEFAULT_REGION,
        endpoint_url=resolve_endpoint(endpoint_url),
        anon=anon if anon is not None else (env_bool("ISC_KIT_ANON") is not False),
        storage_options=dict(storage_options or {}),
    )


def make_filesystem(source: Source, **overrides: Any) -> Any:
    """An ``s3fs.S3FileSystem`` for the source (anonymous unless ``source.anon`` is False)."""
    import s3fs

    options: dict[str, Any] = {
        "anon": source.anon,
        "client_kwargs": {"region_name": aws_region(source.region)},
        "skip_instance_cache": True,
    }
    if source.endpoint_url:
        options["endpoint_url"] = source.endpoint_url
    options.update(source.storage_options)
    options.update(overrides)
    # bounded waits: an unreachable endpoint is known in seconds, not after s3fs x botocore retry rounds
    options["config_kwargs"] = {**_CLIENT_CONFIG, **options.get("config_kwargs", {})}
    fs = s3fs.S3FileSystem(**options)
    if "retries" not in source.storage_options:
        fs.retries = _FS_RETRIES
    return fs


_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 30,
    "retries": {"max_attempts": 3, "mode": "standard"},
}
_FS_RETRIES = 2
_CONNECT_ERRORS = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ConnectionRefusedError",
    "gaierror",
    "TimeoutError",
)


def where(source: Source) -> str:
    """The endpoint a request of ``source`` actually goes to."""
    if source.endpoint_url:
        return source.endpoint_url
    return f"https://{source.bucket_name}.s3.{aws_region(source.region)}.amazonaws.com (AWS)"


def unreachable(source: Source, reason: str) -> SourceError:
    """The one message for an endpoint that does not answer, with the next step."""
    if source.endpoint_url:
        hint = (
            "is the server running? For the embedded S3 start `isc-kit s3 serve` and export the "
            "ISC_KIT_ENDPOINT_URL it prints; otherwise check --endpoint-url / ISC_KIT_ENDPOINT_URL"
        )
    else:
        hint = (
            "check the network (this machine may have no internet access); for the embedded S3 start "
            "`isc-kit s3 serve` and export the ISC_KIT_ENDPOINT_URL it prints"
        )
    return SourceError(
        f"cannot reach S3 at {where(source)} (bucket {source.bucket_name}): {reason}; {hint}",
        url=where(source),
    )


def _is_connect_error(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if type(seen).__name__ in _CONNECT_ERRORS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate_error(err: BaseException, url: str, source: Source) -> SourceError:
    """A botocore/s3fs error as an isc_kit error that says what to check."""
    where = source.endpoint_url or "AWS"
    if isinstance(err, FileNotFoundError):
        return ObjectNotFoundError(
            f"{url}: not found (404) at {where}; check the bucket name, the region ({source.region}) "
            "and the key prefix",
            url=url,
        )
    if isinstance(err, PermissionError) or "AccessDenied" in str(err):
        hint = "the bucket is public: try anonymous access (anon=True, the default)"
        if source.anon:
            hint = "check the bucket and region, or pass credentials with --no-anon if the bucket is private"
        return AccessDeniedError(f"{url}: access denied (403) at {where}; {hint}", url=url)
    if _is_connect_error(err):
        return unreachable(source, f"{type(err).__name__}: {err}")
    hint = "check the network and endpoint"
    if source.endpoint_url is None:
        hint += (
            " (no endpoint is set, so this went to AWS; for the embedded S3 start `isc-kit s3 serve`"
            " and export the ISC_KIT_ENDPOINT_URL it prints)"
        )
    return SourceError(f"{url}: {type(err).__name__}: {err} (endpoint {where}); {hint}", url=url)


def list_objects(source: Source, prefix: str, fs: Any = None) -> Iterator[dict[str, Any]]:
    """Objects below ``prefix`` as dicts with ``key``, ``size`` and ``etag``; the prefix goes to the server."""
    fs = fs or make_filesystem(source)
    root = f"{source.bucket_name}/{prefix}"
    logger.info("listing %s", f"s3://{root}")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = (
            fs.find(root, detail=True, prefix="")
            if prefix.endswith("/")
            else fs.find(root.rsplit("/", 1)[0] + "/", detail=True, prefix=root.rsplit("/", 1)[1])
        )
    except (OSError, ValueError, BotoCoreError, ClientError) as err:
        raise translate_error(err, f"s3://{root}", source) from err
    except Exception as err:  # aiohttp/aiobotocore errors surface as their own types
        if not foreign_error(err):
            raise
        raise translate_error(err, f"s3://{root}", source) from err
    cut = len(source.bucket_name) + 1
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        yield {
            "key": path[cut:],
            "size": int(info.get("size") or 0),
            "etag": str(info.get("ETag", "")).strip('"'),
        }


def foreign_error(err: BaseException) -> bool:
    """An exception of the S3 client stack (botocore, aiobotocore, aiohttp), not a bug of ours."""
    return type(err).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs")


def read_objects(source: Source, keys: list[str], *, fs: Any = None) -> list[bytes | SourceError]:
    """The bytes of each key (small objects: a widget's page of images), or the translated error for it."""
    fs = fs or make_filesystem(source)
    paths = [f"{source.bucket_name}/{k}" for k in keys]
    try:
        got = fs.cat(paths, on_error="return") if paths else {}
    except (OSError, ValueError) as err:
        error = translate_error(err, source.url(), source)
        return [error] * len(keys)
    out: list[bytes | SourceError] = []
    for path in paths:
        data = got.get(path, FileNotFoundError(path))
        out.append(
            translate_error(data, f"s3://{path}", source) if isinstance(data, BaseException) else bytes(data)
        )
    return out
