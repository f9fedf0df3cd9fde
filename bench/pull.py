"""Benchmark ``isc-kit pull`` against ``dvc pull`` and ``s5cmd cp`` of the same objects from an S3 team remote.

The team remote is a DVC 3 layout (``teamstore/files/md5/xx/...`` plus the ``.dir`` object)
served by the nginx stand-in (bench/fastserver.py) under the publisher's bucket name; the origin
repository is a git repo holding ``data.dvc`` and the remote's config (``allow_anonymous_login``,
no credentials: every client sends unsigned GETs). Each timed run clones the origin into a new
ext4 file system (loop device, as bench/fetch.py), rounds interleaved with the client order
rotating. After each pull the workspace is checked byte for byte against the tree and the first
``dvc status`` is timed (it must report the workspace clean).

    python -m bench.pull --files 10000 --size 2048 --rounds 3
    python -m bench.pull --files 10000 --size 177000 --rounds 3
    python -m bench.pull --plan-rss 1000000          # peak RSS of planning a 1,000,000-entry pull
    python -m bench.pull --status-after-pin 100000   # first `dvc status` after pin, with / without state
    python -m bench.pull --push 10000 --rounds 3     # isc-kit push vs dvc push to a folder remote
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fastserver import FastS3
from bench.fetch import TOOLS, RunFolders, _env
from bench.pull_extra import make_tree
from isc_kit.catalog import DEFAULT_BUCKET
from isc_kit.dvcfiles import dvcfile_text, tree_bytes, tree_oid

ISC = str(Path(sys.executable).with_name("isc-kit"))
DVC = str(Path(sys.executable).with_name("dvc"))
STORE = "teamstore"
GIT_ID = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}


def write_remote(root: Path, tree: list[tuple[str, bytes]]) -> tuple[str, dict[str, str]]:
    """The DVC 3 remote layout of ``tree`` under ``root/teamstore``; returns the .dir oid and relpath -> md5."""
    md5s = {}
    base = root / STORE / "files" / "md5"
    for rel, body in tree:
        md5 = hashlib.md5(body).hexdigest()
        md5s[rel] = md5
        (base / md5[:2]).mkdir(parents=True, exist_ok=True)
        (base / md5[:2] / md5[2:]).write_bytes(body)
    data = tree_bytes(md5s.items())
    oid = tree_oid(data)
    (base / oid[:2]).mkdir(parents=True, exist_ok=True)
    (base / oid[:2] / oid[2:]).write_bytes(data)
    return oid, md5s


def bench_env(endpoint: str, tmp: Path) -> dict[str, str]:
    """No AWS credentials anywhere (every client sends unsigned requests); empty config files DVC accepts."""
    empty = tmp / "aws-empty"
    empty.write_text("")
    env = {**_env(endpoint), **GIT_ID, "DVC_NO_ANALYTICS": "1"}
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty))
    env.pop("ISC_KIT_ENDPOINT_URL", None)
    return env


def make_origin(path: Path, oid: str, size: int, nfiles: int, endpoint: str) -> Path:
    env = {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1"}
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True, env=env)
    subprocess.run([DVC, "init", "-q"], cwd=path, check=True, env=env)
    (path / "data.dvc").write_text(dvcfile_text("data", oid, size, nfiles))
    (path / ".gitignore").write_text("/data\n")
    url = f"s3://{DEFAULT_BUCKET}/{STORE}"
    for cmd in (
        ["remote", "add", "-d", "team", url],
        ["remote", "modify", "team", "endpointurl", endpoint],
        ["remote", "modify", "team", "allow_anonymous_login", "true"],
    ):
        subprocess.run([DVC, *cmd], cwd=path, check=True, env=env, capture_output=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "data"], cwd=path, check=True, env=env)
    return path


def check_tree(work: Path, md5s: dict[str, str]) -> None:
    for rel, md5 in md5s.items():
        with open(work / rel, "rb") as fh:
            if hashlib.file_digest(fh, "md5").hexdigest() != md5:
                raise RuntimeError(f"{work / rel}: wrong bytes")
    found = sum(len(files) for _r, _d, files in os.walk(work))
    if found != len(md5s):
        raise RuntimeError(f"{work}: {found} files, expected {len(md5s)}")


#: Runs the isc-kit CLI and reports its own peak RSS (VmHWM belongs to the process's memory after
#: exec; wait4's ru_maxrss would include the forking bench process's pages).
WITH_HWM = """
import sys
from isc_kit.cli.main import main
try:
    rc = main(sys.argv[1:])
finally:
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print(f"VMHWM {hwm}", file=sys.stderr)
sys.exit(rc)
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB that a wrapped isc-kit reports; 0 for other commands)."""
    os.sync()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, _usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} failed ({proc.returncode}): {err[-800:].decode(errors='replace')}"
        )
    hwm = [line for line in err.decode(errors="replace").splitlines() if line.startswith("VMHWM ")]
    return seconds, int(hwm[-1].split()[1]) / 1024 if hwm else 0.0  # others: not measured (see above)


def one_run(
    name: str, origin: Path, mnt: Path, endpoint: str, env: dict[str, str], jobs: int
) -> dict[str, float]:
    clone = mnt / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, env=env)
    subprocess.run(
        [DVC, "config", "--local", "core.site_cache_dir", str(mnt / "site")], cwd=clone, check=True, env=env
    )
    if name == "s5cmd cp":
        src = f"s3://{DEFAULT_BUCKET}/{STORE}/files/md5/*"
        cmd = [
            str(TOOLS / "bin" / "s5cmd"),
            "--no-sign-request",
            "--endpoint-url",
            endpoint,
            "cp",
            src,
            f"{mnt}/objs/",
        ]
        seconds, rss = timed(cmd, mnt, env)
        return {"pull": seconds, "rss": rss}
    cmd = (
        [sys.executable, "-c", WITH_HWM, "-q", "pull", "--no-progress", "--jobs", str(jobs)]
        if name == "isc-kit pull"
        else [DVC, "pull", "-q"]
    )
    seconds, rss = timed(cmd, clone, env)
    out = {"pull": seconds, "rss": rss}
    t0 = time.perf_counter()
    status = subprocess.run([DVC, "status", "-q"], cwd=clone, env=env, capture_output=True, text=True)
    out["status"] = time.perf_counter() - t0
    if status.returncode != 0:
        raise RuntimeError(f"{name}: dvc status not clean: {status.stdout[-400:]}")
    return out


def bench_pull(n: int, size: int, rounds: int, clients: list[str], jobs: int) -> str:
    tree = make_tree(n, size)
    total = sum(len(b) for _, b in tree)
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-pull-") as tmp:
        root = Path(tmp) / "served"
        oid, md5s = write_remote(root, tree)
        del tree
        folders = RunFolders(Path(tmp), 3 * total + n * 8192)
        with FastS3(root, etag=True) as server:
            env = bench_env(server.endpoint_url, Path(tmp))
            origin = make_origin(Path(tmp) / "origin", oid, total, n, server.endpoint_url)
            times: dict[str, list[dict[str, float]]] = {c: [] for c in clients}
            for r in range(rounds):
                for name in clients[r % len(clients) :] + clients[: r % len(clients)]:
                    with folders.fresh(f"r{r}-{name.split()[0]}") as mnt:
                        got = one_run(name, origin, mnt, server.endpoint_url, env, jobs)
                        if name != "s5cmd cp":
                            check_tree(mnt / "clone" / "data", md5s)
                    times[name].append(got)
                    print(f"  round {r + 1}: {name} {got}", file=sys.stderr, flush=True)
    return _table(n, total, rounds, times, folders.loop)


def _table(n: int, total: int, rounds: int, times: dict[str, list[dict[str, float]]], loop: bool) -> str:
    ours = [t["pull"] for t in times["isc-kit pull"]]
    lines = [
        f"### pull: {n:,} files, {total / 1e6:,.0f} MB, S3 team remote on the nginx stand-in, {rounds} interleaved rounds"
        + (", each into a new ext4 file system" if loop else ""),
        "",
        "| client | median s | files/s | isc-kit time / client time (median of per-round ratios) | first `dvc status` after, s | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in times.items():
        pulls = [t["pull"] for t in runs]
        med = statistics.median(pulls)
        ratio = statistics.median(a / b for a, b in zip(ours, pulls, strict=True))
        status = f"{statistics.median(t['status'] for t in runs):.2f}" if "status" in runs[0] else "-"
        rss = max(t.get("rss", 0.0) for t in runs)
        shown = f"{rss:,.0f}" if rss else "-"
        lines.append(f"| {name} | {med:.2f} | {n / med:,.0f} | {ratio:.2f} | {status} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--size", type=int, default=2048, help="bytes per file (about)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=128)
    p.add_argument("--clients", default="isc-kit pull,dvc pull,s5cmd cp")
    p.add_argument("--plan-rss", type=int, metavar="N", help="only: peak RSS of planning an N-entry pull")
    p.add_argument(
        "--status-after-pin", type=int, metavar="N", help="only: first dvc status after pin of N files"
    )
    p.add_argument(
        "--push", type=int, metavar="N", help="only: isc-kit push vs dvc push of N files to a folder remote"
    )
    args = p.parse_args()
    if args.plan_rss:
        from bench.pull_extra import plan_rss

        print(plan_rss(args.plan_rss))
        return
    if args.push:
        from bench.pull_extra import push_folder

        print(push_folder(args.push, args.size, max(1, args.rounds)))
        return
    if args.status_after_pin:
        from bench.pull_extra import status_after_pin

        print(status_after_pin(args.status_after_pin, args.size))
        return
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - {"isc-kit pull", "dvc pull", "s5cmd cp"}
    if unknown:
        p.error(f"unknown clients {', '.join(sorted(unknown))}; choose from isc-kit pull, dvc pull, s5cmd cp")
    if "isc-kit pull" not in clients:
        clients.insert(0, "isc-kit pull")
    print(bench_pull(args.files, args.size, max(1, args.rounds), clients, args.jobs))


if __name__ == "__main__":
    main()
