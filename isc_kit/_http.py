"""Getting one object's bytes, streamed: a lean unsigned HTTP GET path and a signed s3fs path.

Anonymous reads of a public bucket are plain HTTP GETs, so :class:`AnonGetter` issues them
with aiohttp directly (no request signing, no botocore response parsing: measured several
times cheaper per request than s3fs/aiobotocore, see bench/RESULTS.md). Signed access keeps
going through s3fs/aiobotocore (:class:`SignedGetter`). Both raise :class:`GetError`, which
says whether a retry can help.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .catalog import aws_region
from .source import Source, make_filesystem, translate_error

logger = logging.getLogger(__name__)

_CHUNK = 1 << 18


class GetError(Exception):
    """One failed attempt: a one-line reason, and whether retrying may help."""

    def __init__(self, reason: str, *, retryable: bool, status: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status


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

    async def get(self, source: Source, key: str, write: Callable[[bytes], None]) -> tuple[int, int | None]:
        """Stream ``key`` of ``source`` into ``write``; returns (bytes read, Content-Length or None)."""
        import aiohttp

        url = object_url(source, source.bucket_name, key)
        try:
            async with self._session.get(url, proxy=self._proxy(url)) as resp:
                if resp.status != 200:
                    body = await resp.read()
                    raise _status_error(resp.status, _error_code(body), source.url(key), source)
                length = resp.content_length
                n = 0
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

    async def get(self, source: Source, key: str, write: Callable[[bytes], None]) -> tuple[int, int | None]:
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
                write(chunk)
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
        try:
            await fs._call_s3("head_object", Bucket=source.bucket_name, Key=key)
        except OSError as err:
            raise GetError(f"{source.url(key)}: {err}", retryable=True) from err


def make_getter(source: Source, jobs: int) -> AnonGetter | SignedGetter:
    return AnonGetter(jobs) if source.anon else SignedGetter(jobs)


async def probe(sources: list[Source], key: str, *, tries: int = 2) -> list[float]:
    """Seconds of the fastest of ``tries`` small requests to each source (``inf`` when unreachable)."""
    import time

    async def one(getter: AnonGetter | SignedGetter, source: Source) -> float:
        best = float("inf")
        for _ in range(tries):
            started = time.perf_counter()
            try:
                await asyncio.wait_for(getter.head(source, key), timeout=5)
            except (GetError, asyncio.TimeoutError):
                continue
            best = min(best, time.perf_counter() - started)
        return best

    async with make_getter(sources[0], len(sources)) as getter:
        return list(await asyncio.gather(*(one(getter, s) for s in sources)))
