"""A real ``kill -9`` of ``isc-kit fetch`` at several points: no partial file under a final name; the rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fetch_helpers import expected_md5s, tree_md5s

from isc_kit.manifest import read_metadata, write_pinned
from isc_kit.transfer import fetch

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("finals", "temp"), [(0, True), (10, False), (25, True)], ids=["first-part", "after-10", "mid-25"]
)
def test_kill_9_leaves_only_verified_files_and_rerun_completes(
    s3_env: str, tiny_root: Path, tmp_path: Path, finals: int, temp: bool
) -> None:
    manifest = read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference")
    pinned = tmp_path / "ref.pinned"
    write_pinned(manifest, pinned)
    dest = tmp_path / "ref"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "isc_kit",
            "-q",
            "fetch",
            str(pinned),
            str(dest),
            "--jobs",
            "1",
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _kill_when(proc, dest, finals=finals, temp=temp)
    assert proc.returncode == -signal.SIGKILL, "the fetch finished before it could be killed"

    expected = expected_md5s(tiny_root)
    present = {r: h for r, h in tree_md5s(dest).items() if ".isc-part-" not in r}
    assert len(present) >= finals
    assert all(expected[r] == h for r, h in present.items()), "a file under its final name has wrong bytes"

    result = fetch(manifest, dest)
    assert result.ok, result.failed
    assert result.skipped == len(present)
    assert result.transferred == 40 - len(present)
    assert tree_md5s(dest) == expected  # complete, and no temp file survived the completed run
