"""The embedded S3 is quiet by default (no access line per request) and lives as long as its process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

#: Start an empty embedded server, then PUT and GET one object over HTTP with boto3.
ONE_REQUEST = textwrap.dedent(
    """
    import sys, boto3
    from botocore.config import Config
    from isc_kit.s3server import EmbeddedS3

    kwargs = {"access_log": True} if sys.argv[1:] == ["on"] else {}
    with EmbeddedS3(None, **kwargs) as server:
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-west-2",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="quiet", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_object(Bucket="quiet", Key="a.txt", Body=b"hello")
        assert s3.get_object(Bucket="quiet", Key="a.txt")["Body"].read() == b"hello"
    print("done")
    """
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ONE_REQUEST, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_requests_print_no_access_line_by_default() -> None:
    run = _run()
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert '"GET /quiet/a.txt' not in run.stderr
    assert " - - [" not in run.stderr, run.stderr


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_access_log_can_be_turned_on(how: str) -> None:
    run = _run("on") if how == "argument" else _run(env={"ISC_KIT_S3_ACCESS_LOG": "1"})
    assert run.returncode == 0, run.stderr
    assert '"GET /quiet/a.txt HTTP/1.1" 200' in run.stderr


def test_cli_serve_has_an_access_log_switch() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "isc_kit", "s3", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--access-log" in run.stdout


def test_ensure_embedded_s3_reuses_restarts_and_respects_a_foreign_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from isc_kit import s3server

    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", "")  # recorded, so the value the function exports is undone
    monkeypatch.delenv("ISC_KIT_ENDPOINT_URL")
    monkeypatch.setattr(s3server, "_shared", None)
    try:
        first = s3server.ensure_embedded_s3(None)
        assert os.environ["ISC_KIT_ENDPOINT_URL"] == first
        assert s3server.ensure_embedded_s3(None) == first  # a second Run All: the same live server
        server = s3server._shared
        assert server is not None
        assert server.running
        server.stop()  # what the old notebooks' last cell did
        assert not server.running
        again = s3server.ensure_embedded_s3(None)
        assert s3server._shared is not None
        assert s3server._shared.running
        assert again == first  # restarted on its old port, so existing widgets keep working
        monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", "http://127.0.0.1:9")  # someone else's server
        assert s3server.ensure_embedded_s3(None) == "http://127.0.0.1:9"
    finally:
        if s3server._shared is not None:
            s3server._shared.stop()
