"""Benchmark ``isc-kit fetch`` against s5cmd, ``aws s3 cp``, ``rclone copy`` and s3fs ``get``, and
``isc-kit verify`` against ``md5sum -c``, on the same local server (nginx, bench/fastserver.py)
and the same objects (the ``bench`` fixture: 10,000 references of ~177 KB).

Runs are interleaved (the client order rotates every round) and each writes into a fresh folder
that is deleted afterwards. Prints a markdown table of medians and of per-round ratios to
isc-kit. Tools come from bench/setup-tools.sh.

    python -m bench.fetch --rounds 5 --delay-ms 0 --delay-ms 20
    python -m bench.fetch --clients "isc-kit fetch,s5cmd cp" --skip-verify --delay-ms 0 --delay-ms 20 --rounds 5

Each run also prints its wall time and CPU-seconds (user + sys of the client process) to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.fastserver import FastS3
from isc_kit.catalog import DEFAULT_BUCKET
from isc_kit.fixture import materialize
from isc_kit.metadata import read_metadata
from isc_kit.pinned import write_pinned
from isc_kit.transfer.run import DEFAULT_JOBS

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "all/reference_images/"
TOOLS = Path(os.environ.get("ISC_KIT_BENCH_TOOLS", Path.home() / ".cache" / "isc_kit" / "bench-tools"))
ISC = str(Path(sys.executable).with_name("isc-kit"))


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ISC_KIT_"))}
    env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_EC2_METADATA_DISABLED="true")
    env.update(
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", ISC_KIT_ENDPOINT_URL=endpoint
    )
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    return env


def commands(endpoint: str, pinned: Path, dest: Path, jobs: int) -> dict[str, list[str]]:
    src = f"s3://{DEFAULT_BUCKET}/{PREFIX}"
    return {
        "isc-kit fetch": [ISC, "-q", "fetch", str(pinned), str(dest), "--no-progress", "--jobs", str(jobs)],
        "s5cmd cp": [
            str(TOOLS / "bin" / "s5cmd"),
            "--no-sign-request",
            "--endpoint-url",
            endpoint,
            "cp",
            src + "*",
            str(dest) + "/",
        ],
        "aws s3 cp": [
            str(TOOLS / "bin" / "aws"),
            "s3",
            "cp",
            src,
            str(dest),
            "--recursive",
            "--no-sign-request",
            "--endpoint-url",
            endpoint,
            "--only-show-errors",
        ],
        "rclone copy": [
            "rclone",
            "copy",
            f":s3:{DEFAULT_BUCKET}/{PREFIX}",
            str(dest),
            "--s3-provider",
            "Other",
            "--s3-endpoint",
            endpoint,
            "--s3-env-auth=false",
            "--transfers",
            str(jobs),
            "--checkers",
            str(jobs),
            "--config",
            "/dev/null",
            "-q",
        ],
        "s3fs get": [
            sys.executable,
            "-c",
            "import sys, s3fs; fs = s3fs.S3FileSystem(anon=True, endpoint_url=sys.argv[1]); "
            "fs.get(sys.argv[2], sys.argv[3] + '/', recursive=True)",
            endpoint,
            f"{DEFAULT_BUCKET}/{PREFIX}",
            str(dest),
        ],
    }


def _run(cmd: list[str], env: dict[str, str], expect: int, dest: Path) -> float:
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threads: dict[str, float] = {}
    sampler = threading.Thread(target=_sample_threads, args=(proc, threads), daemon=True)
    sampler.start()
    _out, stderr = proc.communicate(timeout=1800)
    seconds = time.perf_counter() - t0
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    busiest = sorted(threads.values(), reverse=True)[:4]
    print(  # CPU-seconds are comparable on a loaded machine where wall-clock is not
        f"  {Path(cmd[0]).name} {' '.join(cmd[1:3])}: {seconds:.2f} s wall, "
        f"{user:.2f} user + {sys_:.2f} sys = {user + sys_:.2f} CPU-s ({(user + sys_) / seconds:.2f} cores); "
        f"busiest of {len(threads)} threads: {', '.join(f'{c:.2f}' for c in busiest)} CPU-s",
        file=sys.stderr,
    )
    got = sum(1 for _ in dest.rglob("*.jpg")) if dest.exists() else 0
    if proc.returncode != 0 or got != expect:
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}, {got}/{expect} files): {stderr[-500:]}")
    return seconds


def _sample_threads(proc: subprocess.Popen[str], cpu: dict[str, float]) -> None:
    """CPU-seconds (user + sys) of each thread of ``proc``, read from /proc every 10 ms until it exits
    (a thread's last <10 ms may be missed): shows whether one thread is the bottleneck."""
    tick = os.sysconf("SC_CLK_TCK")
    tasks = Path(f"/proc/{proc.pid}/task")
    while proc.poll() is None:
        for stat in tasks.glob("*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu[stat.parent.name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        time.sleep(0.01)


class RunFolders:
    """A destination folder for each timed run, on a file system in the same state every time.

    Deleting 10,000 files makes ext4 skip their inodes for the next minutes (``recently_deleted``
    in the inode allocator, seen with ``perf record -a``: seconds of system time for whichever
    client comes next), and keeping every run's files fills the page cache. So, when run as root
    with loop devices, each run gets a new ext4 file system in an image file (mkfs, mount, run,
    unmount, delete one file): every client starts from the same empty disk. Otherwise runs are
    moved aside and dropped from the page cache, and deleted at the end.
    """

    def __init__(self, base: Path, size: int, fs: str = "ext4"):
        self.base = base
        self.fs = fs
        self.image_bytes = max(2 * size, 1 << 30) + (1 << 30)
        self.loop = os.geteuid() == 0 and shutil.which("mkfs.ext4") is not None and self._try_loop()
        self._mounted: list[tuple[Path, Path, str]] = []

    def _try_loop(self) -> bool:
        try:
            with self.fresh("probe"):
                return True
        except (OSError, subprocess.CalledProcessError):
            return False

    @contextlib.contextmanager
    def fresh(self, name: str) -> Iterator[Path]:
        """A mount point (or plain folder) holding nothing; cleaned up on exit."""
        image = self.base / f"{name}.img"
        mnt = self.base / f"{name}.mnt"
        mnt.mkdir()
        if self.fs == "tmpfs":  # a new tmpfs per run: memory only, no block layer
            try:
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", f"size={self.image_bytes}", "tmpfs", str(mnt)],
                    check=True,
                    capture_output=True,
                )
                try:
                    yield mnt
                finally:
                    subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
            finally:
                mnt.rmdir()
            return
        with open(image, "wb") as fh:
            fh.truncate(self.image_bytes)
        dev = ""
        try:
            subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
            dev = subprocess.run(
                ["losetup", "-f", "--show", "--direct-io=on", str(image)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            subprocess.run(["mount", dev, str(mnt)], check=True, capture_output=True)
            try:
                yield mnt
            finally:
                subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        finally:
            if dev:
                subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)
            image.unlink(missing_ok=True)
            mnt.rmdir()

    @contextlib.contextmanager
    def run_folder(self, name: str) -> Iterator[Path]:
        if self.loop:
            with self.fresh(name) as mnt:
                yield mnt / "dest"
            return
        keep = self.base / "finished-runs"
        keep.mkdir(exist_ok=True)
        dest = self.base / name
        try:
            yield dest
        finally:
            if dest.exists():
                kept = keep / f"{name}-{time.monotonic_ns()}"
                dest.rename(kept)
                os.sync()
                for path in kept.rglob("*"):
                    if path.is_file():
                        fd = os.open(path, os.O_RDONLY)
                        try:
                            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                        finally:
                            os.close(fd)


def bench_fetch(
    root: Path,
    pinned: Path,
    n: int,
    size: int,
    delay: float,
    rounds: int,
    clients: list[str],
    jobs: int,
    folders: RunFolders,
) -> str:
    times: dict[str, list[float]] = {c: [] for c in clients}
    ratios: dict[str, list[float]] = {c: [] for c in clients}
    with FastS3(root, delay_ms=delay) as server, tempfile.TemporaryDirectory(prefix="isc-kit-bench-") as tmp:
        env = _env(server.endpoint_url)
        env_rclone = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
        for r in range(rounds):
            order = clients[r % len(clients) :] + clients[: r % len(clients)]
            this: dict[str, float] = {}
            for name in order:
                cmd_env = env_rclone if name.startswith("rclone") else env
                with folders.run_folder(f"r{r}-{name.split()[0]}") as dest:
                    cmd = commands(server.endpoint_url, pinned, dest, jobs)[name]
                    this[name] = _run(cmd, cmd_env, n, dest)
                shutil.rmtree(Path(tmp) / ".isc-kit", ignore_errors=True)
                for stray in Path(tmp).glob("*/.isc-kit"):
                    shutil.rmtree(stray, ignore_errors=True)
                os.sync()  # flush the previous client's dirty pages before timing the next one
                print(
                    f"  delay {delay:g} ms round {r + 1}: {name} {this[name]:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
            for name in clients:
                times[name].append(this[name])
                ratios[name].append(this["isc-kit fetch"] / this[name])
    lines = [
        f"### fetch: {n:,} objects, {size / 1e9:.2f} GB, {delay:g} ms added per request, {rounds} interleaved rounds",
        "",
        "| client | median s | MB/s | isc-kit time / client time (median of per-round ratios) |",
        "|---|---|---|---|",
    ]
    for name in clients:
        med = statistics.median(times[name])
        lines.append(
            f"| {name} | {med:.2f} | {size / 1e6 / med:,.0f} | {statistics.median(ratios[name]):.2f} |"
        )
    return "\n".join(lines)


def bench_verify(root: Path, pinned: Path, rounds: int) -> str:
    manifest = read_metadata(root / "metadata" / "reference_images_metadata.csv", "reference")
    src = root / PREFIX
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-") as tmp:
        sums = Path(tmp) / "ref.md5"
        sums.write_text(
            "".join(
                f"{m}  {r}\n" for r, m in zip(manifest.table["relpath"], manifest.table["md5"], strict=True)
            )
        )
        copy = Path(tmp) / "ref"
        shutil.copytree(src, copy)  # a tree another tool wrote; page cache is warm for both tools
        verify = [ISC, "-q", "verify", str(pinned), str(copy), "--no-progress"]
        tools = {
            "isc-kit verify": verify,
            "isc-kit verify --hash-jobs 1": [*verify, "--hash-jobs", "1"],
            "md5sum -c": ["md5sum", "--quiet", "-c", str(sums)],
        }
        times: dict[str, list[float]] = {t: [] for t in tools}
        ratio = []
        names = list(tools)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t0 = time.perf_counter()
                subprocess.run(tools[name], cwd=copy, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t0)
            ratio.append(times["isc-kit verify"][-1] / times["md5sum -c"][-1])
            print(
                "  verify round {}: {}".format(
                    r + 1, ", ".join(f"{t} {v[-1]:.2f} s" for t, v in times.items())
                ),
                file=sys.stderr,
            )
    gb = sum(p.stat().st_size for p in src.iterdir()) / 1e9
    return "\n".join(
        [
            f"### verify: {len(manifest):,} files, {gb:.2f} GB (page cache warm), {os.cpu_count()} cores, {rounds} interleaved rounds",
            "",
            "| tool | median s | GB/s |",
            "|---|---|---|",
            *(
                f"| {t} | {statistics.median(v):.2f} | {gb / statistics.median(v):.2f} |"
                for t, v in times.items()
            ),
            "",
            f"isc-kit verify / md5sum -c: {statistics.median(ratio):.2f} (median of per-round ratios)",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="bench")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--delay-ms", type=float, action="append", help="per-request delay; repeat (default 0 and 20)"
    )
    p.add_argument("--clients", default="isc-kit fetch,s5cmd cp,aws s3 cp,rclone copy,s3fs get")
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        help="concurrency for isc-kit and rclone (isc-kit's default)",
    )
    p.add_argument("--skip-verify", action="store_true")
    p.add_argument("--skip-fetch", action="store_true")
    p.add_argument(
        "--fs", choices=("ext4", "tmpfs"), default="ext4", help="what each run writes to (a new one per run)"
    )
    args = p.parse_args()
    rounds = max(1, min(args.rounds, 20))
    root = materialize(args.scale)
    manifest = read_metadata(root / "metadata" / "reference_images_metadata.csv", "reference")
    size = sum(p.stat().st_size for p in (root / PREFIX).iterdir())
    out = []
    with tempfile.TemporaryDirectory(prefix="isc-kit-bench-") as tmp:
        pinned = Path(tmp) / "ref.pinned"
        write_pinned(manifest, pinned)
        folders = RunFolders(Path(tmp), size, args.fs)
        print(
            f"  each run on a new {args.fs} file system"
            if folders.loop
            else "  runs set aside (no loop devices: not root?)",
            file=sys.stderr,
        )
        clients = [c.strip() for c in args.clients.split(",") if c.strip()]
        if "isc-kit fetch" not in clients:
            clients.insert(0, "isc-kit fetch")
        if not args.skip_fetch:
            for delay in args.delay_ms or [0.0, 20.0]:
                out.append(
                    bench_fetch(root, pinned, len(manifest), size, delay, rounds, clients, args.jobs, folders)
                )
        if not args.skip_verify:
            out.append(bench_verify(root, pinned, rounds))
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
