"""Two fetches into one destination: the second stops at once with a clear message; nothing is corrupted.

The first fetch is kept busy by the fault proxy ("drip": bodies trickle in); the second starts while
the first is writing. The lock is an ``flock`` beside the folder, so a ``kill -9`` of its holder frees
it; different destinations never block each other.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, fetch_cmd, manifest_for, md5, tree_md5s
from faultproxy import FaultMix, FaultProxy

from isc_kit.errors import DestinationError
from isc_kit.local import Destination
from isc_kit.transfer import fetch


@pytest.fixture
def objects(make_bucket: Callable[..., str], tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    bodies = {f"R{i:06d}.jpg": bytes([i % 251]) * (9000 + 101 * i) for i in range(60)}
    bucket = make_bucket({PREFIX + k: v for k, v in bodies.items()})
    from isc_kit.pinned import write_pinned

    pinned = tmp_path / "m.pinned"
    m = manifest_for(bucket, {k: (md5(v), len(v)) for k, v in bodies.items()})
    write_pinned(m, pinned)
    return pinned, {k: md5(v) for k, v in bodies.items()}, bucket


def _start(pinned: Path, dest: Path, endpoint: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        fetch_cmd(pinned, dest, "--endpoint-url", endpoint, *extra, jobs=2),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_writing(proc: subprocess.Popen[str], dest: Path) -> None:
    """Until the first file is in place (the lock is held from before the first write)."""
    deadline = time.monotonic() + 60
    while not (dest.exists() and any(p.suffix == ".jpg" for p in dest.iterdir())):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".isc-part-" in p.name or ".tmp-" in p.name]


@pytest.mark.slow
def test_second_fetch_on_the_same_destination_stops_clearly(
    s3_endpoint: str, objects, tmp_path: Path
) -> None:
    pinned, want, _ = objects
    dest = tmp_path / "data" / "ref"
    with FaultProxy(s3_endpoint, FaultMix(drip=1.0, delay_seconds=0.01)) as proxy:
        first = _start(pinned, dest, proxy.url)
        _wait_until_writing(first, dest)
        second = _start(pinned, dest, proxy.url)
        out2, err2 = second.communicate(timeout=60)
        assert first.poll() is None  # the second gave up while the first was still writing
        _out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == DestinationError.exit_code
    assert out2 == ""
    [line] = err2.strip().splitlines()  # one line: what, where, what to do
    assert line.startswith("isc-kit fetch: error: ")
    assert str(dest) in line
    assert "another isc-kit process" in line
    assert "pid" in line
    assert "rerun" in line
    assert tree_md5s(dest) == want
    assert _leftovers(tmp_path) == []
    # afterwards the same command simply finds everything verified
    again = subprocess.run(
        fetch_cmd(pinned, dest, "--json", "--endpoint-url", s3_endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0
    assert json.loads(again.stdout)["skipped"] == 60


@pytest.mark.slow
def test_a_killed_holder_does_not_block_the_next_fetch(s3_endpoint: str, objects, tmp_path: Path) -> None:
    pinned, want, _ = objects
    dest = tmp_path / "ref"
    with FaultProxy(s3_endpoint, FaultMix(drip=1.0, delay_seconds=0.01)) as proxy:
        first = _start(pinned, dest, proxy.url)
        _wait_until_writing(first, dest)
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert Destination(
        dest
    ).lock_path.exists()  # the file stays; the kernel released the lock with the process
    second = _start(pinned, dest, s3_endpoint)
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert tree_md5s(dest) == want
    assert _leftovers(tmp_path) == []


def test_library_fetch_refuses_a_locked_destination_and_different_ones_are_independent(
    s3_env: str, objects, tmp_path: Path
) -> None:
    pinned, want, _bucket = objects
    from isc_kit.pinned import load_pinned

    m = load_pinned(pinned)
    busy, free = tmp_path / "busy", tmp_path / "free"
    with Destination(busy).lock(what="test"):
        with pytest.raises(DestinationError) as info:
            fetch(m, busy)
        assert "pid" in str(info.value)
        assert "test since" in str(info.value)
        assert not busy.exists() or list(busy.iterdir()) == []
        result = fetch(m, free)  # another folder: not blocked
        assert result.ok
    assert tree_md5s(free) == want
    assert Destination(busy).lock_path.parent == tmp_path / ".isc-kit"  # beside the folder, never inside it
    assert fetch(m, busy).ok  # released
    assert tree_md5s(busy) == want
    assert all(p.name != "busy.lock" for p in busy.rglob("*"))
