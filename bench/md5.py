"""MD5 of in-memory bodies: hashlib one at a time vs the multi-buffer kernels in batches.

    .venv/bin/python -m bench.md5 --files 10000 --size 177000 --rounds 5

Like a fetch's bodies: ``--files`` separate ``bytes`` objects of random sizes around ``--size``
(uniform in +-33%, seeded), all in memory. One thread. Each configuration hashes all of them; the
configurations run interleaved, ``--rounds`` times, and the median is reported. Every kernel's
digests are checked against hashlib's before timing.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable

from isc_kit import md5batch

Run = Callable[[list[bytes]], list[str]]


def make_bodies(files: int, size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(size * 2 // 3, size * 4 // 3 + 1)) for _ in range(files)]


def one_by_one(bodies: list[bytes]) -> list[str]:
    return [hashlib.md5(b, usedforsecurity=False).hexdigest() for b in bodies]


def batched(level: str, batch: int) -> Run:
    md5_many = md5batch._MD5X.md5_many

    def run(bodies: list[bytes]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(bodies), batch):
            out += [d.hex() for d in md5_many(bodies[i : i + batch], _level=level)]
        return out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=177_000, help="mean body size in bytes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="16,32,64")
    parser.add_argument("--levels", default=",".join(md5batch.backends()), help="kernels to time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    bodies = make_bodies(args.files, args.size, args.seed)
    total = sum(map(len, bodies))
    configs: dict[str, Run] = {"hashlib, one by one": one_by_one}
    for level in filter(None, args.levels.split(",")):
        for batch in map(int, args.batches.split(",")):
            configs[f"{level}, batches of {batch}"] = batched(level, batch)

    want = one_by_one(bodies)
    for name, run in configs.items():
        if run(bodies) != want:
            raise SystemExit(f"{name}: digests differ from hashlib's")

    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, run in configs.items():
            started = time.perf_counter()
            run(bodies)
            times[name].append(time.perf_counter() - started)

    base = statistics.median(times["hashlib, one by one"])
    print(
        f"### MD5 of {args.files:,} in-memory bodies, {total / 1e9:.2f} GB (mean {total / args.files / 1e3:.0f} KB), "
        f"1 thread, median of {args.rounds} interleaved rounds; backend() = {md5batch.backend()}\n"
    )
    print("| method | seconds | GB/s | vs hashlib |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {total / 1e9 / med:.2f} | {base / med:.2f}x |")


if __name__ == "__main__":
    main()
