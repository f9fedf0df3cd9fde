"""The lean HTTP client over TLS (real AWS endpoints are https): a loopback TLS server with a
self-signed certificate, trusted through ``AWS_CA_BUNDLE`` as a user would for a private endpoint."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest

from isc_kit.source import resolve_source
from isc_kit.transfer.getters import GetError, RawGetter
from isc_kit.transfer.rawhttp import Origin, ProtocolError, RawClient

BODY = bytes(i * 31 % 256 for i in range(700_000))


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsServer:
    """Answers every GET with BODY (keep-alive), counting connections; HTTP over TLS on 127.0.0.1."""

    def __init__(self, cert: Path, key: Path):
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.connections = 0
        self.paths: list[bytes] = []
        self.port = 0
        self._server: Any = None

    async def __aenter__(self) -> TlsServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.paths.append(head.split(b" ", 2)[1])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


class BufferSink:
    def __init__(self) -> None:
        self.buf = bytearray()

    def buffer(self, length: int) -> bytearray:
        self.buf = bytearray(length)
        return self.buf

    def write(self, chunk: bytes) -> None:
        self.buf += chunk


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("tls"))


def test_bodies_arrive_whole_over_tls_on_one_connection(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def main() -> None:
        async with TlsServer(cert, key) as srv:
            client = RawClient(ssl_context=ssl.create_default_context(cafile=str(cert)))
            origin = Origin("https", "127.0.0.1", srv.port)
            sinks = [BufferSink() for _ in range(3)]
            for i, sink in enumerate(sinks):
                resp = await client.request(origin, client.request_bytes("GET", origin, f"/b/{i}"), sink)
                assert (resp.status, resp.received) == (200, len(BODY))
            client.close()
        assert all(hashlib.md5(s.buf).digest() == hashlib.md5(BODY).digest() for s in sinks)
        assert srv.connections == 1
        assert srv.paths == [b"/b/0", b"/b/1", b"/b/2"]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_an_untrusted_certificate_is_a_connect_error(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def main() -> None:
        async with TlsServer(cert, key) as srv:
            client = RawClient()  # the system's CAs only: the self-signed certificate is not trusted
            origin = Origin("https", "127.0.0.1", srv.port)
            with pytest.raises(ProtocolError) as info:
                await client.request(origin, client.request_bytes("GET", origin, "/x"), BufferSink())
            client.close()
        assert info.value.connect
        assert "certificate" in info.value.reason.lower()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_getter_trusts_aws_ca_bundle_for_an_https_endpoint(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))

    async def main() -> tuple[BufferSink, int, list[bytes]]:
        async with TlsServer(cert, key) as srv:
            source = resolve_source(endpoint_url=f"https://127.0.0.1:{srv.port}")
            sink = BufferSink()
            async with RawGetter(4) as getter:
                n, length = await getter.get(source, "all/reference_images/R000001.jpg", sink)
            assert n == length == len(BODY)
            return sink, srv.connections, srv.paths

    sink, connections, paths = asyncio.run(asyncio.wait_for(main(), 30))
    assert bytes(sink.buf) == BODY
    assert connections == 1
    assert paths[0].endswith(b"/R000001.jpg")


def test_without_the_bundle_the_getter_says_it_cannot_connect(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    async def main() -> None:
        async with TlsServer(cert, key) as srv:
            source = resolve_source(endpoint_url=f"https://127.0.0.1:{srv.port}")
            async with RawGetter(4) as getter:
                with pytest.raises(GetError) as info:
                    await getter.get(source, "all/reference_images/R000001.jpg", BufferSink())
        assert info.value.retryable
        assert info.value.status == 0
        assert "cannot connect" in info.value.reason

    asyncio.run(asyncio.wait_for(main(), 30))
