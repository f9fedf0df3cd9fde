"""Similarity search over 1,000,000 x 128-d random unit vectors: index build, query latency, recall@10.

    .venv/bin/python -m bench.similar --n 1000000 --dim 128 --queries 200 --nprobe 62,128,256

Builds :class:`isc_kit.neighbours.Neighbours` over a descriptor file of ``n`` seeded random unit
vectors (the approximate IVF index, as a file that size gets, cached beside it; the first build is
timed, then the load from the cache), then times single-image queries (k=10, one at a time, as the
widget asks: p50 / p95 wall and CPU) for each ``nprobe``, and recall@10 against the exact
``IndexFlatL2`` answer. Random unit vectors are the hardest case for an inverted file (no clusters:
a query's neighbours are spread over many lists), so real descriptors reach a given recall with a
smaller ``nprobe``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobe", default="62,128,256", help="comma-separated nprobe values")
    parser.add_argument(
        "--dir", default=None, help="where to write the descriptor file (default: a temp folder)"
    )
    args = parser.parse_args(argv)

    import numpy as np

    from isc_kit.evaluate.descriptors import write_descriptors
    from isc_kit.neighbours import Neighbours, recall_at

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "refs.h5"
        write_descriptors(path, [f"R{i:06d}" for i in range(args.n)], x)
        del x
        w0, c0 = time.perf_counter(), time.process_time()
        nb = Neighbours(path, approximate=True, progress=False)
        build_wall, build_cpu = time.perf_counter() - w0, time.process_time() - c0
        w0, c0 = time.perf_counter(), time.process_time()
        nb2 = Neighbours(path, approximate=True, progress=False)
        load_wall, load_cpu = time.perf_counter() - w0, time.process_time() - c0
        assert nb2.cache_path == nb.cache_path
        exact = Neighbours(path, approximate=False)
        truth, _ = exact.search_vectors(q, 10)
        ew = []
        for v in q[:50]:
            t = time.perf_counter()
            exact.search_vectors(v, 10)
            ew.append(time.perf_counter() - t)
        print(f"cpu: {_cpu()}, threads: faiss {_threads()}, load average {os.getloadavg()[0]:.1f}")
        print(f"{args.n:,} x {args.dim}-d, IVF{nb.nlist},Flat (train on {min(args.n, 40 * nb.nlist):,})")
        print(
            f"build: {build_wall:.1f} s wall, {build_cpu:.1f} s CPU; from the cache: {load_wall:.1f} s wall, {load_cpu:.1f} s CPU"
        )
        print(
            f"exact IndexFlatL2, one query: p50 {statistics.median(ew) * 1000:.1f} ms, p95 {_p95(ew) * 1000:.1f} ms"
        )
        print()
        print("| nprobe | share scanned | p50 wall | p95 wall | p50 CPU | recall@10 vs exact |")
        print("|---|---|---|---|---|---|")
        for nprobe in (int(p) for p in args.nprobe.split(",")):
            nb.index.nprobe = nprobe
            walls, cpus, found = [], [], []
            for v in q:
                w, c = time.perf_counter(), time.process_time()
                rows, _ = nb.search_vectors(v, 10)
                walls.append(time.perf_counter() - w)
                cpus.append(time.process_time() - c)
                found.append(rows[0])
            print(
                f"| {nprobe} | {nprobe / nb.nlist:.1%} | {statistics.median(walls) * 1000:.2f} ms | "
                f"{_p95(walls) * 1000:.2f} ms | {statistics.median(cpus) * 1000:.2f} ms | "
                f"{recall_at(np.array(found), truth):.3f} |"
            )
    return 0


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def _threads() -> int:
    import faiss

    return int(faiss.omp_get_max_threads())


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
