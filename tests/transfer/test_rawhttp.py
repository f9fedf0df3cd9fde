"""The lean HTTP/1.1 client against a real loopback server that plays scripted raw bytes.

Each test starts a small asyncio server on 127.0.0.1 whose handler writes exactly the bytes a
test needs (split into tiny pieces, truncated, reset, stalled ...) and counts the connections
and requests it saw, so reuse is checked from the server's side. The hypothesis test at the
end feeds responses to one ``_Connection`` through a recording fake transport: a parser test.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from collections.abc import Awaitable
from typing import Any

import pytest
from _scriptserver import ScriptServer, answer_each, ok, write_in_pieces
from hypothesis import given, settings
from hypothesis import strategies as st

from isc_kit.transfer.rawhttp import LowSpeed, Origin, ProtocolError, RawClient, Response, _Connection


def chunked(status: bytes, chunks: list[bytes], trailers: bytes = b"") -> bytes:
    out = b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i, c in enumerate(chunks):
        out += b"%x;a=b%d\r\n%s\r\n" % (len(c), i, c)
    return out + b"0\r\n" + trailers + b"\r\n"


class BufferSink:
    """Takes the body in one buffer when the client knows its length."""

    def __init__(self) -> None:
        self.buf: bytearray | None = None
        self.chunks: list[bytes] = []

    def buffer(self, length: int) -> bytearray | None:
        self.buf = bytearray(length)
        return self.buf

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def body(self) -> bytes:
        return bytes(self.buf) if self.buf is not None else b"".join(self.chunks)


class StreamSink(BufferSink):
    """Never offers a buffer: every body comes through ``write``."""

    def buffer(self, length: int) -> bytearray | None:
        return None


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


async def get(client: RawClient, srv: ScriptServer, sink: Any = None, path: str = "/k") -> Response:
    request = client.request_bytes("GET", srv.origin, path)
    return await client.request(srv.origin, request, sink)


BODY = bytes(range(256)) * 7 + b"end"  # 1,795 bytes


def test_content_length_lands_in_the_buffer_and_the_connection_is_reused() -> None:
    async def main() -> None:
        async with ScriptServer(answer_each(ok(BODY * 20), ok(b"second"))) as srv:
            client = RawClient()
            first, second = BufferSink(), BufferSink()
            r1 = await get(client, srv, first, "/a/R000001.jpg")
            r2 = await get(client, srv, second)
            client.close()
        assert (r1.status, r1.length, r1.received) == (200, len(BODY) * 20, len(BODY) * 20)
        assert first.buf == BODY * 20
        assert first.chunks == []
        assert (r2.status, second.body()) == (200, b"second")
        assert (srv.connections, len(srv.requests)) == (1, 2)
        assert srv.requests[0].startswith(b"GET /a/R000001.jpg HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % srv.port)

    run(main())


def test_a_sink_without_buffer_gets_the_body_in_chunks() -> None:
    body = bytes(i * 7 % 251 for i in range(1 << 20))

    async def main() -> None:
        async with ScriptServer(answer_each(ok(body))) as srv:
            client = RawClient()
            sink = StreamSink()
            response = await get(client, srv, sink)
            client.close()
        assert (response.status, response.length, response.received) == (200, len(body), len(body))
        assert len(sink.chunks) > 1
        assert b"".join(sink.chunks) == body

    run(main())


XML_404 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message><Key>R000001.jpg</Key></Error>"
)


def test_chunked_bodies_parsed_from_tiny_pieces() -> None:
    parts = [b"first chunk ", b"x" * 300, b"the end"]
    ok_chunked = chunked(b"200 OK", parts, trailers=b"x-amz-checksum: abc\r\nx-other: 1\r\n")
    not_found = chunked(b"404 Not Found", [XML_404[:50], XML_404[50:]])

    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader) is not None:
            await write_in_pieces(writer, [ok_chunked, not_found, ok(b"after")][len(srv.requests) - 1])

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient()
            sink, err_sink, last = StreamSink(), StreamSink(), BufferSink()
            r1 = await get(client, srv, sink)
            r2 = await get(client, srv, err_sink)
            r3 = await get(client, srv, last)
            client.close()
        assert r1.status == 200
        assert b"".join(sink.chunks) == b"".join(parts)
        assert r1.received == len(b"".join(parts))
        assert len(sink.chunks) > len(parts)  # the pieces really did arrive apart
        assert (r2.status, r2.error_body) == (404, XML_404)
        assert err_sink.chunks == []  # an error body never reaches the sink
        assert (r3.status, last.body()) == (200, b"after")
        assert (srv.connections, len(srv.requests)) == (1, 3)  # chunk ends and trailers parsed exactly

    run(main())


def test_close_delimited_body_completes_and_the_connection_is_not_reused() -> None:
    body = b"no length here " * 1000

    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await srv.read_request(reader) is None:
            return
        if len(srv.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n")
            await write_in_pieces(writer, body, 4096)
        else:
            writer.write(ok(b"fresh"))
            await writer.drain()
            await reader.read()  # keep the connection open: the client must not rely on a close

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient()
            sink = BufferSink()
            r1 = await get(client, srv, sink)
            r2 = await get(client, srv, BufferSink())
            client.close()
        assert (r1.status, r1.length, r1.received) == (200, None, len(body))
        assert sink.buf is None
        assert sink.body() == body
        assert r2.status == 200
        assert srv.connections == 2

    run(main())


def test_an_interim_100_continue_is_skipped() -> None:
    async def main() -> None:
        async with ScriptServer(
            answer_each(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"real body"), ok(b"again"))
        ) as srv:
            client = RawClient()
            sink = BufferSink()
            r1 = await get(client, srv, sink)
            r2 = await get(client, srv, BufferSink())
            client.close()
        assert (r1.status, sink.body()) == (200, b"real body")
        assert r2.status == 200
        assert srv.connections == 1

    run(main())


def test_headers_beyond_the_first_read_are_parsed() -> None:
    meta = b"".join(b"x-amz-meta-field-%04d: %s\r\n" % (i, b"v" * 80) for i in range(200))
    assert len(meta) > 20_000
    body = b"b" * 50_000

    async def main() -> None:
        async with ScriptServer(answer_each(ok(body, meta), ok(b"next"))) as srv:
            client = RawClient()
            sink = BufferSink()
            response = await get(client, srv, sink)
            await get(client, srv, BufferSink())
            client.close()
        assert (response.status, response.length) == (200, len(body))
        assert sink.body() == body
        assert srv.connections == 1

    run(main())


def test_headers_over_64_kb_are_rejected() -> None:
    meta = b"".join(b"x-amz-meta-field-%05d: %s\r\n" % (i, b"v" * 80) for i in range(800))
    assert len(meta) > 64 << 10

    async def main() -> None:
        async with ScriptServer(answer_each(ok(b"never", meta))) as srv:
            client = RawClient()
            with pytest.raises(ProtocolError, match="larger than 64 KB") as info:
                await get(client, srv, BufferSink())
            client.close()
        assert info.value.received
        assert not info.value.connect

    run(main())


def test_a_truncated_body_is_an_error_that_says_where() -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"t" * 400)
        await writer.drain()

    async def main() -> None:
        for sink in (BufferSink(), StreamSink()):
            async with ScriptServer(handler) as srv:
                client = RawClient()
                with pytest.raises(ProtocolError, match="truncated at 400 of 1000") as info:
                    await get(client, srv, sink)
                client.close()
            assert info.value.received
            assert not info.value.connect

    run(main())


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.mark.parametrize("when", ["after-response", "on-next-request"])
def test_a_stale_keep_alive_connection_is_replaced_transparently(when: str) -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = srv.connections == 1
        if await srv.read_request(reader) is None:
            return
        writer.write(ok(b"one" if first else b"two"))
        await writer.drain()
        if first and when == "on-next-request":
            await srv.read_request(reader)  # the idle timeout fires as the next request arrives
        if first:
            writer.close()
            return
        await reader.read()

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient()
            a, b = BufferSink(), BufferSink()
            await get(client, srv, a)
            if when == "after-response":
                await asyncio.sleep(0.05)  # the close has arrived; the client still holds the connection
            response = await get(client, srv, b)
            client.close()
        assert (a.body(), b.body(), response.status) == (b"one", b"two", 200)
        assert srv.connections == 2
        # on-next-request: the second request really went out on the stale connection, then again
        assert len(srv.requests) == (3 if when == "on-next-request" else 2)

    run(main())


def test_a_reset_on_a_fresh_connection_is_not_retried() -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        _reset(writer)

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient()
            with pytest.raises(ProtocolError) as info:
                await get(client, srv, BufferSink())
            client.close()
        assert not info.value.received
        assert not info.value.connect
        assert srv.connections == 1

    run(main())


def test_a_stalled_body_times_out() -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        await writer.drain()
        await reader.read()  # then silence until the client gives up

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient(read_timeout=0.5)
            with pytest.raises(ProtocolError, match="timed out") as info:
                await get(client, srv, BufferSink())
            client.close()
        assert info.value.received
        assert srv.connections == 1  # a stall is not retried on a new connection

    run(main())


def test_a_trickle_below_the_low_speed_limit_is_aborted_though_bytes_keep_coming() -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n")
        for _ in range(10_000):  # one byte every 50 ms: never silent long enough for the read timeout
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient(read_timeout=30, low_speed=LowSpeed(limit=1000, seconds=1.0))
            with pytest.raises(
                ProtocolError, match=r"too slow: .* below the low-speed limit of 1,000 B/s"
            ) as info:
                await get(client, srv, BufferSink())
            client.close()
        assert info.value.received

    run(main())


def test_a_fast_body_is_never_cut_by_the_low_speed_limit() -> None:
    body = bytes(range(256)) * 400

    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 4096):  # ~100 KB/s, far above the limit, for longer than its window
            writer.write(body[i : i + 4096])
            await writer.drain()
            await asyncio.sleep(0.04)

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient(low_speed=LowSpeed(limit=1000, seconds=0.5))
            sink = BufferSink()
            resp = await get(client, srv, sink)
            client.close()
        assert resp.status == 200
        assert sink.body() == body

    run(main())


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens there

    async def main() -> None:
        client = RawClient()
        origin = Origin("http", "127.0.0.1", port)
        with pytest.raises(ProtocolError) as info:
            await client.request(origin, client.request_bytes("GET", origin, "/k"), BufferSink())
        client.close()
        assert info.value.connect
        assert not info.value.received

    run(main())


SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


@pytest.mark.parametrize("size", [10, 100_000], ids=["in-first-read", "after-body"])
@pytest.mark.parametrize("sink_type", [BufferSink, StreamSink])
def test_bytes_beyond_content_length_stop_reuse(size: int, sink_type: type[BufferSink]) -> None:
    body = b"q" * size

    async def main() -> None:
        async with ScriptServer(answer_each(ok(body) + SMUGGLED, ok(b"clean"))) as srv:
            client = RawClient()
            first, second = sink_type(), sink_type()
            r1 = await get(client, srv, first)
            r2 = await get(client, srv, second)
            client.close()
        assert (r1.status, first.body()) == (200, body)
        assert (r2.status, second.body()) == (200, b"clean")  # never the smuggled response
        assert (srv.connections, len(srv.requests)) == (2, 2)

    run(main())


def test_head_returns_without_a_body_and_keeps_the_connection() -> None:
    async def main() -> None:
        head = b'HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: "abc"\r\n\r\n'
        async with ScriptServer(answer_each(head, ok(b"body"))) as srv:
            client = RawClient()
            r1 = await client.request(
                srv.origin, client.request_bytes("HEAD", srv.origin, "/k"), None, head_only=True
            )
            sink = BufferSink()
            r2 = await get(client, srv, sink)
            client.close()
        assert (r1.status, r1.length, r1.received) == (200, 12345, 0)
        assert sink.body() == b"body"
        assert r2.status == 200
        assert srv.requests[0].startswith(b"HEAD /k HTTP/1.1\r\n")
        assert (srv.connections, len(srv.requests)) == (1, 2)

    run(main())


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x response"),
        (b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nq5\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789", "bad Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
            "conflicting Content-Length",
        ),
    ],
    ids=[
        "garbage",
        "status",
        "length",
        "chunk-size",
        "later-chunk-size",
        "negative-chunk-size",
        "0x-chunk-size",
        "plus-length",
        "underscore-length",
        "two-lengths",
    ],
)
def test_malformed_responses_are_protocol_errors(response: bytes, message: str) -> None:
    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await srv.read_request(reader)
        writer.write(response)
        await writer.drain()
        await reader.read()  # no close from this side: the client must give up on its own

    async def main() -> None:
        async with ScriptServer(handler) as srv:
            client = RawClient()
            with pytest.raises(ProtocolError, match=message) as info:
                await get(client, srv, StreamSink())
            client.close()
        assert info.value.received

    run(main())


# the parser alone, through a fake transport


class FakeTransport:
    """Records what the connection writes and whether it closed or aborted."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted


def _encode(body: bytes, mode: str, chunk_sizes: list[int]) -> bytes:
    if mode == "length":
        return ok(body)
    out, pos, i = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"], 0, 0
    while pos < len(body):
        piece = body[pos : pos + chunk_sizes[i % len(chunk_sizes)]]
        out.append(b"%X%s\r\n%s\r\n" % (len(piece), b";ext=1" if i % 2 else b"", piece))
        pos, i = pos + len(piece), i + 1
    out.append(b"0\r\nx-trailer: yes\r\n\r\n")
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(0, 5000),
    mode=st.sampled_from(["length", "chunked"]),
    buffered=st.booleans(),
    chunk_sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    seed=st.integers(0, 255),
)
def test_parser_reassembles_any_split(
    size: int, mode: str, buffered: bool, chunk_sizes: list[int], cuts: list[int], seed: int
) -> None:
    body = bytes((seed + i * 31) % 256 for i in range(size))
    wire = _encode(body, mode, chunk_sizes)
    points = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(points) if b > a]

    async def main() -> tuple[Response, BufferSink, FakeTransport]:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        sink = BufferSink() if buffered else StreamSink()
        task = asyncio.ensure_future(conn.exchange(b"GET /k HTTP/1.1\r\n\r\n", sink, False))
        await asyncio.sleep(0)
        assert transport.written == b"GET /k HTTP/1.1\r\n\r\n"
        for piece in pieces:
            view = memoryview(piece)
            while view:
                buf = conn.get_buffer(-1)
                n = min(len(buf), len(view))
                assert n > 0
                buf[:n] = view[:n]
                del buf
                conn.buffer_updated(n)
                view = view[n:]
        response = await asyncio.wait_for(task, 5)
        assert conn.reusable
        assert not transport.is_closing()
        return response, sink, transport

    response, sink, _ = asyncio.run(main())
    assert response.status == 200
    assert response.received == size
    assert sink.body() == body
    if mode == "length" and buffered and size:  # an empty body asks for no buffer
        assert sink.buf is not None
        assert sink.chunks == []
