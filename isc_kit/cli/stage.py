"""``isc-kit stage manifest|fetch SET``: the commands ``dvc.yaml`` runs for each set of params.yaml."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

from ..manifest import Manifest

NAME = "stage"
HELP = "run one DVC pipeline stage for a set (used by dvc.yaml)"

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    m = sub.add_parser("manifest", help="params.yaml selection of SET -> pinned manifest")
    m.add_argument("set", metavar="SET")
    m.add_argument("-o", "--output", required=True, metavar="PINNED")
    m.add_argument("--params", default="params.yaml", help="pipeline parameters (default params.yaml)")
    f = sub.add_parser("fetch", help="pinned manifest -> folder holding exactly it, verified, + metrics")
    f.add_argument("set", metavar="SET")
    f.add_argument("pinned", metavar="PINNED")
    f.add_argument("dest", metavar="DEST")
    f.add_argument("--metrics", required=True, metavar="JSON", help="metrics file to write")
    f.add_argument("--params", default="params.yaml", help="pipeline parameters (default params.yaml)")
    f.add_argument("--jobs", type=int, metavar="N")


def build_manifest(params_path: str, set_name: str) -> Manifest:
    """The selection of one set, built exactly as ``isc-kit manifest`` builds it from the same flags."""
    from ..pipeline import local_copy, manifest_argv, read_params
    from ._load import selected_manifest
    from .main import build_parser

    params = read_params(params_path)
    logger.info("%s: isc-kit manifest %s", set_name, " ".join(manifest_argv(params, set_name)))
    with tempfile.TemporaryDirectory(prefix="isc-kit-gt-") as tmp:
        gt_file = None
        if params.sets[set_name].ground_truth:
            gt_file = local_copy(params.ground_truth["file"], params.source, tmp)
        argv = manifest_argv(params, set_name, ground_truth_file=gt_file)
        args = build_parser().parse_args(["manifest", *argv, "-o", os.devnull])
        args.region, args.endpoint_url, args.anon = (
            params.source.region,
            params.source.endpoint_url,
            params.source.anon,
        )
        return selected_manifest(args)


def run(args: argparse.Namespace) -> int:
    from ..manifest import load_pinned, write_pinned
    from ..pipeline import read_params, set_metrics, timing_path, write_json

    if args.stage == "manifest":
        manifest = build_manifest(args.params, args.set)
        fp = write_pinned(manifest, args.output)
        print(f"{args.output}: {len(manifest):,} {args.set} images, {fp}")
        return 0

    from ..errors import ConfigError
    from ..progress import TqdmProgress
    from ..transfer import fetch

    params = read_params(args.params)
    manifest = load_pinned(args.pinned)
    if manifest.set_name != args.set:
        raise ConfigError(f"{args.pinned} is a {manifest.set_name} manifest, not {args.set}")
    progress = TqdmProgress(f"fetch {args.set}", files=len(manifest), disable=None)
    try:
        result = fetch(
            manifest, args.dest, source=params.source, jobs=args.jobs, progress=progress, prune=True
        )
    finally:
        progress.close()
    metrics = set_metrics(manifest, args.dest)
    write_json(args.metrics, metrics)
    write_json(timing_path(args.dest), {**result.to_dict(), **metrics, "set": args.set})
    if not result.ok:
        for rel, why in result.failed[:5]:
            logger.error("%s: %s", rel, why)
        return 1
    return 0
