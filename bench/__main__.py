"""``make bench``: the benchmarks that need nothing beyond the venv, then how to run the rest.

Each benchmark is its own module (``python -m bench.<name> --help``); figures and the exact
commands that produced them are in bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys

SELF_CONTAINED = [
    ["bench.manifest", "--repeat", "3"],
    ["bench.thumbnails", "--scale", "demo", "--page-size", "24", "--pages", "5"],
    ["bench.pin", "--files", "10000", "--size", "150000"],
    ["bench.md5", "--files", "10000", "--size", "177000", "--rounds", "5"],
]
NEEDS_TOOLS = [
    "bench.ceiling",
    "bench.fetch --rounds 3",
    "bench.http_cpu --scale demo --rounds 5",
    "bench.memory",
]


def main() -> int:
    for argv in SELF_CONTAINED:
        print(f"\n## python -m {' '.join(argv)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *argv])
        if code:
            return code
    print("\nThese need nginx, wrk, rclone, s5cmd and awscli first: `bash bench/setup-tools.sh`, then")
    for cmd in NEEDS_TOOLS:
        print(f"  .venv/bin/python -m {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
