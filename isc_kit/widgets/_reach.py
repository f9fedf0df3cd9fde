"""Is the image source's S3 endpoint reachable? A bounded TCP probe before widgets read from it.

A dead endpoint (the embedded server stopped, no network) would otherwise cost botocore's
retries on every page, ~13 s each, and then blank tiles. The probe takes at most
:data:`PROBE_TIMEOUT` seconds (a refused connection returns at once) and a success is trusted
for :data:`TRUST_SECONDS`, so paging through a live source costs nothing extra.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from ..catalog import aws_region
from ..errors import SourceError

PROBE_TIMEOUT = 3.0
TRUST_SECONDS = 15.0
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_reached: dict[tuple[str, int], float] = {}


def endpoint_of(images: Any) -> str | None:
    """The URL an image source reads from, or None when it is not remote (a local tree)."""
    source = getattr(images, "source", None)
    if source is None:
        return None
    if source.endpoint_url:
        return str(source.endpoint_url)
    if any(os.environ.get(name) for name in _PROXY_ENV):
        return None  # AWS through a proxy: a direct probe would say nothing
    return f"https://s3.{aws_region(source.region)}.amazonaws.com"


def check_reachable(images: Any) -> None:
    """Raise :class:`SourceError` ("cannot reach S3 at URL; ...") when ``images`` reads from a dead endpoint."""
    url = endpoint_of(images)
    if url is None:
        return
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    now = time.monotonic()
    if now - _reached.get((host, port), -TRUST_SECONDS) < TRUST_SECONDS:
        return
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            _reached[(host, port)] = now
    except OSError as err:
        _reached.pop((host, port), None)
        reason = err.strerror or type(err).__name__
        raise SourceError(
            f"cannot reach S3 at {url} ({reason}); start the server again (rerun the notebook's first "
            "cell, or `isc-kit s3 serve`) or check ISC_KIT_ENDPOINT_URL and the network",
            url=url,
        ) from None
