"""A lean HTTP/1.1 client for anonymous GETs: keep-alive connections, bodies received in place.

Anonymous reads of a public bucket are plain GETs, and on a fast link the client's per-request
CPU decides the speed. This client does the least per request: one pre-built request line, a
status line and headers parsed once, and the body received by ``recv_into`` straight into the
buffer it ends up in (:class:`asyncio.BufferedProtocol`): no per-chunk ``bytes`` objects, no
copies. Bodies too large to hold are streamed to the caller in chunks. It speaks Content-Length,
chunked and close-delimited bodies, TLS, and reuses idle connections (a stale one is replaced
once, transparently). Read stalls are caught by one watchdog per client, not a timer per read.
This module is the pool (:class:`RawClient`, :class:`Origin`, the stall watchdog); the response
parser, one connection's state machine, is :mod:`.httpconn`. Proxies are not handled here: :func:`isc_kit.transfer.getters.make_getter` uses aiohttp when one applies.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from .httpconn import BodySink, ProtocolError, Response, _Connection

__all__ = ["BodySink", "LowSpeed", "Origin", "ProtocolError", "RawClient", "Response"]


class LowSpeed(NamedTuple):
    """Abort a transfer that receives fewer than ``limit`` bytes per second over ``seconds`` (like curl's -Y/-y)."""

    limit: int = 1000
    seconds: float = 30.0


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> tuple[Origin, str]:
        """(origin, path) of an http(s) URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port), parts.path or "/"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class RawClient:
    """Keep-alive connections per origin, for ``jobs`` concurrent requests; call :meth:`close` when done."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 20.0,
        read_timeout: float = 60.0,
        low_speed: LowSpeed | None = None,
        user_agent: str = "isc-kit",
    ):
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._low_speed = low_speed if low_speed is not None and low_speed.limit > 0 else None
        self._agent = user_agent
        self._idle: dict[Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    def request_bytes(self, method: str, origin: Origin, path: str) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {origin.host_header}\r\n"
            f"User-Agent: {self._agent}\r\nAccept-Encoding: identity\r\n\r\n"
        ).encode("latin-1")

    async def request(
        self, origin: Origin, request: bytes, sink: BodySink | None = None, *, head_only: bool = False
    ) -> Response:
        """Send ``request`` and read the response; a stale idle connection is replaced once."""
        for fresh in (False, True):
            conn = None if fresh else self._take_idle(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin)
            self._busy.add(conn)
            try:
                response = await conn.exchange(request, sink, head_only)
            except ProtocolError as err:
                if reused and not err.received and not conn.stalled:
                    continue  # the server had closed the idle connection: try a new one
                raise
            except BaseException:
                conn.abort("cancelled")
                raise
            finally:
                self._busy.discard(conn)
                self._release(origin, conn)
            return response
        raise AssertionError("unreachable")

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if _unread(conn.transport):  # bytes beyond the last response, or a close not yet seen
                conn.reusable = False
                conn.transport.close()
                continue
            return conn
        return None

    def _release(self, origin: Origin, conn: _Connection) -> None:
        if conn.reusable and not conn.closed and not self._closed:
            self._idle.setdefault(origin, []).append(conn)
        elif conn.transport is not None and not conn.closed:
            conn.transport.close()

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            context = self._ssl or ssl.create_default_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                ),
                self._connect_timeout,
            )
        except asyncio.TimeoutError as err:
            raise ProtocolError("connection timed out", received=False, connect=True) from err
        except (OSError, ssl.SSLError) as err:
            raise ProtocolError(str(err.strerror or err), received=False, connect=True) from err
        if self._watchdog is None:
            self._arm_watchdog(loop)
        return conn

    def _arm_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        every = self._read_timeout / 4
        if self._low_speed is not None:
            every = min(every, self._low_speed.seconds / 4)
        self._watchdog = loop.call_later(max(0.25, every), self._check_stalls, loop)

    def _check_stalls(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        limit = now - self._read_timeout
        slow = self._low_speed
        for conn in list(self._busy):
            if conn.last_read < limit:
                conn.stalled = True
                conn.abort(f"no data for {self._read_timeout:g} s (timed out)")
                continue
            if slow is None:
                continue
            since, at = conn.speed_mark
            if now - since >= slow.seconds:
                rate = (conn.received - at) / (now - since)
                if rate < slow.limit:
                    conn.stalled = True
                    conn.abort(
                        f"too slow: {rate:,.0f} B/s over {now - since:.0f} s, below the low-speed limit of "
                        f"{slow.limit:,} B/s (ISC_KIT_LOW_SPEED_LIMIT / --low-speed-limit)"
                    )
                else:
                    conn.speed_mark = (now, conn.received)
        self._watchdog = None
        if not self._closed:
            self._arm_watchdog(loop)

    def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for conns in self._idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()


def _unread(transport: asyncio.Transport) -> bool:
    """Whether the socket holds bytes or a close nobody has read: then the connection cannot be reused.

    A body received in place ends exactly at its last byte, so bytes a server sent beyond it wait
    in the socket; sent on, the next request would take them for its response.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock.fileno()], [], [], 0)[0])
