"""Wall time of ``isc-kit fetch`` and ``isc-kit verify`` when there is almost nothing to do.

A pinned manifest of N demo references is fetched once into a folder; then, each in a fresh
process, ``isc-kit fetch PINNED DEST`` (everything verified already: plan only) and
``isc-kit verify PINNED DEST`` (hash N files) run ``--rounds`` times. The medians are the
CLI's start-up plus its per-run fixed costs, which dominate small selections.

    python -m bench.startup --rounds 11
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _isc_kit(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("isc-kit")), "-q", *args]


def _median_seconds(argv: list[str], rounds: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _imports(argv: list[str], env: dict[str, str]) -> str:
    """Which of pandas / pyarrow / numpy the command imported (``-X importtime`` on stderr)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "isc_kit", *argv[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    ).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in out.splitlines() if "|" in line}
    return ", ".join(n for n in ("pandas", "pyarrow", "numpy") if n in names) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100, help="images in the pinned selection")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)

    from isc_kit.s3server import EmbeddedS3

    with EmbeddedS3(scale="demo") as s3, tempfile.TemporaryDirectory(prefix="isc-startup-") as tmp:
        env = {**os.environ, "ISC_KIT_ENDPOINT_URL": s3.endpoint_url}
        pinned, dest = os.path.join(tmp, "r.pinned"), os.path.join(tmp, "r")
        metadata = f"s3://{s3.bucket}/metadata/reference_images_metadata.csv"
        subprocess.run(
            _isc_kit(
                "manifest", "reference", "--metadata", metadata, "--sample", str(args.files), "-o", pinned
            ),
            check=True,
            env=env,
        )
        subprocess.run(_isc_kit("fetch", pinned, dest, "--no-progress"), check=True, env=env)
        print(f"| command | median of {args.rounds} (s) | imports |")
        print("|---|---|---|")
        for name in ("fetch", "verify"):
            cmd = _isc_kit(name, pinned, dest, "--no-progress")
            seconds = _median_seconds(cmd, args.rounds, env)
            print(
                f"| `isc-kit {name}` ({args.files} files, all verified) | {seconds:.3f} | {_imports(cmd, env)} |"
            )
        catalog = _median_seconds(_isc_kit("catalog"), args.rounds, env)
        print(f"| `isc-kit catalog` | {catalog:.3f} | {_imports(_isc_kit('catalog'), env)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
