"""Client CPU per GET: isc_kit's raw client vs aiohttp vs s3fs/aiobotocore (anonymous), on the nginx stand-in.

Each client fetches every reference image of a fixture scale into memory (bodies discarded)
``--rounds`` times at the same concurrency; we report client CPU seconds (user+sys of this
process) per request and wall time. Interleaved rounds, medians.

    python -m bench.http_cpu --scale demo --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from bench.fastserver import FastS3
from isc_kit.catalog import DEFAULT_BUCKET
from isc_kit.fixture import materialize

PREFIX = "all/reference_images/"


async def _aiohttp_round(endpoint: str, keys: list[str], jobs: int) -> int:
    import aiohttp

    total = 0
    it = iter(keys)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=jobs), auto_decompress=False, skip_auto_headers=("User-Agent",)
    ) as session:

        async def worker() -> None:
            nonlocal total
            for key in it:
                async with session.get(f"{endpoint}/{DEFAULT_BUCKET}/{key}") as resp:
                    async for chunk in resp.content.iter_chunked(1 << 18):
                        total += len(chunk)

        await asyncio.gather(*(worker() for _ in range(jobs)))
    return total


async def _raw_round(endpoint: str, keys: list[str], jobs: int) -> int:
    from isc_kit.transfer.rawhttp import Origin, RawClient

    class Sink:  # the body lands in one buffer, as in a fetch
        def buffer(self, length: int) -> bytearray:
            return bytearray(length)

        def write(self, chunk: bytes) -> None:
            raise AssertionError("not streamed")

    total = 0
    it = iter(keys)
    client = RawClient()
    origin, base = Origin.of(f"{endpoint}/{DEFAULT_BUCKET}/")

    async def worker() -> None:
        nonlocal total
        sink = Sink()
        for key in it:
            resp = await client.request(origin, client.request_bytes("GET", origin, base + key), sink)
            total += resp.received

    try:
        await asyncio.gather(*(worker() for _ in range(jobs)))
    finally:
        client.close()
    return total


async def _s3fs_round(endpoint: str, keys: list[str], jobs: int) -> int:
    import s3fs

    fs = s3fs.S3FileSystem(
        anon=True, endpoint_url=endpoint, asynchronous=True, config_kwargs={"max_pool_connections": jobs}
    )
    await fs.set_session()
    total = 0
    it = iter(keys)

    async def worker() -> None:
        nonlocal total
        for key in it:
            data = await fs._cat_file(f"{DEFAULT_BUCKET}/{key}")
            total += len(data)

    try:
        await asyncio.gather(*(worker() for _ in range(jobs)))
    finally:
        await fs._s3creator.__aexit__(None, None, None)
    return total


def _measure(fn: object, endpoint: str, keys: list[str], jobs: int) -> tuple[float, float, int]:
    t0, c0 = time.perf_counter(), time.process_time()
    n = asyncio.run(fn(endpoint, keys, jobs))  # type: ignore[operator]
    return time.perf_counter() - t0, time.process_time() - c0, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="demo")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=32)
    args = p.parse_args()
    root = materialize(args.scale)
    keys = sorted(PREFIX + f.name for f in Path(root, PREFIX).iterdir())
    clients = {
        "isc_kit raw client (unsigned)": _raw_round,
        "aiohttp (lean, unsigned)": _aiohttp_round,
        "s3fs/aiobotocore (anon)": _s3fs_round,
    }
    results: dict[str, list[tuple[float, float]]] = {c: [] for c in clients}
    with FastS3(root) as server:
        for fn in clients.values():  # warm-up
            _measure(fn, server.endpoint_url, keys[:50], args.jobs)
        for r in range(max(1, min(args.rounds, 20))):
            order = list(clients.items())
            order = order[r % len(order) :] + order[: r % len(order)]
            for name, fn in order:
                wall, cpu, _ = _measure(fn, server.endpoint_url, keys, args.jobs)
                results[name].append((wall, cpu))
    size = sum(Path(root, k).stat().st_size for k in keys) / len(keys)
    print(
        f"{len(keys)} GETs of ~{size / 1000:.0f} KB, {args.jobs} concurrent, {args.rounds} interleaved rounds (medians)"
    )
    print("| client | wall s | client CPU s | CPU µs / request |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / len(keys) * 1e6:.0f} |")


if __name__ == "__main__":
    main()
