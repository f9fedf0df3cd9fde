"""Which getter a source gets (lean client, aiohttp behind a proxy, signed), and how RawGetter reports failures."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _scriptserver import ScriptServer, answer_each, ok

from isc_kit.source import Source
from isc_kit.transfer.getters import AnonGetter, GetError, RawGetter, SignedGetter, make_getter

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD")

AWS = Source(region="eu")  # https://drivendata-competition-fb-isc-data-eu.s3.eu-central-1.amazonaws.com
LOCAL = Source(endpoint_url="http://127.0.0.1:9555")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_anonymous_without_proxy_gets_the_lean_client() -> None:
    assert type(make_getter(AWS, 8)) is RawGetter
    assert type(make_getter([LOCAL, LOCAL.in_region("asia")], 8)) is RawGetter


@pytest.mark.parametrize(
    ("env", "source", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy:3128"}, AWS, AnonGetter),
        ({"https_proxy": "http://proxy:3128"}, AWS, AnonGetter),
        ({"HTTP_PROXY": "http://proxy:3128"}, AWS, RawGetter),  # AWS is reached over https
        ({"HTTP_PROXY": "http://proxy:3128"}, LOCAL, AnonGetter),
        ({"HTTPS_PROXY": "http://proxy:3128"}, LOCAL, RawGetter),  # the endpoint is http
        ({"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "127.0.0.1"}, LOCAL, RawGetter),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "localhost,.amazonaws.com"}, AWS, RawGetter),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.org"}, AWS, AnonGetter),
        ({"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "*"}, AWS, RawGetter),
    ],
)
def test_a_proxy_for_the_endpoints_scheme_selects_aiohttp(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], source: Source, expected: type
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert type(make_getter(source, 8)) is expected


def test_one_proxied_source_among_several_selects_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    mirrors = [LOCAL, Source(endpoint_url="http://s3.internal:9000")]
    assert type(make_getter(mirrors, 8)) is AnonGetter


def test_signed_sources_always_get_the_signed_getter(monkeypatch: pytest.MonkeyPatch) -> None:
    signed = Source(anon=False)
    assert type(make_getter(signed, 8)) is SignedGetter
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert type(make_getter([signed, AWS], 8)) is SignedGetter


# RawGetter against the scripted server: statuses and broken connections as GetError


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def buffer(self, length: int) -> bytearray | None:
        return None

    def write(self, chunk: bytes) -> None:
        self.data += chunk


def _error(status: bytes, code: bytes) -> bytes:
    body = b"<?xml version='1.0'?><Error><Code>%s</Code><Message>m</Message></Error>" % code
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


async def _get(responses: tuple[bytes, ...], key: str = "q/Q00001.jpg") -> tuple[ScriptServer, object]:
    async with ScriptServer(answer_each(*responses, close_after=True)) as srv:
        source = Source(endpoint_url=f"http://127.0.0.1:{srv.port}")
        async with RawGetter(4) as getter:
            sink = Collect()
            try:
                result: object = (await getter.get(source, key, sink), bytes(sink.data))
            except GetError as err:
                result = err
    return srv, result


def test_raw_getter_reads_a_body_from_the_path_style_url() -> None:
    srv, result = asyncio.run(_get((ok(b"jpeg bytes"),), key="a b/Q00001.jpg"))
    assert result == ((10, 10), b"jpeg bytes")
    assert srv.requests[0].startswith(
        b"GET /drivendata-competition-fb-isc-data/a%20b/Q00001.jpg HTTP/1.1\r\n"
    )


@pytest.mark.parametrize(
    ("response", "status", "retryable", "words"),
    [
        (_error(b"404 Not Found", b"NoSuchKey"), 404, False, "not found (404)"),
        (_error(b"403 Forbidden", b"AccessDenied"), 403, False, "access denied (403)"),
        (_error(b"503 Slow Down", b"SlowDown"), 503, True, "HTTP 503 SlowDown"),
        (_error(b"400 Bad Request", b"RequestTimeout"), 400, True, "HTTP 400 RequestTimeout"),
        (_error(b"400 Bad Request", b"InvalidArgument"), 400, False, "HTTP 400 InvalidArgument"),
        (_error(b"301 Moved Permanently", b"PermanentRedirect"), 301, False, "check the region (--region"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", -1, True, "truncated at 5 of 100"),
        (b"garbage\r\n\r\n", -1, True, "not an HTTP/1.x response"),
    ],
)
def test_raw_getter_errors_say_whether_to_retry(
    response: bytes, status: int, retryable: bool, words: str
) -> None:
    _, err = asyncio.run(_get((response,)))
    assert isinstance(err, GetError)
    assert (err.status, err.retryable) == (status, retryable)
    assert words in err.reason
    assert "s3://drivendata-competition-fb-isc-data/q/Q00001.jpg" in err.reason


def test_raw_getter_connect_failure_is_status_0_and_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> GetError:
        source = Source(endpoint_url=f"http://127.0.0.1:{port}")
        async with RawGetter(1) as getter:
            with pytest.raises(GetError) as info:
                await getter.get(source, "k", Collect())
        return info.value

    err = asyncio.run(main())
    assert (err.status, err.retryable) == (0, True)
    assert "cannot connect" in err.reason
    assert f"http://127.0.0.1:{port}" in err.reason
