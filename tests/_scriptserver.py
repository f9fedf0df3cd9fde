"""A loopback HTTP server that plays scripted raw bytes and counts connections and requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from isc_kit.transfer.rawhttp import Origin

Handler = Callable[["ScriptServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptServer:
    """A loopback server running ``handler`` per connection; counts connections and requests read."""

    def __init__(self, handler: Handler):
        self._handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> ScriptServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def origin(self) -> Origin:
        return Origin("http", "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request head on this connection (counted), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.requests.append(head)
        return head


def answer_each(*responses: bytes, close_after: bool = False) -> Handler:
    """Answer the server's n-th request (over all connections) with ``responses[n]``."""

    async def handler(srv: ScriptServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await srv.read_request(reader) is not None:
            writer.write(responses[len(srv.requests) - 1])
            await writer.drain()
            if close_after:
                return

    return handler


async def write_in_pieces(writer: asyncio.StreamWriter, data: bytes, size: int = 3) -> None:
    """Write ``data`` a few bytes at a time with a pause between, so the client reads it in many pieces."""
    for i in range(0, len(data), size):
        writer.write(data[i : i + size])
        await writer.drain()
        await asyncio.sleep(0.001)


def ok(body: bytes, extra_headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra_headers, body)
