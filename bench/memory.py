"""Peak memory (RSS) of planning and fetching a 1,000,000-entry manifest.

The manifest lists R000000..R999999 with the md5 and size of an empty body; the nginx stand-in
answers every GET with an empty 200, so the run exercises the per-entry machinery (plan, queue,
requests, temp file, os.replace, verified record) for a million entries without 177 GB of data.
Each phase runs in its own process so its VmHWM is that phase's peak; the manifest is a
pinned file written once (as a user has it), read by each phase.

    python -m bench.memory    # plan (library, empty dest), fetch (CLI), re-plan (library), re-fetch (CLI)

The fetch phase takes minutes; to iterate on the others, keep the folder it fills and skip it::

    python -m bench.memory --workdir /tmp/mem --phases fetch            # once: pinned file + 1M files
    python -m bench.memory --workdir /tmp/mem --phases plan,replan,refetch
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
    return Manifest.from_pandas(
        "reference", "drivendata-competition-fb-isc-data", "all/reference_images/", table
    )


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
    t0, c0 = time.perf_counter(), time.process_time()
    if name in ("plan", "replan"):  # the library path: load_pinned + plan_fetch
        from isc_kit.pinned import load_pinned
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
                "cpu_seconds": round(time.process_time() - c0, 1),  # user + sys of this phase
                "peak_rss_mb": peak,
                "rss_before_mb": base,
                **detail,
            }
        ),
        file=sys.stderr,
        flush=True,
    )


PHASES = ("plan", "fetch", "replan", "refetch")


def _phases(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(names) - set(PHASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"phases are a comma-separated subset of {','.join(PHASES)}")
    return [n for n in PHASES if n in names]  # always in the natural order


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--phases", type=_phases, default=list(PHASES), help="comma-separated (default: all four)")
    p.add_argument("--workdir", help="keep the pinned file and the fetched folder here between runs")
    p.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one phase, in a child process
    p.add_argument("--pinned", help=argparse.SUPPRESS)
    p.add_argument("--dest", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = p.parse_args()
    n = max(1, min(args.entries, 1_000_000))
    if args.phase:
        phase(args.phase, args.pinned, args.dest, args.endpoint)
        return
    from isc_kit.local import Destination
    from isc_kit.pinned import write_pinned

    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="isc-kit-bench-mem-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        pinned = tmp / f"big-{n}.pinned"
        if not pinned.exists():
            write_pinned(big_manifest(n), pinned)
        fetched = tmp / f"ref-{n}"
        if "fetch" in args.phases:
            shutil.rmtree(fetched, ignore_errors=True)  # the fetch phase starts from an empty folder
            Destination(fetched).record_path.unlink(missing_ok=True)
        elif {"replan", "refetch"} & set(args.phases) and not fetched.is_dir():
            p.error(f"{fetched} does not exist: run the fetch phase first (--phases fetch --workdir {tmp})")
        served = tmp / "served"  # empty: every GET answers an empty body; the listing must not walk 1M files
        served.mkdir(exist_ok=True)
        with FastS3(served, empty=True) as server:
            for name in args.phases:
                dest = tmp / f"empty-{n}" if name == "plan" else fetched  # plan: a folder not created yet
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
                        str(dest),
                        "--endpoint",
                        server.endpoint_url,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
    finally:
        if not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
