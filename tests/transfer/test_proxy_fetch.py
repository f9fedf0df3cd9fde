"""A fetch through an HTTP forward proxy (``HTTP_PROXY``): the aiohttp getter, end to end.

The proxy is a small asyncio forwarder on 127.0.0.1 in front of the embedded S3 server; it counts
the absolute-URI requests it forwards, so the test can tell the bytes really went through it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _fetch_helpers import expected_md5s, tree_md5s

from isc_kit.pinned import load_pinned
from isc_kit.source import resolve_source
from isc_kit.transfer import fetch
from isc_kit.transfer.getters import AnonGetter, make_getter


class ForwardProxy:
    """One request per client connection, forwarded with ``Connection: close`` on both sides."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            url = urlsplit(target)  # a proxy gets the absolute URI
            self.requests.append(f"{method} {target}")
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
            headers = [h for h in lines[1:] if h and not h.lower().startswith(("connection:", "proxy-"))]
            path = url.path + (f"?{url.query}" if url.query else "")
            up_writer.write(
                "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""]).encode(
                    "latin-1"
                )
            )
            await up_writer.drain()
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            kept = [h for h in response_head.split(b"\r\n") if h and not h.lower().startswith(b"connection:")]
            writer.write(b"\r\n".join([*kept, b"Connection: close", b"", b""]))
            while data := await up_reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
            up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> ForwardProxy:
    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "http_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    with ForwardProxy() as fwd:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{fwd.port}")
        yield fwd


def test_a_fetch_behind_a_proxy_goes_through_it_and_verifies(
    s3_env: str, proxy: ForwardProxy, tiny_root: Path, pinned: Path, tmp_path: Path
) -> None:
    assert isinstance(make_getter(resolve_source(), 8), AnonGetter)
    dest = tmp_path / "ref"
    result = fetch(load_pinned(pinned), dest, jobs=8)
    assert result.ok, result.failed
    assert result.transferred == 40
    assert tree_md5s(dest) == expected_md5s(tiny_root)
    gets = [r for r in proxy.requests if r.startswith("GET http://127.0.0.1:")]
    assert len(gets) >= 40  # every object came through the proxy (absolute-URI requests)
