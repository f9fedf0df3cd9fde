"""Getting one object's bytes, streamed: a lean unsigned HTTP GET path and a signed s3fs path.

Anonymous reads of a public bucket are plain HTTP GETs, so :class:`RawGetter` issues them with
the lean client of :mod:`isc_kit.transfer.rawhttp` (no request signing, no botocore response parsing,
bodies received in place: measured the cheapest per request, see bench/RESULTS.md); behind an
HTTP(S) proxy :class:`AnonGetter` does the same through aiohttp. Signed access keeps going
through s3fs/aiobotocore (:class:`SignedGetter`). All raise :class:`GetError`, which says
whether a retry can help. Bodies go to a sink: ``sink.write(chunk)``, or, for the raw client,
``sink.buffer(length)`` when the sink can take the whole body in one buffer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from typing import Any, Protocol
from urllib.parse import quote

from ..catalog import aws_region
from ..errors import ConfigError
from ..source import Source, make_filesystem, translate_error
from .rawhttp import LowSpeed, Origin, ProtocolError, RawClient

logger = logging.getLogger(__name__)

_CHUNK = 1 << 18


class Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def buffer(self, length: int) -> bytearray | None: ...


class Getter(Protocol):
    """How a transfer gets one object: an async context (connections live inside it) with ``get`` and ``head``.

    Implemented by :class:`RawGetter` (anonymous, direct), :class:`AnonGetter` (anonymous, through
    an HTTP(S) proxy) and :class:`SignedGetter` (credentials); :func:`make_getter` chooses.
    """

    async def __aenter__(self) -> Getter: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def get(self, source: Source, key: str, sink: Sink) -> tuple[int, int | None]:
        """GET ``key`` into ``sink``: (bytes received, Content-Length or None); :class:`GetError` on failure."""
        ...

    async def head(self, source: Source, key: str) -> None: ...


class GetError(Exception):
    """One failed attempt: a one-line reason, and whether retrying may help."""

    def __init__(self, reason: str, *, retryable: bool, status: int = 0, short: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.short = short  # the bare cause (e.g. "Connection refused"), for messages that say the rest


def _ssl_context() -> ssl.SSLContext | bool:
    bundle = os.environ.get("AWS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if bundle and os.path.isfile(bundle):
        return ssl.create_default_context(cafile=bundle)
    return True


def object_url(source: Source, bucket: str, key: str) -> str:
    """Path-style URL at a custom endpoint; virtual-hosted AWS URL otherwise."""
    quoted = quote(key, safe="/-_.~")
    if source.endpoint_url:
        return f"{source.endpoint_url}/{bucket}/{quoted}"
    return f"https://{bucket}.s3.{aws_region(source.region)}.amazonaws.com/{quoted}"


def _status_error(status: int, code: str, url: str, source: Source) -> GetError:
    if status == 404:
        return GetError(
            str(translate_error(FileNotFoundError(code), url, source)), retryable=False, status=404
        )
    if status == 403:
        return GetError(str(translate_error(PermissionError(code), url, source)), retryable=False, status=403)
    if status in (301, 307, 308) or code in ("PermanentRedirect", "TemporaryRedirect"):
        return GetError(
            f"{url}: HTTP {status} {code or 'redirect'}: the bucket answers at another address; check the region "
            f"(--region, now {source.region}) and the endpoint ({source.endpoint_url or 'AWS'})",
            retryable=False,
            status=status,
        )
    retry = status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "InternalError")
    return GetError(f"{url}: HTTP {status} {code}".strip(), retryable=retry, status=status)


def _error_code(body: bytes) -> str:
    start = body.find(b"<Code>")
    end = body.find(b"</Code>", start)
    return body[start + 6 : end].decode("utf-8", "replace") if start >= 0 and end > start else ""


class AnonGetter:
    """Unsigned GETs over one aiohttp session with up to ``jobs`` connections."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._session: Any = None
        self._proxies: dict[str, str | None] = {}

    def _proxy(self, url: str) -> str | None:
        """The HTTP(S)_PROXY for ``url`` from the environment (honouring NO_PROXY), cached per host."""
        import urllib.request
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host = parts.netloc
        if host not in self._proxies:
            proxies = urllib.request.getproxies()
            hostname = parts.hostname or ""
            bypass = urllib.request.proxy_bypass(hostname) if proxies else True
            self._proxies[host] = None if bypass else proxies.get(parts.scheme)
        return self._proxies[host]

    async def __aenter__(self) -> AnonGetter:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self.jobs, limit_per_host=self.jobs, ssl=_ssl_context(), ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=60),
            trust_env=False,  # proxies are resolved once per host below, not once per request
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, source: Source, key: str, sink: Sink) -> tuple[int, int | None]:
        """Stream ``key`` of ``source`` into ``sink.write``; returns (bytes read, Content-Length or None)."""
        import aiohttp

        url = object_url(source, source.bucket_name, key)
        try:
            async with self._session.get(url, proxy=self._proxy(url)) as resp:
                if resp.status != 200:
                    body = await resp.read()
                    raise _status_error(resp.status, _error_code(body), source.url(key), source)
                length = resp.content_length
                n = 0
                write = sink.write
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    write(chunk)
                    n += len(chunk)
                return n, length
        except GetError:
            raise
        except aiohttp.ClientConnectorError as err:
            where = source.endpoint_url or "AWS"
            raise GetError(
                f"{source.url(key)}: cannot connect ({err.os_error or err}) at {where}; check the network, "
                "the endpoint (--endpoint-url / ISC_KIT_ENDPOINT_URL) and the region",
                retryable=True,
            ) from err
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as err:
            raise GetError(
                f"{source.url(key)}: {type(err).__name__}: {err}", retryable=True, status=-1
            ) from err
        except asyncio.TimeoutError as err:
            raise GetError(f"{source.url(key)}: timed out", retryable=True) from err
        except aiohttp.ClientError as err:
            raise GetError(f"{source.url(key)}: {type(err).__name__}: {err}", retryable=True) from err

    async def head(self, source: Source, key: str) -> None:
        """A HEAD request (for probing); raises GetError when it does not answer 200."""
        import aiohttp

        url = object_url(source, source.bucket_name, key)
        try:
            async with self._session.head(url, proxy=self._proxy(url)) as resp:
                if resp.status != 200:
                    raise _status_error(resp.status, "", source.url(key), source)
        except (aiohttp.ClientError, OSError) as err:
            raise GetError(f"{source.url(key)}: {type(err).__name__}: {err}", retryable=True) from err


class SignedGetter:
    """GETs through s3fs/aiobotocore (credentials from the standard AWS chain), one filesystem per source."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._fs: dict[str, Any] = {}

    async def __aenter__(self) -> SignedGetter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for fs in self._fs.values():
            creator = getattr(fs, "_s3creator", None)
            if creator is not None:
                await creator.__aexit__(None, None, None)
        self._fs.clear()

    async def _filesystem(self, source: Source) -> Any:
        fs = self._fs.get(source.region)
        if fs is None:
            fs = make_filesystem(source, asynchronous=True, config_kwargs={"max_pool_connections": self.jobs})
            await fs.set_session()
            self._fs[source.region] = fs
        return fs

    async def get(self, source: Source, key: str, sink: Sink) -> tuple[int, int | None]:
        fs = await self._filesystem(source)
        url = source.url(key)
        try:
            resp = await fs._call_s3("get_object", Bucket=source.bucket_name, Key=key)
        except (FileNotFoundError, PermissionError) as err:
            raise GetError(str(translate_error(err, url, source)), retryable=False) from err
        except OSError as err:
            raise GetError(f"{url}: {type(err).__name__}: {err}", retryable=True) from err
        body = resp["Body"]
        n = 0
        try:
            while chunk := await body.read(_CHUNK):
                sink.write(chunk)
                n += len(chunk)
        except (OSError, asyncio.TimeoutError, ValueError) as err:
            raise GetError(f"{url}: body read failed: {type(err).__name__}: {err}", retryable=True) from err
        except Exception as err:  # aiohttp payload errors surface as their own types
            if type(err).__module__.startswith(("aiohttp", "botocore", "aiobotocore")):
                raise GetError(
                    f"{url}: body read failed: {type(err).__name__}: {err}", retryable=True
                ) from err
            raise
        finally:
            body.close()
        return n, resp.get("ContentLength")

    async def head(self, source: Source, key: str) -> None:
        fs = await self._filesystem(source)
        url = source.url(key)
        try:
            await fs._call_s3("head_object", Bucket=source.bucket_name, Key=key)
        except (FileNotFoundError, PermissionError) as err:
            raise GetError(str(translate_error(err, url, source)), retryable=False) from err
        except OSError as err:
            raise GetError(f"{url}: {err}", retryable=True) from err


class RawGetter:
    """Unsigned GETs over the lean keep-alive client (:mod:`isc_kit.transfer.rawhttp`), for direct connections.

    A subclass (the signed getter) overrides ``connect_hint``, ``_base_url`` and ``request_bytes``.
    """

    def __init__(self, jobs: int, *, low_speed: LowSpeed | None = None):
        self.jobs = jobs
        self.low_speed = low_speed
        self._client: Any = None
        self._bases: dict[tuple[str | None, str, str], tuple[Any, str]] = {}

    async def __aenter__(self) -> RawGetter:
        context = _ssl_context()
        self._client = RawClient(
            ssl_context=context if isinstance(context, ssl.SSLContext) else None, low_speed=self.low_speed
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    connect_hint = "check the network, the endpoint (--endpoint-url / ISC_KIT_ENDPOINT_URL) and the region"

    def _base_url(self, source: Source) -> str:
        return object_url(source, source.bucket_name, "")

    def request_bytes(self, method: str, origin: Any, path: str) -> bytes:
        return self._client.request_bytes(method, origin, path)

    def _target(self, source: Source, key: str) -> tuple[Any, str]:
        where = (source.endpoint_url, source.region, source.bucket_name)
        base = self._bases.get(where)
        if base is None:
            base = self._bases[where] = Origin.of(self._base_url(source))
        origin, path = base
        return origin, path + quote(key, safe="/-_.~")

    async def _request(self, source: Source, key: str, method: str, sink: Sink | None) -> Any:
        origin, path = self._target(source, key)
        try:
            return await self._client.request(
                origin, self.request_bytes(method, origin, path), sink, head_only=method == "HEAD"
            )
        except ProtocolError as err:
            if err.connect:
                where = source.endpoint_url or "AWS"
                raise GetError(
                    f"{source.url(key)}: cannot connect ({err.reason}) at {where}; {self.connect_hint}",
                    retryable=True,
                    short=err.reason,
                ) from err
            raise GetError(f"{source.url(key)}: {err.reason}", retryable=True, status=-1) from err

    async def get(self, source: Source, key: str, sink: Sink) -> tuple[int, int | None]:
        """GET ``key`` of ``source`` into ``sink``; returns (bytes received, Content-Length or None)."""
        resp = await self._request(source, key, "GET", sink)
        if resp.status != 200:
            raise _status_error(resp.status, _error_code(resp.error_body), source.url(key), source)
        return resp.received, resp.length

    async def head(self, source: Source, key: str) -> None:
        """A HEAD request (for probing); raises GetError when it does not answer 200."""
        resp = await self._request(source, key, "HEAD", None)
        if resp.status != 200:
            raise _status_error(resp.status, "", source.url(key), source)


def _needs_proxy(source: Source) -> bool:
    import urllib.request
    from urllib.parse import urlsplit

    proxies = urllib.request.getproxies()
    if not proxies:
        return False
    parts = urlsplit(object_url(source, source.bucket_name, ""))
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


def low_speed_from_env() -> LowSpeed | None:
    """``ISC_KIT_LOW_SPEED_LIMIT`` bytes/s (0 turns the check off) over ``ISC_KIT_LOW_SPEED_TIME`` s; read now."""
    limit = os.environ.get("ISC_KIT_LOW_SPEED_LIMIT", "").strip()
    seconds = os.environ.get("ISC_KIT_LOW_SPEED_TIME", "").strip()
    try:
        default = LowSpeed()
        speed = LowSpeed(
            int(limit) if limit else default.limit, float(seconds) if seconds else default.seconds
        )
    except ValueError:
        raise ConfigError(
            f"ISC_KIT_LOW_SPEED_LIMIT / _TIME must be numbers (bytes per second, seconds), not {limit!r} / {seconds!r}"
        ) from None
    if speed.limit < 0 or speed.seconds <= 0:
        raise ConfigError("ISC_KIT_LOW_SPEED_LIMIT must be 0 or more and ISC_KIT_LOW_SPEED_TIME more than 0")
    return speed if speed.limit else None


def make_getter(sources: Source | list[Source], jobs: int, *, low_speed: LowSpeed | None = None) -> Getter:
    """The getter for these sources: signed, else the lean client, else aiohttp when a proxy applies.

    ``low_speed`` (default: :func:`low_speed_from_env`) aborts and retries a lean-client transfer
    slower than its limit; the aiohttp and signed paths have their no-data read timeouts only.
    """
    many = sources if isinstance(sources, list) else [sources]
    if not many[0].anon:
        return SignedGetter(jobs)
    if any(_needs_proxy(s) for s in many):
        return AnonGetter(jobs)
    return RawGetter(jobs, low_speed=low_speed if low_speed is not None else low_speed_from_env())
