"""`isc-kit pin` vs `dvc add` on the same folder of verified files.

    .venv/bin/python -m bench.pin --files 10000 --size 150000
    .venv/bin/python -m bench.pin --files 100000 --size 1000

Two fresh git+DVC repositories get identical folders (random bytes, so no deduplication); the
verified records a fetch leaves are written while generating (that cost belongs to the fetch).
Then `isc-kit pin` runs in one and `dvc add` in the other, each as the user would type it, and
both results are checked to be the same ``.dvc`` file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from isc_kit.local import Destination
from isc_kit.manifest import Manifest
from isc_kit.pin import pin
from isc_kit.pinned import load_pinned, write_pinned

BIN = Path(sys.executable).parent


def sh(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    sh(["git", "init", "-q"], path)
    sh([str(BIN / "dvc"), "init", "-q"], path)
    return path


def generate(folders: list[Path], files: int, size: int) -> Manifest:
    rng = os.urandom
    ids, rels, md5s = [], [], []
    writers = [Destination(f).record_writer().open() for f in folders]
    for f in folders:
        f.mkdir()
    for i in range(files):
        rel = f"R{i:06d}.jpg"
        data = rng(size)
        md5 = hashlib.md5(data).hexdigest()
        for folder, writer in zip(folders, writers, strict=True):
            (folder / rel).write_bytes(data)
            st = os.stat(folder / rel)
            writer.add(rel, st.st_size, st.st_mtime_ns, md5)
        ids.append(rel[:-4])
        rels.append(rel)
        md5s.append(md5)
    for w in writers:
        w.close()
    table = pd.DataFrame(
        {
            "image_id": pd.array(ids, dtype="string[pyarrow]"),
            "relpath": pd.array(rels, dtype="string[pyarrow]"),
            "md5": pd.array(md5s, dtype="string[pyarrow]"),
            "size": pd.array([size] * files, dtype="Int64"),
        }
    )
    return Manifest.from_pandas(
        "reference", "drivendata-competition-fb-isc-data", "all/reference_images/", table
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=150_000)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder, removed after)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-pin-"))
    try:
        ours, lib, ref = make_repo(work / "pin"), make_repo(work / "lib"), make_repo(work / "add")
        manifest = generate([ours / "images", lib / "images", ref / "images"], args.files, args.size)
        write_pinned(manifest, ours / "images.pinned")
        sh(["sync"], work)
        t_pin = sh([str(BIN / "isc-kit"), "-q", "pin", "images.pinned", "images"], ours)
        started = time.perf_counter()
        pin(load_pinned(ours / "images.pinned"), lib / "images")
        t_lib = time.perf_counter() - started
        t_add = sh([str(BIN / "dvc"), "add", "-q", "images"], ref)
        same = (ours / "images.dvc").read_text() == (ref / "images.dvc").read_text()
        same = same and (lib / "images.dvc").read_text() == (ref / "images.dvc").read_text()
        t_status = sh([str(BIN / "dvc"), "status", "-q"], ours)
        mb = args.files * args.size / 1e6
        print(f"{args.files:,} files x {args.size:,} B ({mb:,.0f} MB)")
        print(
            f"  isc-kit pin (CLI, incl. ~1.5 s Python+pandas start): {t_pin:7.2f} s  ratio {t_pin / t_add:.3f}x"
        )
        print(
            f"  pin() library call (load manifest + pin):             {t_lib:7.2f} s  ratio {t_lib / t_add:.3f}x"
        )
        print(f"  dvc add:                                               {t_add:7.2f} s")
        print(f"  identical .dvc files: {same}")
        print(f"  first dvc status after pin (DVC hashes the workspace once): {t_status:.2f} s")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
