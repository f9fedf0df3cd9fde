"""Benchmark: load + validate a 1,000,000-row publisher CSV, then select from it.

    .venv/bin/python -m bench.manifest [--rows 1000000] [--repeat 5]

Each measurement runs in a fresh subprocess so peak RSS (ru_maxrss) is the load's own.
Prints a Markdown table; figures are medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUCKET = "drivendata-competition-fb-isc-data"

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from isc_kit.metadata import read_metadata
from isc_kit.select import Selection, select
t_import = time.perf_counter() - t0
t0 = time.perf_counter(); m = read_metadata(sys.argv[1], "reference"); t_load = time.perf_counter() - t0
timings = {}
for name, sel in [
    ("filters", Selection(filters=(("exclude", "*"), ("include", "R00*")))),
    ("range", Selection(ranges=("R100000:R199999",))),
    ("sample", Selection(sample=10_000, seed=1)),
    ("all", Selection(filters=(("exclude", "*"), ("include", "R0*")), ranges=("R000000:R099999",), sample=1000)),
]:
    t0 = time.perf_counter(); n = len(select(m, sel)); timings[name] = (time.perf_counter() - t0, n)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": len(m), "load": t_load, "import": t_import, "select": timings, "rss_mb": rss}))
"""


def make_csv(path: Path, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        fh.write("image_id,s3_uri,md5_checksum\n")
        for i in range(rows):
            rid = f"R{i:06d}"
            md5 = hashlib.md5(rid.encode()).hexdigest()
            fh.write(f"{rid},s3://{BUCKET}/all/reference_images/{rid}.jpg,{md5}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "reference_images_metadata.csv"
        make_csv(csv, args.rows)
        runs = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(csv)], capture_output=True, text=True, check=True
            )
            runs.append(json.loads(out.stdout))
        size_mb = csv.stat().st_size / 1e6
    med = statistics.median
    print(f"rows: {runs[0]['rows']:,}; CSV {size_mb:.0f} MB; {args.repeat} runs, medians")
    print("| step | seconds | selected |")
    print("|---|---|---|")
    print(f"| load + validate | {med(r['load'] for r in runs):.2f} | {runs[0]['rows']:,} |")
    for name in runs[0]["select"]:
        secs = med(r["select"][name][0] for r in runs)
        print(f"| select: {name} | {secs:.3f} | {runs[0]['select'][name][1]:,} |")
    print(f"| peak RSS (whole process) | {med(r['rss_mb'] for r in runs):.0f} MB | |")
    print(f"| import isc_kit.manifest | {med(r['import'] for r in runs):.2f} | |")
    sys.stdout.flush()
    time.sleep(0)


if __name__ == "__main__":
    main()
