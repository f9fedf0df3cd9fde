"""Shared fixtures: an isolated AWS environment and a real S3 server (moto) over HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials and config files in a temp folder, so nobody's ~/.aws is read; restored afterwards.

    The synthetic fixture and the widgets' thumbnail cache go to this session's temp folder too, so a
    test run never writes to the user's home cache (the tiny fixture is made in under a second).
    """
    home = tmp_path_factory.mktemp("aws")
    caches = tmp_path_factory.mktemp("caches")
    (home / "config").write_text("[default]\nregion = us-west-2\n")
    (home / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("AWS_", "ISC_KIT_")):
            del os.environ[name]
    os.environ.update(
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        ISC_KIT_CACHE_DIR=str(caches / "fixture"),
        ISC_KIT_WIDGET_CACHE=str(caches / "widgets"),
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def _start_server(scale: str) -> tuple[subprocess.Popen[str], str]:
    # stderr (one werkzeug line per request) goes to a file: an undrained pipe fills up and blocks the server
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (kept open for the server's lifetime)
    proc = subprocess.Popen(
        [sys.executable, "-m", "isc_kit", "-q", "s3", "serve", "--scale", scale, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("endpoint: "):
        proc.kill()
        proc.wait()
        log.seek(0)
        raise RuntimeError(f"embedded S3 did not start: {line!r} {log.read()}")
    return proc, line.split(": ", 1)[1].strip()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real moto S3 server in a subprocess, seeded with the tiny synthetic mini-ISC; its endpoint URL."""
    proc, endpoint = _start_server("tiny")
    yield endpoint
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point isc_kit (and any child process) at the embedded server through the environment only."""
    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", s3_endpoint)
    return s3_endpoint


@pytest.fixture
def boto_client(s3_endpoint: str) -> object:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def make_bucket(boto_client: object) -> Callable[..., str]:
    """Factory: a fresh public-read bucket seeded from ``{key: bytes}``; returns its name."""

    def make(objects: dict[str, bytes], name: str | None = None) -> str:
        bucket = name or f"test-{uuid.uuid4().hex[:12]}"
        client = boto_client
        client.create_bucket(  # type: ignore[attr-defined]
            Bucket=bucket, ACL="public-read", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        for key, body in objects.items():
            client.put_object(Bucket=bucket, Key=key, Body=body, ACL="public-read")  # type: ignore[attr-defined]
        return bucket

    return make


@pytest.fixture(scope="session")
def tiny_root() -> Path:
    """The materialized tiny fixture (same files the server holds)."""
    from isc_kit.fixture import materialize

    return materialize("tiny")


@pytest.fixture
def pinned(tiny_root: Path, tmp_path: Path) -> Path:
    """A pinned manifest of the whole tiny reference set (the server holds the same bytes)."""
    from isc_kit.metadata import read_metadata
    from isc_kit.pinned import write_pinned

    path = tmp_path / "ref.pinned"
    write_pinned(read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference"), path)
    return path
