"""Credentials never leak: a planted secret is used for signing, then grepped for in every output and file.

Every command runs as a real subprocess with ``--no-anon`` and debug logging (``-v -v``), on success
and failure paths (missing bucket, unreachable endpoint, ``-v`` tracebacks). Its stdout, stderr and
every file it leaves (pinned manifests, verified records, metrics, params, timings) are searched for
the access key id, the secret key, the session token and recognisable fragments of them. The proxy
in front of the server confirms the planted key really signed the requests, so the test is not vacuous.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultMix, FaultProxy

ROOT = Path(__file__).resolve().parents[1]
ACCESS_KEY = "AKIAPLANTEDKEY7QX4Z9"
SECRET_KEY = "pLaNtEd/SeCrEt+Key0123456789abcdefXYZ42"
SESSION_TOKEN = "PlantedSessionTokenFwoGZXIvYXdzEJr"
NEEDLES = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, SECRET_KEY[:12], SECRET_KEY[-12:], SESSION_TOKEN[:16])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


@pytest.mark.slow
def test_planted_credentials_appear_in_no_output_and_no_file(
    s3_endpoint: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    work = tmp_path / "work"
    work.mkdir()
    meta = tiny_root / "metadata" / "query_images_metadata.csv"
    dead = f"http://127.0.0.1:{_closed_port()}"
    outputs: dict[str, str] = {}

    with FaultProxy(s3_endpoint, FaultMix()) as proxy:
        ep = ["--endpoint-url", proxy.url, "--no-anon"]
        (work / "params.yaml").write_text(
            f"source:\n  bucket: drivendata-competition-fb-isc-data\n  region: eu\n  endpoint_url: {proxy.url}\n"
            f"  anon: false\nsets:\n  query:\n    metadata: {meta}\n    sample: 5\n    seed: 1\n"
        )
        commands = {
            "manifest-listing": ["manifest", "query", "--from-listing", "-o", "q.pinned", "--json", *ep],
            "manifest-csv-s3": [
                "manifest", "query", "--metadata",
                "s3://drivendata-competition-fb-isc-data/metadata/query_images_metadata.csv",
                "--sample", "6", "-o", "q6.pinned", *ep,
            ],
            "fetch": ["fetch", "q.pinned", "data/q", "--json", *ep],
            "verify-repair": ["verify", "q.pinned", "data/q", "--repair", "--json", *ep],
            "stage-fetch": ["stage", "fetch", "query", "q6.pinned", "data/query", "--metrics", "m.json"],
            "fail-no-bucket": ["ls", "query", "--from-listing", "--bucket", "no-such-bucket-xyz", *ep],
            "fail-listing-unreachable": ["ls", "query", "--from-listing", "--endpoint-url", dead, "--no-anon"],
            "fail-fetch-unreachable": [
                "fetch", "q.pinned", "data/dead", "--json", "--retries", "0", "--endpoint-url", dead, "--no-anon",
            ],
        }  # fmt: skip
        codes = {}
        for name, args in commands.items():
            if name == "verify-repair":  # corrupt a file so that the repair has work to do
                next((work / "data" / "q").iterdir()).write_bytes(b"corrupted")
            done = subprocess.run(
                [sys.executable, "-m", "isc_kit", "-v", "-v", *args],
                cwd=work,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_MAX_ATTEMPTS": "1"},
                capture_output=True,
                text=True,
                timeout=180,
            )
            codes[name] = done.returncode
            outputs[f"{name} (stdout)"] = done.stdout
            outputs[f"{name} (stderr)"] = done.stderr
        assert proxy.access_keys[ACCESS_KEY] > 20, proxy.access_keys  # the planted key really signed requests

    assert {k: v for k, v in codes.items() if not k.startswith("fail")} == dict.fromkeys(
        [k for k in codes if not k.startswith("fail")], 0
    ), {k: outputs[f"{k} (stderr)"][-500:] for k in codes}
    assert all(codes[k] != 0 for k in codes if k.startswith("fail"))
    assert (
        "Traceback" in outputs["fail-no-bucket (stderr)"]
    )  # -v: the traceback is shown, and it too is clean

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    written = {p.name for p in files}
    assert {"q.pinned", "q6.pinned", "m.json", "q.verified", "query.verified", "params.yaml"} <= written
    for path in files:
        data = path.read_bytes().decode("utf-8", "replace")
        assert _leaks(data) == [], f"{path} contains a credential"
    for name, text in outputs.items():
        assert _leaks(text) == [], f"{name} contains a credential:\n{text[:2000]}"
