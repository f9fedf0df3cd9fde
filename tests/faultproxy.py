"""A fault-injecting HTTP proxy for tests: sits between a client and the embedded S3 server on 127.0.0.1.

Point the client's endpoint (``--endpoint-url`` / ``ISC_KIT_ENDPOINT_URL``) at :attr:`FaultProxy.url`;
every request is forwarded to ``upstream`` and, by a seeded draw, answered with a fault instead:

``slowdown``  503 with S3's ``SlowDown`` error body          ``error500``  500 ``InternalError``
``reset``     the connection is reset (RST) before any byte  ``truncate``  headers promise the full body,
``flip``      one body byte is inverted (same length)                      the connection closes halfway
``delay``     the answer waits ``delay_seconds``             ``drip``      the body trickles in 8 pieces

The draw for a request is a pure function of ``(seed, method, path, n)`` where ``n`` counts earlier
requests for the same path, so a run's faults do not depend on how concurrent requests interleave.
Every connection carries one request (``Connection: close``). Plain asyncio in a daemon thread: usable
from in-process tests and from subprocesses alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from types import TracebackType
from urllib.parse import urlsplit

FAULTS = ("slowdown", "error500", "reset", "truncate", "flip", "delay", "drip")

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>faultproxy</RequestId></Error>"
)


@dataclass(frozen=True)
class FaultMix:
    """Probability of each fault per request (their sum is at most 1; the rest pass through)."""

    slowdown: float = 0.0
    error500: float = 0.0
    reset: float = 0.0
    truncate: float = 0.0
    flip: float = 0.0
    delay: float = 0.0
    drip: float = 0.0
    delay_seconds: float = 0.02

    def __post_init__(self) -> None:
        total = sum(getattr(self, f) for f in FAULTS)
        if total > 1.0 + 1e-9 or any(getattr(self, f) < 0 for f in FAULTS):
            raise ValueError(f"fault probabilities must be >= 0 and sum to at most 1, not {total}")

    def describe(self) -> str:
        parts = [f"{f} {getattr(self, f):.0%}" for f in FAULTS if getattr(self, f)]
        return ", ".join(parts) or "no faults"

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v}


class FaultProxy:
    """The proxy; ``start()`` binds a free port on 127.0.0.1 and serves in a background thread."""

    def __init__(self, upstream: str, mix: FaultMix, *, seed: int = 0, methods: tuple[str, ...] = ("GET",)):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.mix, self.seed, self.methods = mix, seed, methods
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.access_keys: Counter[str] = Counter()  # access key ids of signed requests (SigV4 Credential=)
        self._seen: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> FaultProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as err:  # reported to the starting thread
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=serve, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- decisions

    def decide(self, method: str, path: str) -> tuple[str, random.Random]:
        """The fault for the n-th request of ``method path`` ("" for none) and the RNG for its details."""
        key = f"{method} {path}"
        n = self._seen[key]
        self._seen[key] += 1
        rng = random.Random(f"{self.seed}|{key}|{n}")
        if method not in self.methods:
            return "", rng
        u = rng.random()
        edge = 0.0
        for fault in FAULTS:
            edge += getattr(self.mix, fault)
            if u < edge:
                return fault, rng
        return "", rng

    # ------------------------------------------------------------------------------------- serving

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers = [h for h in header_lines if not h.lower().startswith(("connection:", "keep-alive:"))]
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0
        )
        body = await reader.readexactly(length) if length else b""
        self.requests += 1
        for h in headers:
            if h.lower().startswith("authorization:") and "Credential=" in h:
                self.access_keys[h.split("Credential=", 1)[1].split("/", 1)[0]] += 1
        fault, rng = self.decide(method, path)
        if fault:
            self.injected[fault] += 1
        if fault in ("slowdown", "error500"):
            code, status, message = (
                ("SlowDown", "503 Slow Down", "Please reduce your request rate.")
                if fault == "slowdown"
                else ("InternalError", "500 Internal Server Error", "We encountered an internal error.")
            )
            payload = _ERROR_BODY.format(code=code, message=message).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + (payload if method != "HEAD" else b"")
            )
            await writer.drain()
            return
        if fault == "reset":
            _abort(writer)
            return
        if fault == "delay":
            await asyncio.sleep(self.mix.delay_seconds)
        status_head, resp_body = await self._forward(method, path, headers, body)
        ok = status_head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"] and resp_body
        if fault == "flip" and ok:
            i = rng.randrange(len(resp_body))
            resp_body = resp_body[:i] + bytes([resp_body[i] ^ 0xFF]) + resp_body[i + 1 :]
        if fault == "truncate" and ok:
            writer.write(status_head + resp_body[: len(resp_body) // 2])
            await writer.drain()
            _abort(writer)
            return
        if fault == "drip" and ok:
            writer.write(status_head)
            step = max(1, len(resp_body) // 8)
            for start in range(0, len(resp_body), step):
                writer.write(resp_body[start : start + step])
                await writer.drain()
                await asyncio.sleep(self.mix.delay_seconds)
            return
        writer.write(status_head + resp_body)
        await writer.drain()

    async def _forward(self, method: str, path: str, headers: list[str], body: bytes) -> tuple[bytes, bytes]:
        """Send the request upstream on a fresh connection; (status line + headers, body) of its answer."""
        ureader, uwriter = await asyncio.open_connection(*self.upstream)
        try:
            lines = [f"{method} {path} HTTP/1.1", *headers, "Connection: close", "", ""]
            uwriter.write("\r\n".join(lines).encode("latin-1") + body)
            await uwriter.drain()
            raw = await ureader.read()
        finally:
            uwriter.close()
            with contextlib.suppress(ConnectionError, OSError):
                await uwriter.wait_closed()
        head, _, rest = raw.partition(b"\r\n\r\n")
        kept = [
            line
            for line in head.split(b"\r\n")
            if not line.lower().startswith((b"connection:", b"keep-alive:", b"transfer-encoding:"))
        ]
        if b"chunked" in head.lower() and b"transfer-encoding" in head.lower():
            rest = _dechunk(rest)
            kept = [x for x in kept if not x.lower().startswith(b"content-length:")]
            kept.append(b"Content-Length: %d" % len(rest))
        kept.append(b"Connection: close")
        return b"\r\n".join(kept) + b"\r\n\r\n", rest if method != "HEAD" else b""


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
