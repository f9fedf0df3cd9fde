"""Kill matrix: ``kill -9`` at 20 points of a fetch and of a pin, rerun after each, then finish.

Fetch: a subprocess fetches 200 objects through the fault proxy in "drip" mode (bodies trickle in, so
part files are often half written when the kill lands); the test polls the destination and sends
SIGKILL as soon as the k-th threshold of finished files is reached (thresholds 0, 10, ..., 190: spread
over the whole transfer, deterministic by progress, not by time). Pin: it finishes in milliseconds, so
the kill comes from inside: an audit hook counts the pin's filesystem calls (link, chmod, open for
writing, rename, mkdir) below the repository and SIGKILLs its own process at the k-th one.

After every kill: no file under a final name has bytes other than the manifest's, and the cache never
holds an object whose bytes differ from its name, nor a ``.dvc`` pointing at missing objects. After the
final run: everything verified, no temp file anywhere, DVC itself agrees.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from _fetch_helpers import PREFIX, fetch_cmd, manifest_for, md5, tree_md5s
from faultproxy import FaultMix, FaultProxy

from isc_kit.cli.main import main
from isc_kit.pinned import write_pinned

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
DVC = str(Path(sys.executable).with_name("dvc"))


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "DVC_NO_ANALYTICS": "1", **extra}


def leftovers(root: Path) -> list[str]:
    """Temp files of any isc-kit writer (part files, record/manifest/cache temps) below root."""
    return sorted(
        str(p)
        for p in root.rglob("*")
        if ".isc-part-" in p.name or ".tmp-" in p.name or ".isc-tmp-" in p.name
    )


def finished(dest: Path) -> int:
    try:
        return sum(1 for e in os.scandir(dest) if e.name.endswith(".jpg") and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------------------------------- fetch


@pytest.mark.slow
def test_fetch_survives_20_kills_and_completes(
    s3_endpoint: str, make_bucket: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(6)
    # mostly small objects, and every 20th above the engine's 1 MB in-memory limit, so it streams to a part file
    sizes = [
        rng.randint(4_300_000, 5_000_000) if i % 20 == 7 else rng.randint(20_000, 60_000) for i in range(200)
    ]
    bodies = {f"R{i:06d}.jpg": rng.randbytes(n) for i, n in enumerate(sizes)}
    bucket = make_bucket({PREFIX + k: v for k, v in bodies.items()})
    want = {k: md5(v) for k, v in bodies.items()}
    pinned = tmp_path / "m.pinned"
    write_pinned(manifest_for(bucket, {k: (want[k], len(v)) for k, v in bodies.items()}), pinned)
    dest = tmp_path / "data" / "ref"
    cmd = fetch_cmd(pinned, dest, jobs=4)

    kills, partial_seen = [], 0
    with FaultProxy(s3_endpoint, FaultMix(drip=1.0, delay_seconds=0.004)) as proxy:
        env = child_env(ISC_KIT_ENDPOINT_URL=proxy.url)
        for k in range(KILLS):
            threshold = k * 10
            # two kills wait for a part file of this run to exist, so at least those land mid-write
            # (large objects 67, 87, ... are still to come at those thresholds)
            mid_write = k in (5, 15)
            stale = set(leftovers(dest)) if dest.exists() else set()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while proc.poll() is None:
                done = finished(dest)
                writing = not mid_write or bool(set(leftovers(dest)) - stale)
                if done >= threshold and (threshold or dest.exists()) and writing:
                    proc.send_signal(signal.SIGKILL)
                    break
                assert time.monotonic() < deadline, "fetch made no progress"
                time.sleep(0.002)
            proc.wait()
            proc.stderr.close()
            assert proc.returncode == -signal.SIGKILL, f"run {k} ended by itself before its kill point"
            kills.append(finished(dest))
            partial_seen += len(leftovers(dest))
            on_disk = tree_md5s(dest) if dest.exists() else {}
            bad = {r for r, h in on_disk.items() if ".isc-part-" not in r and want.get(r) != h}
            assert bad == set(), f"after kill {k}: wrong bytes under final names: {sorted(bad)}"

        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert tree_md5s(dest) == want
    assert leftovers(tmp_path) == []
    assert kills == sorted(kills)
    assert len(kills) == KILLS
    assert kills[-1] >= 190
    assert kills[0] < 10
    assert partial_seen > 0  # some kills really landed while part files were being written
    assert main(["-q", "verify", str(pinned), str(dest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] == 200
    assert report["extra_count"] == 0
    print(f"\nfetch kill points (files done): {kills}; part files left by kills: {partial_seen}")


# ---------------------------------------------------------------------------------------------- pin

KILL_HOOK = r"""
import os, signal, sys
ROOT = os.environ["KILL_ROOT"]
AT = int(os.environ["KILL_AT"])
COUNT_FILE = os.environ.get("KILL_COUNT_FILE")
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT
n = 0

def hook(event, args):
    global n
    if event not in ("open", "os.link", "os.chmod", "os.rename", "os.mkdir", "os.remove", "os.symlink"):
        return
    if not any(isinstance(a, str) and a.startswith(ROOT) for a in args[:2]):
        return
    if event == "os.link" and os.path.lexists(args[1]):
        return  # will fail with FileExistsError: no progress
    if event == "os.mkdir" and os.path.exists(args[0]):
        return
    if event == "open":
        mode, flags = args[1], args[2]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE
        )
        if not writing:
            return
    n += 1
    if os.environ.get("KILL_TRACE"):
        print(n, event, args[:2], file=sys.stderr)
    if COUNT_FILE:
        with open(COUNT_FILE, "w") as fh:
            fh.write(str(n))
    if n == AT:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
from isc_kit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def check_pin_state(repo: Path, files: dict[str, str]) -> bool:
    """Cache objects hold the bytes their names say; a .dvc (if any) points at a complete tree. True if pinned."""
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    if cache.exists():
        for obj in cache.rglob("*"):
            if obj.is_file() and ".tmp-" not in obj.name and ".isc-tmp-" not in obj.name:
                name = obj.parent.name + obj.name
                if name.endswith(".dir"):
                    assert hashlib.md5(obj.read_bytes()).hexdigest() == name[:-4], obj
                else:
                    assert hashlib.md5(obj.read_bytes()).hexdigest() == name, obj
    dvcfile = repo / "data" / "ref.dvc"
    if not dvcfile.exists():
        return False
    out = yaml.safe_load(dvcfile.read_text())["outs"][0]
    tree = cache / out["md5"][:2] / out["md5"][2:]
    assert tree.is_file(), f"{dvcfile} points at a missing .dir object"
    listing = json.loads(tree.read_bytes())
    assert {e["relpath"]: e["md5"] for e in listing} == files
    for e in listing:
        assert (cache / e["md5"][:2] / e["md5"][2:]).is_file(), f"{dvcfile} lists a missing object"
    assert out["nfiles"] == len(files)
    return True


@pytest.mark.slow
@pytest.mark.dvc
def test_pin_survives_20_kills_and_completes(tiny_root: Path, tmp_path: Path) -> None:
    from isc_kit.metadata import read_metadata

    repo = tmp_path / "repo"
    repo.mkdir()
    env = child_env()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=repo, env=env, check=True)
    pinned = repo / "ref.pinned"
    write_pinned(read_metadata(tiny_root / "metadata" / "reference_images_metadata.csv", "reference"), pinned)
    dest = repo / "data" / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)
    files = tree_md5s(dest)
    assert main(["-q", "verify", str(pinned), str(dest)]) == 0  # writes the verified record pin relies on

    def pin(at: int, count_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"KILL_ROOT": str(repo), "KILL_AT": str(at)}
        if count_file is not None:
            extra["KILL_COUNT_FILE"] = str(count_file)
        return subprocess.run(
            [sys.executable, "-c", KILL_HOOK, "-q", "pin", str(pinned), str(dest)],
            cwd=repo,
            env=child_env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
        )

    # how many filesystem calls a whole pin makes (on a scratch copy, so the real repo starts clean)
    scratch = tmp_path / "scratch"
    shutil.copytree(repo, scratch / "repo", symlinks=True)
    shutil.copytree(
        tmp_path / "repo" / "data" / ".isc-kit", scratch / "repo" / "data" / ".isc-kit", dirs_exist_ok=True
    )
    counted = tmp_path / "count"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_HOOK,
            "-q",
            "pin",
            str(scratch / "repo" / "ref.pinned"),
            str(scratch / "repo" / "data" / "ref"),
        ],
        cwd=scratch / "repo",
        env=child_env(
            KILL_ROOT=str(scratch / "repo"), KILL_AT="0", KILL_COUNT_FILE=str(counted), KILL_TRACE="1"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    total = int(counted.read_text())
    # the tail: every call after the last file went into the cache (.dir object, .dvc file, .gitignore lines)
    placed = [
        int(line.split()[0])
        for line in done.stderr.splitlines()
        if " os.chmod " in line and ".dir" not in line
    ]
    tail = total - max(placed)
    assert total > 2 * len(files)  # a link and a chmod per file at least

    # Body: runs each killed after `step` more calls that change something (a replayed link that fails does
    # not count), so the kills land one after the other across the links into the cache. Tail: the calls after
    # the last link write the .dir object, the .dvc file and the .gitignore lines; from the state the body
    # left, one run is killed at each of them in turn (the state restored before each), then checked.
    assert 0 < tail < KILLS
    body = KILLS - tail
    steps = [(total - tail) * (i + 1) // body - (total - tail) * i // body for i in range(body)]
    killed = 0
    for at in steps:
        result = pin(at)
        killed += result.returncode == -signal.SIGKILL
        check_pin_state(repo, files)
    snapshot = tmp_path / "after-body"
    shutil.copytree(repo, snapshot, symlinks=True)
    for at in range(1, tail + 1):
        shutil.rmtree(repo)
        shutil.copytree(snapshot, repo, symlinks=True)
        result = pin(at)
        killed += result.returncode == -signal.SIGKILL
        check_pin_state(repo, files)
    assert killed == KILLS
    schedule = [*steps, *range(1, tail + 1)]

    final = pin(0)
    assert final.returncode == 0, final.stderr
    assert check_pin_state(repo, files)
    assert leftovers(repo) == []
    status = subprocess.run([DVC, "status", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout or "{}") == {}
    print(f"\npin: {total} filesystem calls, kill schedule {schedule}")
