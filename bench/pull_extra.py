"""The two single-measurement parts of bench/pull.py: peak RSS of a 1,000,000-entry pull plan, and the
first ``dvc status`` after ``isc-kit pin`` with and without the DVC state records."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isc_kit.dvcfiles import dvcfile_text, tree_bytes, tree_oid

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}

#: Plans a pull in a child process (open the repo, read the .dir, check the cache for every object,
#: build the engine items), prints its peak RSS in MB.
PLAN = """
import sys
from isc_kit.pull_cachefill import CacheFill, items_for
from isc_kit._dvcremote import resolve_remote
from isc_kit.pull import PullResult, collect_outs
from dvc.repo import Repo
repo = Repo(sys.argv[1])
result = PullResult()
outs = collect_outs(repo, [], result)
fill = CacheFill(repo.cache.local.path, 128, 5, result)
remote = resolve_remote(repo.config, None)
fill.fetch_listings(remote, outs)
lacking, files = fill.plan_objects(outs)
n = sum(1 for _ in items_for(remote, sorted(lacking)))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(files, n, int(hwm) / 1024)  # VmHWM: ru_maxrss would include the forking parent's pages
"""


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=path, check=True, env=ENV)
    subprocess.run(
        [DVC, "config", "--local", "core.site_cache_dir", str(path / ".site")], cwd=path, check=True, env=ENV
    )
    return path


def plan_rss(n: int) -> str:
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-plan-") as tmp:
        repo = _repo(Path(tmp) / "r")
        subprocess.run(
            [DVC, "remote", "add", "-d", "team", str(Path(tmp) / "remote")], cwd=repo, check=True, env=ENV
        )
        entries = (
            (f"part{i % 10}/R{i:06d}.jpg", hashlib.md5(i.to_bytes(8, "little")).hexdigest()) for i in range(n)
        )
        data = tree_bytes(entries)
        oid = tree_oid(data)
        obj = repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]
        obj.parent.mkdir(parents=True)
        obj.write_bytes(data)
        os.chmod(obj, 0o444)
        (repo / "data.dvc").write_text(dvcfile_text("data", oid, n * 177_000, n))
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", PLAN, str(repo)], capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - t0
        files, items, rss = out.stdout.split()
    return (
        f"pull plan of {int(files):,} entries (.dir {len(data) / 1e6:.0f} MB, none cached, {int(items):,} engine "
        f"items built): peak RSS {float(rss):.0f} MB, {seconds:.1f} s"
    )


#: `dvc status` in a real DVC process that also prints how many files DVC's hashing step read.
STATUS = """
import sys
import dvc_data.hashfile.build as build
seen = [0]
real = build._hash_files
def counting(small, large, *args, **kwargs):
    seen[0] += len(small) + len(large)
    return real(small, large, *args, **kwargs)
build._hash_files = counting
from dvc.cli import main
rc = main(["status", "--quiet"])
print("HASHED", seen[0])
sys.exit(rc)
"""


def status_after_pin(n: int, size: int = 2048) -> str:
    """Pin ``n`` files with and without the DVC state records; time the pin, the first and second `dvc status`."""
    from isc_kit import dvcstate

    lines = [
        f"### first `dvc status` after `isc-kit pin`: {n:,} files of ~{size / 1000:.0f} KB",
        "",
        "| DVC state after pin | pin s | first `dvc status` s | files DVC hashed | second `dvc status` s |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-pin-") as tmp:
        tree = make_tree(n, size)
        for label, record in (("recorded by isc-kit pin", True), ("not recorded (before)", False)):
            repo = _repo(Path(tmp) / label.split()[0])
            t0 = time.perf_counter()
            _pin(repo, tree, record, dvcstate)
            pin_s = time.perf_counter() - t0
            row = [label, f"{pin_s:.1f}"]
            for k in range(2):
                os.sync()
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-c", STATUS], cwd=repo, env=ENV, capture_output=True, text=True
                )
                row.append(f"{time.perf_counter() - t0:.2f}")
                if proc.returncode != 0:
                    raise RuntimeError(f"dvc status not clean: {proc.stdout[-300:]}")
                if k == 0:
                    row.append(f"{int(proc.stdout.split()[-1]):,}")
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def _pin(repo: Path, tree: list[tuple[str, bytes]], record: bool, dvcstate: object) -> None:
    from isc_kit.local import Destination
    from isc_kit.manifest import Manifest
    from isc_kit.pin import pin

    folder = repo / "imgs"
    with Destination(folder).record_writer() as w:
        for rel, body in tree:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(body)
            st = os.stat(folder / rel)
            w.add(rel, st.st_size, st.st_mtime_ns, hashlib.md5(body).hexdigest())
    rows = [(f"R{i:06d}", rel, hashlib.md5(b).hexdigest(), len(b)) for i, (rel, b) in enumerate(tree)]
    saved = dvcstate.record_pinned  # type: ignore[attr-defined]
    if not record:
        dvcstate.record_pinned = lambda *a, **k: 0  # type: ignore[attr-defined]
    try:
        pin(
            Manifest.from_rows(
                "reference", "drivendata-competition-fb-isc-data", "all/reference_images/", rows
            ),
            folder,
        )
    finally:
        dvcstate.record_pinned = saved  # type: ignore[attr-defined]


def push_folder(n: int, size: int, rounds: int) -> str:
    """`isc-kit push` vs `dvc push` of ``n`` cached objects to an empty folder remote on a new ext4 file system."""
    import statistics

    from bench.fetch import RunFolders

    ISC = str(Path(sys.executable).with_name("isc-kit"))
    times: dict[str, list[float]] = {"isc-kit push": [], "dvc push": []}
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-push-") as tmp:
        repo = _repo(Path(tmp) / "origin")
        cache = repo / ".dvc" / "cache" / "files" / "md5"
        tree = make_tree(n, size)
        md5s = {}
        for rel, body in tree:
            md5 = md5s[rel] = hashlib.md5(body).hexdigest()
            (cache / md5[:2]).mkdir(parents=True, exist_ok=True)
            (cache / md5[:2] / md5[2:]).write_bytes(body)
            os.chmod(cache / md5[:2] / md5[2:], 0o444)
        total = sum(len(b) for _, b in tree)
        del tree
        data = tree_bytes(md5s.items())
        oid = tree_oid(data)
        (cache / oid[:2]).mkdir(parents=True, exist_ok=True)
        (cache / oid[:2] / oid[2:]).write_bytes(data)
        (repo / "data.dvc").write_text(dvcfile_text("data", oid, total, n))
        folders = RunFolders(Path(tmp), 2 * total + n * 8192)
        names = list(times)
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                with folders.fresh(f"p{r}-{name.split()[0]}") as mnt:
                    subprocess.run(
                        [DVC, "remote", "add", "-f", "-d", "team", str(mnt / "remote")],
                        cwd=repo,
                        check=True,
                        env=ENV,
                    )
                    cmd = [ISC, "-q", "push"] if name == "isc-kit push" else [DVC, "push", "-q"]
                    os.sync()
                    t0 = time.perf_counter()
                    subprocess.run(cmd, cwd=repo, check=True, env=ENV, capture_output=True)
                    times[name].append(time.perf_counter() - t0)
                    got = sum(len(f) for _r, _d, f in os.walk(mnt / "remote"))
                    if got != n + 1:
                        raise RuntimeError(f"{name}: {got} objects in the remote, expected {n + 1}")
                print(f"  push round {r + 1}: {name} {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    ratio = statistics.median(a / b for a, b in zip(times["isc-kit push"], times["dvc push"], strict=True))
    return "\n".join(
        [
            f"### push: {n:,} objects, {total / 1e6:,.0f} MB, to an empty folder remote on a new ext4 file system, "
            f"{rounds} interleaved rounds",
            "",
            "| client | median s | files/s |",
            "|---|---|---|",
            *(
                f"| {k} | {statistics.median(v):.2f} | {n / statistics.median(v):,.0f} |"
                for k, v in times.items()
            ),
            "",
            f"isc-kit push / dvc push: {ratio:.2f} (median of per-round ratios)",
        ]
    )


def make_tree(n: int, size: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` distinct files of ``size`` bytes (±10 %), relpaths in a few folders."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body = i.to_bytes(8, "little") + rng.randbytes(max(0, int(size * rng.uniform(0.9, 1.1)) - 8))
        out.append((f"part{i % 10}/{i:07d}.bin", body))
    return out
