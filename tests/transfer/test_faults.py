"""Full fetches through the fault-injecting proxy: every object ends verified or failed with its cause.

Invariants checked after every run, against MD5s computed here with hashlib from the fixture files:
no file under its final name differs from the manifest, every listed object is either on disk (and
verified) or reported failed with a reason, the summary counts equal what is on disk, no temp file
is left, and a rerun without faults completes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, expected_md5s, md5, recorded, tree_md5s
from faultproxy import FAULTS, FaultMix, FaultProxy

from isc_kit.cli.main import main
from isc_kit.pinned import write_pinned

#: name -> (mix, seed). The seed fixes which requests fail; the invariants must hold for any seed.
MIXES: dict[str, tuple[FaultMix, int]] = {
    "server-errors": (FaultMix(slowdown=0.25, error500=0.15), 1),
    "network": (FaultMix(reset=0.2, truncate=0.2), 2),
    "corruption": (FaultMix(flip=0.3), 3),
    "slow": (FaultMix(delay=0.4, drip=0.3, delay_seconds=0.01), 4),
    "everything": (FaultMix(slowdown=0.1, error500=0.05, reset=0.1, truncate=0.1, flip=0.1, delay=0.1), 5),
    "storm": (FaultMix(slowdown=0.15, error500=0.1, reset=0.15, truncate=0.15, flip=0.2), 6),
}

#: What a failure reason names, per fault (the cause must be recognisable in the report).
CAUSES = ("SlowDown", "InternalError", "HTTP 5", "md5 of", "truncated", "Disconnected", "reset", "Payload")


@pytest.fixture
def expected(tiny_root: Path) -> dict[str, str]:
    found = expected_md5s(tiny_root)
    assert len(found) == 40
    return found


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[callable]:
    started: list[FaultProxy] = []

    def make(mix: FaultMix, seed: int = 0) -> FaultProxy:
        p = FaultProxy(s3_endpoint, mix, seed=seed).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def run_fetch(pinned: Path, dest: Path, endpoint: str, capsys: pytest.CaptureFixture[str], *extra: str):
    code = main(["-q", "fetch", str(pinned), str(dest), "--json", "--endpoint-url", endpoint, *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def temps(root: Path) -> list[str]:
    return [str(p) for p in root.parent.rglob("*") if ".isc-part-" in p.name or ".tmp-" in p.name]


def check_outcome(code: int, out: dict, err: str, dest: Path, expected: dict[str, str]) -> dict[str, str]:
    """The invariants; returns relpath -> failure reason."""
    on_disk = tree_md5s(dest) if dest.exists() else {}
    failed = {f["relpath"]: f["reason"] for f in out["failed"]}
    wrong = {r: h for r, h in on_disk.items() if expected.get(r) != h}
    assert wrong == {}, f"files under their final name with the wrong bytes: {sorted(wrong)}"
    assert set(on_disk) | set(failed) == set(expected)  # every object: verified on disk, or failed
    assert set(on_disk) & set(failed) == set()
    assert all(reason.strip() for reason in failed.values())
    assert out["transferred"] + out["skipped"] == len(on_disk)
    assert out["failed_count"] == len(failed) == len(expected) - len(on_disk)
    assert (code == 0) == (not failed) == out["ok"]
    assert temps(dest) == []
    in_record = {r: e.md5 for r, e in recorded(dest).items()}
    assert in_record == {r: on_disk[r] for r in in_record}  # the record never vouches for bad bytes
    assert set(in_record) == set(on_disk)
    assert "Traceback" not in err
    for rel in list(failed)[:5]:
        assert f"FAILED {rel}:" in err
    return failed


@pytest.mark.parametrize("name", list(MIXES))
def test_fetch_through_faults_keeps_every_promise(
    name: str, proxy, pinned: Path, expected: dict[str, str], tmp_path: Path, capsys, s3_endpoint: str
) -> None:
    mix, seed = MIXES[name]
    p = proxy(mix, seed)
    dest = tmp_path / "ref"
    code, out, err = run_fetch(pinned, dest, p.url, capsys, "--jobs", "8", "--retries", "4")
    failed = check_outcome(code, out, err, dest, expected)
    injected = {f for f in FAULTS if getattr(mix, f)}
    assert set(p.injected) == injected, p.injected  # every fault of the mix really happened
    for reason in failed.values():
        assert any(c in reason for c in CAUSES), reason
    # a rerun (faults gone) does only what is left and completes
    code, out, err = run_fetch(pinned, dest, s3_endpoint, capsys)
    check_outcome(code, out, err, dest, expected)
    assert code == 0
    assert out["transferred"] == len(failed)
    assert out["skipped"] == 40 - len(failed)
    assert tree_md5s(dest) == expected
    print(
        f"\nfault mix {name} ({mix.describe()}, seed {seed}): {p.requests} requests, injected "
        f"{dict(sorted(p.injected.items()))}; {40 - len(failed)} verified, {len(failed)} failed with a cause"
    )


def test_every_body_corrupted_leaves_nothing_and_names_both_md5s(
    proxy, pinned: Path, expected: dict[str, str], tmp_path: Path, capsys
) -> None:
    p = proxy(FaultMix(flip=1.0), 7)
    dest = tmp_path / "ref"
    code, out, err = run_fetch(pinned, dest, p.url, capsys, "--retries", "2")
    failed = check_outcome(code, out, err, dest, expected)
    assert code == 1
    assert len(failed) == 40
    for rel, reason in failed.items():
        assert f"manifest says {expected[rel]}" in reason
        assert "discarded" in reason
    assert not dest.exists() or list(dest.rglob("*.jpg")) == []


def test_every_connection_reset_is_reported_as_failed_not_hung(
    proxy, pinned: Path, expected: dict[str, str], tmp_path: Path, capsys
) -> None:
    p = proxy(FaultMix(reset=1.0), 8)
    dest = tmp_path / "ref"
    code, out, err = run_fetch(pinned, dest, p.url, capsys, "--retries", "1", "--jobs", "16")
    failed = check_outcome(code, out, err, dest, expected)
    assert len(failed) == 40
    assert code == 1


def test_truncated_bodies_are_never_kept_even_without_sizes(
    proxy, make_bucket, tmp_path: Path, capsys, s3_endpoint: str
) -> None:
    """Objects with no size in the manifest: only Content-Length and the MD5 catch a short body."""
    bodies = {f"R{i:06d}.jpg": bytes([i]) * (5000 + 37 * i) for i in range(30)}
    bucket = make_bucket({PREFIX + k: v for k, v in bodies.items()})
    from _fetch_helpers import manifest_for

    m = manifest_for(bucket, {k: (md5(v), None) for k, v in bodies.items()})
    pinned = tmp_path / "m.pinned"
    write_pinned(m, pinned)
    want = {k: md5(v) for k, v in bodies.items()}
    p = proxy(FaultMix(truncate=0.5), 9)
    dest = tmp_path / "ref"
    code, out, err = run_fetch(pinned, dest, p.url, capsys, "--retries", "1")
    failed = check_outcome(code, out, err, dest, want)
    assert p.injected["truncate"] > 0
    assert all("truncated" in r or "Payload" in r for r in failed.values())
    code, out, err = run_fetch(pinned, dest, s3_endpoint, capsys)
    assert code == 0
    assert tree_md5s(dest) == want


def test_signed_path_through_faults(proxy, boto_client, tmp_path: Path, capsys, s3_endpoint: str) -> None:
    """With credentials (s3fs/aiobotocore, its own retries) the same promises hold."""
    import uuid

    from _fetch_helpers import manifest_for

    bucket = f"private-{uuid.uuid4().hex[:12]}"
    boto_client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    bodies = {f"R{i:06d}.jpg": bytes([i + 1]) * (3000 + 11 * i) for i in range(20)}
    for k, v in bodies.items():
        boto_client.put_object(Bucket=bucket, Key=PREFIX + k, Body=v)
    want = {k: md5(v) for k, v in bodies.items()}
    pinned = tmp_path / "m.pinned"
    write_pinned(manifest_for(bucket, {k: (md5(v), len(v)) for k, v in bodies.items()}), pinned)
    p = proxy(FaultMix(slowdown=0.15, reset=0.1, truncate=0.1, flip=0.15), 10)
    dest = tmp_path / "ref"
    code, out, err = run_fetch(pinned, dest, p.url, capsys, "--no-anon", "--retries", "3")
    check_outcome(code, out, err, dest, want)
    code, out, err = run_fetch(pinned, dest, s3_endpoint, capsys, "--no-anon")
    assert code == 0
    assert tree_md5s(dest) == want
