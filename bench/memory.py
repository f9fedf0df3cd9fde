"""Peak memory (RSS) of planning and fetching a 1,000,000-entry manifest.

The manifest lists R000000..R999999 with the md5 and size of an empty body; the nginx stand-in
answers every GET with an empty 200, so the run exercises the per-entry machinery (plan, queue,
requests, temp file, os.replace, verified record) for a million entries without 177 GB of data.
Each phase runs in its own process so ``ru_maxrss`` is that phase's peak.

    python -m bench.memory            # plan (empty dest), fetch, re-plan (1M files + record)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.fastserver import FastS3
from isc_kit.manifest import Manifest

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def big_manifest(n: int) -> Manifest:
    ids = pd.array([f"R{i:06d}" for i in range(n)], dtype=pd.StringDtype("pyarrow"))
    table = pd.DataFrame(
        {
            "image_id": ids,
            "relpath": pd.array([f"R{i:06d}.jpg" for i in range(n)], dtype=pd.StringDtype("pyarrow")),
            "md5": pd.array(np.full(n, EMPTY_MD5, dtype=object), dtype=pd.StringDtype("pyarrow")),
            "size": pd.array(np.zeros(n, dtype=np.int64), dtype="Int64"),
        }
    )
    return Manifest("reference", "drivendata-competition-fb-isc-data", "all/reference_images/", table)


def phase(name: str, n: int, dest: str, endpoint: str) -> None:
    import os

    from isc_kit.transfer import fetch, plan_fetch

    os.environ["ISC_KIT_ENDPOINT_URL"] = endpoint
    manifest = big_manifest(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if name in ("plan", "replan"):
        plan = plan_fetch(manifest, dest)
        detail = plan.counts
    else:
        result = fetch(manifest, dest, jobs=64, mirrors=[])
        detail = {"transferred": result.transferred, "failed": len(result.failed)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "phase": name,
                "entries": n,
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_mb": round(peak / 1024),
                "rss_before_mb": round(base / 1024),
                **detail,
            }
        ),
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--phase", choices=["plan", "fetch", "replan"])
    p.add_argument("--dest")
    p.add_argument("--endpoint")
    args = p.parse_args()
    n = max(1, min(args.entries, 1_000_000))
    if args.phase:
        phase(args.phase, n, args.dest, args.endpoint)
        return
    tmp = Path(tempfile.mkdtemp(prefix="isc-kit-bench-mem-"))
    try:
        with FastS3(tmp, empty=True) as server:
            for name in ("plan", "fetch", "replan"):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.memory",
                        "--entries",
                        str(n),
                        "--phase",
                        name,
                        "--dest",
                        str(tmp / "ref"),
                        "--endpoint",
                        server.endpoint_url,
                    ],
                    check=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
