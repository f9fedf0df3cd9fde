"""One keep-alive HTTP/1.1 connection: send a request head, parse the response as it arrives.

The protocol half of :mod:`.rawhttp` (whose :class:`~.rawhttp.RawClient` pools these connections):
an :class:`asyncio.BufferedProtocol` that parses the status line and headers once and receives
the body by ``recv_into`` straight into the buffer the sink hands out (no per-chunk ``bytes``, no
copies), or streams it in chunks; Content-Length, chunked and close-delimited bodies. It is one
state machine and stays whole in one module.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

_HEAD_START = 2048  # first read of a response: the headers and a little body; the rest lands in place
_HEAD_MAX = 64 << 10
_SCRATCH = 256 << 10
_ERROR_BODY_MAX = 64 << 10
_HEX = frozenset(b"0123456789abcdefABCDEF")


class BodySink(Protocol):
    """Where a 200 body goes: a buffer of the announced length to fill, else chunks to ``write``."""

    def buffer(self, length: int) -> bytearray | None: ...

    def write(self, chunk: bytes) -> None: ...


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 or the connection; ``received`` tells whether any response byte came."""

    def __init__(self, reason: str, *, received: bool, connect: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.received = received
        self.connect = connect


@dataclass
class Response:
    status: int
    length: int | None  # Content-Length, None when chunked or close-delimited
    received: int  # body bytes received (for a 200) or kept (error bodies, up to 64 KB)
    error_body: bytes = b""


# states of a connection
_IDLE, _HEAD, _FILL, _STREAM, _CHUNKED, _UNTIL_CLOSE = range(6)


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.last_read = loop.time()
        self.received = 0  # bytes received in the current exchange
        self.speed_mark = (loop.time(), 0)  # (time, bytes) the low-speed check measures from
        self._state = _IDLE
        self._waiter: asyncio.Future[Response] | None = None
        self._head = bytearray(_HEAD_START)
        self._head_len = 0
        self._scratch: bytearray | None = None
        self._head_only = False
        self._sink: BodySink | None = None
        self._status = 0
        self._length: int | None = None
        self._got = 0
        self._body: memoryview | None = None
        self._errbuf = bytearray()
        self._chunk_left = 0  # chunked: data bytes left in the current chunk; -1 = reading a size line
        self._chunk_line = bytearray()
        self._chunk_crlf = 0  # chunked: CR/LF bytes still to skip after a chunk's data
        self._trailers = False
        self._received_any = False
        self.stalled = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._state == _UNTIL_CLOSE:
            self._complete()
        elif self._waiter is not None and not self._waiter.done():
            self._fail(self._lost_reason(exc))

    def get_buffer(self, sizehint: int) -> memoryview | bytearray:
        state = self._state
        if state == _FILL:
            return self._body[self._got :]  # type: ignore[index]
        if state == _HEAD:
            if self._head_len == len(self._head):
                self._head.extend(bytes(len(self._head)))
            return memoryview(self._head)[self._head_len :]
        if self._scratch is None:
            self._scratch = bytearray(_SCRATCH)
        if state == _STREAM and self._length is not None:
            return memoryview(self._scratch)[: min(_SCRATCH, self._length - self._got)]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        self.last_read = self._loop.time()
        self.received += nbytes
        state = self._state
        if state == _FILL:
            self._got += nbytes
            if self._got == self._length:
                self._complete()
        elif state == _HEAD:
            self._received_any = True
            self._head_len += nbytes
            self._parse_head()
        elif state == _IDLE:  # bytes nobody asked for: this connection cannot be trusted any more
            self.reusable = False
            if self.transport is not None:
                self.transport.close()
        else:
            self._feed(memoryview(self._scratch)[:nbytes])  # type: ignore[arg-type]

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the response

    # one exchange

    async def exchange(self, request: bytes, sink: BodySink | None, head_only: bool) -> Response:
        assert self.transport is not None
        assert self._state == _IDLE
        self._reset()
        self._state = _HEAD
        self._sink = sink
        self._head_only = head_only
        self._waiter = self._loop.create_future()
        self.last_read = self._loop.time()
        self.received = 0
        self.speed_mark = (self.last_read, 0)
        self.transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            self._sink = None
            self._body = None

    def abort(self, reason: str) -> None:
        """Give up on this connection (read stall or cancellation)."""
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._fail(reason)
        if self.transport is not None:
            self.transport.abort()

    def _reset(self) -> None:
        self._head_len = 0
        self._status = 0
        self._length = None
        self._got = 0
        self._errbuf = bytearray()
        self._chunk_left = -1
        self._chunk_line = bytearray()
        self._chunk_crlf = 0
        self._trailers = False
        self._received_any = False
        self.stalled = False

    def _lost_reason(self, exc: Exception | None) -> str:
        why = f" ({exc})" if exc else ""
        if self._state == _HEAD:
            return f"connection closed before a complete response{why}"
        if self._length is not None:
            return f"body truncated at {self._got} of {self._length} bytes{why}"
        return f"connection closed in the middle of a chunked body{why}"

    def _parse_head(self) -> None:
        head = self._head
        end = head.find(b"\r\n\r\n", 0, self._head_len)
        if end < 0:
            if self._head_len >= _HEAD_MAX:
                self._protocol_error("response headers larger than 64 KB")
            return
        lines = bytes(head[:end]).split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            self._protocol_error(f"not an HTTP/1.x response: {status_line[:40]!r}")
            return
        try:
            status = int(status_line[9:12])
        except ValueError:
            self._protocol_error(f"bad status line {status_line[:40]!r}")
            return
        keep_alive = status_line[5:8] == b"1.1"
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                digits = value.strip()
                if not digits.isdigit():  # int() would also take "+5", "1_0" and " -5"
                    self._protocol_error(f"bad Content-Length {digits[:40]!r}")
                    return
                if length is not None and int(digits) != length:
                    self._protocol_error("conflicting Content-Length headers")
                    return
                length = int(digits)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                keep_alive = token != b"close" and (keep_alive or token == b"keep-alive")
        rest = memoryview(head)[end + 4 : self._head_len]
        if 100 <= status < 200:  # an interim response: drop it, read the real one
            leftover = bytes(rest)
            self._head_len = 0
            self._head[: len(leftover)] = leftover
            self._head_len = len(leftover)
            if leftover:
                self._parse_head()
            return
        self._status = status
        self.reusable = keep_alive
        if chunked:
            length = None
        self._length = length
        if self._head_only or status in (204, 304) or length == 0:
            if rest:
                self.reusable = False
            self._complete()
            return
        if chunked:
            self._state = _CHUNKED
            self._chunk_left = -1
        elif length is None:
            self._state = _UNTIL_CLOSE
            self.reusable = False
        else:
            target = self._sink.buffer(length) if status == 200 and self._sink is not None else None
            if target is not None:
                self._body = memoryview(target)
                self._state = _FILL
            else:
                self._state = _STREAM
        if len(rest) > 0:
            if self._length is not None and len(rest) > self._length:
                rest = rest[: self._length]  # bytes beyond the body: this connection is done
                self.reusable = False
            if self._state == _FILL:
                n = len(rest)
                self._body[:n] = rest  # type: ignore[index]
                self._got = n
                if n == self._length:
                    self._complete()
            else:
                self._feed(rest)

    def _feed(self, data: memoryview) -> None:
        """Body bytes of a streamed, chunked or close-delimited response."""
        if self._state == _CHUNKED:
            self._feed_chunked(data)
            return
        self._deliver(data)
        if self._state == _STREAM and self._got == self._length:
            self._complete()

    def _deliver(self, data: memoryview) -> None:
        self._got += len(data)
        if self._status == 200 and self._sink is not None:
            self._sink.write(bytes(data))
        elif len(self._errbuf) < _ERROR_BODY_MAX:
            self._errbuf += data[: _ERROR_BODY_MAX - len(self._errbuf)]

    def _feed_chunked(self, data: memoryview) -> None:
        pos, n = 0, len(data)
        while pos < n and self._state == _CHUNKED:
            if self._chunk_crlf:
                take = min(self._chunk_crlf, n - pos)
                self._chunk_crlf -= take
                pos += take
            elif self._chunk_left > 0:
                take = min(self._chunk_left, n - pos)
                self._deliver(data[pos : pos + take])
                self._chunk_left -= take
                pos += take
                if self._chunk_left == 0:
                    self._chunk_crlf = 2
                    self._chunk_left = -1
            else:  # a size line, or a trailer line after the last chunk
                nl = bytes(data[pos:]).find(b"\n")
                if nl < 0:
                    self._chunk_line += data[pos:]
                    pos = n
                    if len(self._chunk_line) > 4096:
                        self._protocol_error("chunk size line too long")
                    continue
                self._chunk_line += data[pos : pos + nl]
                pos += nl + 1
                line = bytes(self._chunk_line).strip()
                self._chunk_line = bytearray()
                if self._trailers:
                    if not line:
                        self._length = self._got
                        if pos < n:
                            self.reusable = False
                        self._complete()
                    continue
                digits = line.split(b";", 1)[0].strip()
                if not digits or not _HEX.issuperset(digits):  # int(, 16) would take "-3", "0x3", "1_0"
                    self._protocol_error(f"bad chunk size line {line[:40]!r}")
                    return
                size = int(digits, 16)
                if size == 0:
                    self._trailers = True
                else:
                    self._chunk_left = size

    def _complete(self) -> None:
        self._state = _IDLE
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Response(self._status, self._length, self._got, bytes(self._errbuf)))

    def _fail(self, reason: str) -> None:
        self._state = _IDLE
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ProtocolError(reason, received=self._received_any))

    def _protocol_error(self, reason: str) -> None:
        self._fail(reason)
        if self.transport is not None:
            self.transport.abort()
