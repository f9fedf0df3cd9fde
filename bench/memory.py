"""Peak memory (RSS) of planning and fetching a 1,000,000-entry manifest.

The manifest lists R000000..R999999 with the md5 and size of an empty body; the nginx stand-in
answers every GET with an empty 200, so the run exercises the per-entry machinery (plan, queue,
requests, temp file, os.replace, verified record) for a million entries without 177 GB of data.
Each phase runs in its own process so its VmHWM is that phase's peak; the manifest is a
pinned file written once (as a user has it), read by each phase.

    python -m bench.memory    # plan (library, empty dest), fetch (CLI), re-plan (library), re-fetch (CLI)
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

from bench.fastserver import FastS3

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def big_manifest(n: int) -> object:
    import numpy as np
    import pandas as pd

    from isc_kit.manifest import Manifest

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


def _hwm_mb() -> int:
    """Peak RSS of this process image in MB (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def phase(name: str, pinned: str, dest: str, endpoint: str) -> None:
    import os

    os.environ["ISC_KIT_ENDPOINT_URL"] = endpoint
    base = _hwm_mb()
    t0 = time.perf_counter()
    if name in ("plan", "replan"):  # the library path: load_pinned (pandas) + plan_fetch
        from isc_kit.manifest import load_pinned
        from isc_kit.transfer import plan_fetch

        plan = plan_fetch(load_pinned(pinned), dest)
        detail: dict[str, object] = plan.counts
    else:  # the CLI path, in this process
        from isc_kit.cli.main import main as cli

        rc = cli(["-q", "fetch", pinned, dest, "--jobs", "64", "--no-progress", "--json"])
        detail = {"exit": rc, "pandas_imported": "pandas" in sys.modules}
    peak = _hwm_mb()
    print(
        json.dumps(
            {
                "phase": name,
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_mb": peak,
                "rss_before_mb": base,
                **detail,
            }
        ),
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--phase", choices=["plan", "fetch", "replan", "refetch"])
    p.add_argument("--pinned")
    p.add_argument("--dest")
    p.add_argument("--endpoint")
    args = p.parse_args()
    n = max(1, min(args.entries, 1_000_000))
    if args.phase:
        phase(args.phase, args.pinned, args.dest, args.endpoint)
        return
    from isc_kit.manifest import write_pinned

    tmp = Path(tempfile.mkdtemp(prefix="isc-kit-bench-mem-"))
    try:
        pinned = tmp / "big.pinned"
        write_pinned(big_manifest(n), pinned)
        with FastS3(tmp, empty=True) as server:
            for name in ("plan", "fetch", "replan", "refetch"):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.memory",
                        "--phase",
                        name,
                        "--pinned",
                        str(pinned),
                        "--dest",
                        str(tmp / "ref"),
                        "--endpoint",
                        server.endpoint_url,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
