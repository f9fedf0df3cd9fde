"""``isc-kit demo``: start the embedded S3, ``dvc repro`` the demo selection, print the summary, stop.

The pipeline runs exactly as a user's would (the real ``dvc`` command in a child process); the
only difference is ``ISC_KIT_ENDPOINT_URL`` pointing the children at the embedded server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .._format import human_bytes
from ..errors import DvcError
from ._common import print_table

NAME = "demo"
HELP = "run the DVC pipeline (dvc repro) on the demo selection against the embedded S3"

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=["tiny", "demo", "bench"], default="demo", help="fixture scale served")
    p.add_argument("--project", default=".", help="folder with dvc.yaml and params.yaml (default: here)")


def dvc_command() -> str:
    """The ``dvc`` beside this Python (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name("dvc")
    found = str(local) if local.exists() else shutil.which("dvc")
    if not found:
        raise DvcError("the dvc command is not installed; run `make setup`")
    return found


def _check_project(project: Path) -> None:
    missing = [n for n in ("dvc.yaml", "params.yaml", ".dvc") if not (project / n).exists()]
    if missing:
        raise DvcError(
            f"{project.resolve()}: no {', '.join(missing)} here; run the demo from the isc_kit project folder"
        )


def run(args: argparse.Namespace) -> int:
    from ..pipeline import read_params, timing_path
    from ..s3server import EmbeddedS3

    project = Path(args.project)
    _check_project(project)
    params = read_params(project / "params.yaml")
    dvc = dvc_command()
    logger.info("starting the embedded S3 (%s scale) ...", args.scale)
    server = EmbeddedS3(args.scale).start()
    env = {**os.environ, "ISC_KIT_ENDPOINT_URL": server.endpoint_url, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.time()
    try:
        logger.info("embedded S3 at %s; running `dvc repro` in %s", server.endpoint_url, project.resolve())
        sys.stderr.flush()
        repro = subprocess.run([dvc, "repro"], cwd=project, env=env, stdout=sys.stderr, check=False)
        if repro.returncode != 0:
            raise DvcError(f"`dvc repro` failed (exit {repro.returncode}); see its output above")
        seconds = time.time() - started
        status = subprocess.run(
            [dvc, "status", "--json"], cwd=project, env=env, capture_output=True, text=True, check=False
        )
    finally:
        server.stop()
    rows = []
    for name in params.sets:
        metrics = _read_json(project / "metrics" / f"{name}.json")
        timing = timing_path(project / "data" / name)
        ran = timing.exists() and timing.stat().st_mtime >= started
        took = _read_json(timing).get("seconds") if ran else None
        rows.append(
            {
                "set": name,
                "files": f"{metrics.get('files', 0):,}",
                "bytes": human_bytes(metrics.get("bytes")),
                "verified": f"{100 * metrics.get('verified_share', 0):.1f}%",
                "seconds": f"{took:.1f}" if took is not None else "up to date",
            }
        )
    print()
    print_table(rows, ["set", "files", "bytes", "verified", "seconds"])
    print()
    scores = _read_json(project / "metrics" / "eval.json")
    if scores:
        print(
            f"baseline descriptor: µAP {scores['muap']:.3f} on {scores['gt_pairs']} ground-truth pairs "
            f"({scores['queries']} queries x {scores['references']} references; "
            f"random ranking ~{scores['muap_random']:.4f})"
        )
    print(f"data: {(project / 'data').resolve()}   manifests: {(project / 'manifests').resolve()}")
    clean = status.returncode == 0 and json.loads(status.stdout or "{}") == {}
    print(f"dvc repro took {seconds:.1f} s; dvc status: {'clean' if clean else status.stdout.strip()}")
    return 0 if clean else 1


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
