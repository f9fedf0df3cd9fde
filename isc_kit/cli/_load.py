"""Build the manifest a command's arguments describe: input (CSV or listing) then selection."""

from __future__ import annotations

import argparse
import logging

from ..catalog import get_set
from ..manifest import Manifest, manifest_from_listing, read_metadata
from ..select import ground_truth_subset, listing_prefix, select
from ._common import selection_from_args, source_from_args

logger = logging.getLogger(__name__)


def selected_manifest(args: argparse.Namespace) -> Manifest:
    """Read the input the arguments name and apply their selection."""
    image_set = get_set(args.set)
    source = source_from_args(args)
    selection = selection_from_args(args)
    if args.from_listing:
        within = listing_prefix(selection.filters)
        manifest = manifest_from_listing(source, image_set.name, prefix=args.prefix, within=within)
    else:
        fs = None
        if str(args.metadata).startswith("s3://"):
            from ..source import make_filesystem

            fs = make_filesystem(source)
        manifest = read_metadata(
            args.metadata, image_set.name, bucket=source.bucket, prefix=args.prefix, fs=fs
        )
    result = select(manifest, selection)
    if getattr(args, "ground_truth", None):
        result = _ground_truth_subset(args, result)
    return result


def _ground_truth_subset(args: argparse.Namespace, manifest: Manifest) -> Manifest:
    from ..errors import ConfigError
    from ..groundtruth import load_ground_truth

    if args.gt_queries is None:
        raise ConfigError("--ground-truth needs --gt-queries K (how many queries to sample)")
    gt = load_ground_truth(args.ground_truth)
    queries, refs = ground_truth_subset(
        gt.pairs,
        sorted(gt.queries),
        manifest.ids,
        queries=args.gt_queries,
        distractors=args.gt_distractors,
        seed=args.seed,
    )
    if manifest.set_name == "reference":
        wanted = set(refs)
    elif manifest.set_name in ("query", "phase2"):
        wanted = set(queries)
    else:
        raise ConfigError(f"--ground-truth selects query and reference images, not {manifest.set_name}")
    mask = manifest.table["image_id"].isin(wanted).to_numpy(dtype=bool, na_value=False)
    note = f"--ground-truth {args.gt_queries} queries +{args.gt_distractors} distractors, seed {args.seed}"
    return manifest.subset(mask, f"{manifest.selection} {note}".strip())
