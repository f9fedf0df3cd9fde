"""Baseline descriptors of the bench-scale reference selection on a Dask ``LocalCluster`` of 1 and 2 workers.

Each worker is one process with one thread. Two modes: ``fetch`` (each task fetches its chunk from the
embedded S3, MD5-verified, into its worker's folder, then describes it) and ``shared`` (the images are
already in a folder every worker reads; each file's MD5 is checked as it is read). Cluster start-up is
not timed. The per-image cost is worker-seconds per image (wall time x workers / images); the
projection for 1,000,000 references on N workers is the smallest cluster's cost x 1,000,000 / N (on a
machine of its own a worker keeps that cost; here 2 workers share 2 busy cores), i.e. perfect scaling,
which holds while the workers' bandwidth to the bucket and the client's HDF5 writes keep up.
The bucket is bench/fastserver.py (nginx; `bash bench/setup-tools.sh`): moto tops out near 250 requests/s.

    .venv/bin/python -m bench.dask_baseline --workers 1,2
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.fastserver import FastS3
from isc_kit.baseline import describe_all
from isc_kit.distributed import describe_on_dask
from isc_kit.evaluate.descriptors import read_descriptors
from isc_kit.fixture import materialize
from isc_kit.metadata import read_metadata
from isc_kit.source import Source
from isc_kit.transfer import fetch


def run(n_workers: int, manifest, source: Source, shared: Path, chunk: int, tmp: Path) -> dict[str, float]:
    from distributed import Client, LocalCluster

    times: dict[str, float] = {}
    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(n_workers)
        for mode in ("fetch", "shared"):
            out = tmp / f"{mode}-{n_workers}.h5"
            started = time.perf_counter()
            describe_on_dask(
                client,
                manifest,
                out,
                source=source,
                shared_dir=shared if mode == "shared" else None,
                work_dir=str(tmp / f"w{n_workers}"),
                chunk_size=chunk,
            )
            times[mode] = time.perf_counter() - started
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="bench")
    p.add_argument("--workers", default="1,2", help="cluster sizes to run (comma-separated)")
    p.add_argument("--limit", type=int, default=0, help="first N references only (0: all)")
    p.add_argument("--chunk-size", type=int, default=250)
    p.add_argument(
        "--project", default="8,64,512", help="worker counts for the 1,000,000-reference projection"
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = materialize(args.scale)
    manifest = read_metadata(root / "metadata" / "reference_images_metadata.csv", "reference")
    if args.limit:
        manifest = manifest.subset(np.arange(len(manifest)) < args.limit)
    n = len(manifest)
    rows = []
    with (
        FastS3(root) as server,
        tempfile.TemporaryDirectory(prefix="isc-kit-bench-") as t,
    ):
        tmp = Path(t)
        source = Source(endpoint_url=server.endpoint_url)
        shared = tmp / "shared"
        assert fetch(manifest, shared, source=source).ok
        started = time.perf_counter()
        describe_all([shared / r for r in manifest.table["relpath"]], query=False, jobs=1)
        serial = time.perf_counter() - started
        rows.append(("no Dask: one process, shared folder", 1, serial, n / serial, serial / n * 1000))
        results = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            results[workers] = run(workers, manifest, source, shared, args.chunk_size, tmp)
            for mode, seconds in results[workers].items():
                rows.append((mode, workers, seconds, n / seconds, seconds * workers / n * 1000))
        first = read_descriptors(tmp / f"fetch-{min(results)}.h5")[1]
        for workers in results:
            for mode in ("fetch", "shared"):
                assert np.array_equal(read_descriptors(tmp / f"{mode}-{workers}.h5")[1], first), (
                    mode,
                    workers,
                )
    print(f"{n:,} references, chunks of {args.chunk_size}, identical HDF5 output in every run\n")
    print("| mode | workers | seconds | images/s | ms per image per worker |")
    print("|---|---|---|---|---|")
    for mode, workers, seconds, rate, cost in rows:
        print(f"| {mode} | {workers} | {seconds:.1f} | {rate:,.0f} | {cost:.2f} |")
    per_image = {mode: cost for mode, workers, _, _, cost in rows if workers == min(results)}
    print(f"\nprojection for 1,000,000 references (per-image cost of the {min(results)}-worker run):\n")
    print("| workers | fetch + describe | describe (shared folder) |")
    print("|---|---|---|")
    for workers in [int(w) for w in args.project.split(",")]:
        f, s = (1e6 * per_image[m] / 1000 / workers for m in ("fetch", "shared"))
        print(f"| {workers} | {f / 60:,.1f} min | {s / 60:,.1f} min |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
