"""The benchmark server's own ceiling: ``wrk`` against bench/fastserver.py, cycling over every object.

The fetch benchmark ranks clients only if the server is several times faster than the best of
them. wrk (C, one thread, keep-alive) GETs the ``bench`` fixture's 10,000 reference images in
turn from the nginx stand-in, on the same 2 cores, for ``--seconds``; prints requests/s and GB/s.

    python -m bench.ceiling --connections 64 --seconds 10
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.fastserver import FastS3
from isc_kit.catalog import DEFAULT_BUCKET
from isc_kit.fixture import materialize

PREFIX = "all/reference_images/"

_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _bytes(text: str) -> float:
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", text)
    if not m:
        return 0.0
    return float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="bench")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seconds", type=int, default=10)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; run bench/setup-tools.sh")
    root = materialize(args.scale)
    names = sorted(f.name for f in (root / PREFIX).iterdir())
    with tempfile.TemporaryDirectory(prefix="isc-kit-ceiling-") as tmp, FastS3(root) as server:
        paths = Path(tmp) / "paths.txt"
        paths.write_text("".join(f"/{DEFAULT_BUCKET}/{PREFIX}{n}\n" for n in names))
        script = Path(tmp) / "cycle.lua"
        script.write_text(_LUA % paths)
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "-s",
                str(script),
                server.endpoint_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s over {len(names):,} objects: "
        f"{rps:,.0f} requests/s, {_bytes(out) / 1e9:.2f} GB/s"
    )


if __name__ == "__main__":
    main()
