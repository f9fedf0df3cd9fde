"""A real ``kill -9`` of ``isc-kit fetch`` at several points: no partial file under a final name; the rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _fetch_helpers import expected_md5s, fetch_cmd, tree_md5s

from isc_kit.pinned import load_pinned, write_pinned
from isc_kit.transfer import fetch

ROOT = Path(__file__).resolve().parents[2]


def _count(dest: Path) -> tuple[int, int]:
    """(final-named files, temp files) in dest right now."""
    finals = temps = 0
    try:
        with os.scandir(dest) as it:
            for e in it:
                if ".isc-part-" in e.name:
                    temps += 1
                else:
                    finals += 1
    except FileNotFoundError:
        pass
    return finals, temps


def _kill_when(proc: subprocess.Popen[bytes], dest: Path, *, finals: int, temp: bool) -> None:
    """Poll the folder (not the clock) and SIGKILL the fetch once it reaches the wanted state."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        n, t = _count(dest)
        if n >= finals and (t > 0 or not temp):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait(timeout=30)


def _start_fetch(pinned: Path, dest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        fetch_cmd(pinned, dest, jobs=1), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.slow
@pytest.mark.parametrize("finals", [1, 10, 25], ids=["after-1", "after-10", "after-25"])
def test_kill_9_leaves_only_verified_files_and_rerun_completes(
    s3_env: str, tiny_root: Path, pinned: Path, tmp_path: Path, finals: int
) -> None:
    # Small bodies are checked in memory and exist as a part file only for the microseconds of one
    # write + rename; killing inside a part file's life is the large-object test below (and the matrix).
    dest = tmp_path / "ref"
    proc = _start_fetch(pinned, dest)
    _kill_when(proc, dest, finals=finals, temp=False)
    assert proc.returncode == -signal.SIGKILL, "the fetch finished before it could be killed"

    expected = expected_md5s(tiny_root)
    present = {r: h for r, h in tree_md5s(dest).items() if ".isc-part-" not in r}
    assert len(present) >= finals
    assert all(expected[r] == h for r, h in present.items()), "a file under its final name has wrong bytes"

    result = fetch(load_pinned(pinned), dest)
    assert result.ok, result.failed
    assert result.skipped == len(present)
    assert result.transferred == 40 - len(present)
    assert tree_md5s(dest) == expected  # complete, and no temp file survived the completed run


@pytest.mark.slow
def test_kill_9_while_a_large_object_streams_to_its_part_file(
    s3_env: str, make_bucket: object, tmp_path: Path
) -> None:
    """Objects above the in-memory limit are streamed to ``.name.isc-part-*``: kill while one is being written."""
    import hashlib
    import random

    from _fetch_helpers import PREFIX, manifest_for

    rng = random.Random(7)
    bodies = {f"R{i:06d}.jpg": rng.randbytes(12 << 20) for i in range(3)}
    bucket = make_bucket({PREFIX + r: b for r, b in bodies.items()})  # type: ignore[operator]
    m = manifest_for(bucket, {r: (hashlib.md5(b).hexdigest(), len(b)) for r, b in bodies.items()})
    pinned = tmp_path / "big.pinned"
    write_pinned(m, pinned)
    dest = tmp_path / "big"
    proc = _start_fetch(pinned, dest)
    _kill_when(proc, dest, finals=0, temp=True)
    assert proc.returncode == -signal.SIGKILL, "the fetch finished before it could be killed"
    finals = [p for p in dest.iterdir() if ".isc-part-" not in p.name]
    assert all(p.read_bytes() == bodies[p.name] for p in finals)
    result = fetch(m, dest)
    assert result.ok, result.failed
    assert sorted(p.name for p in dest.iterdir()) == sorted(bodies)  # part files of the killed run are gone
    assert all((dest / r).read_bytes() == b for r, b in bodies.items())
