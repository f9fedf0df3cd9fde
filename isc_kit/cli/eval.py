"""``isc-kit eval``: the ISC micro-average precision of a predictions file, on any subset."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError
from ..evaluate import DEFAULT_MAX_PREDICTIONS, evaluate, load_predictions
from ..groundtruth import load_ground_truth, restrict
from ._common import nonnegative_int

NAME = "eval"
HELP = "score matching-track predictions (query_id,reference_id,score) with the ISC µAP"

_QUERY_SETS = ("query", "phase2")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", metavar="PREDICTIONS", help="CSV with header query_id,reference_id,score")
    p.add_argument(
        "--ground-truth", required=True, metavar="GT", help="ground truth CSV (query_id,reference_id)"
    )
    p.add_argument(
        "--selection",
        action="append",
        default=[],
        metavar="PINNED",
        help="pinned manifest(s) of query and/or reference images: score only on these (repeatable)",
    )
    p.add_argument(
        "--max-predictions",
        type=nonnegative_int,
        default=DEFAULT_MAX_PREDICTIONS,
        metavar="N",
        help=f"score at most the N highest-scoring predictions (default {DEFAULT_MAX_PREDICTIONS:,}; 0: all)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _selection_ids(paths: list[str]) -> tuple[set[str] | None, set[str] | None]:
    """Query and reference ids of the pinned manifests (``None``: that side is not restricted)."""
    from ..manifest import load_pinned  # lazy: only needed with --selection

    queries: set[str] | None = None
    references: set[str] | None = None
    for path in paths:
        manifest = load_pinned(path)
        ids = set(manifest.table["image_id"].astype(str))
        if manifest.set_name in _QUERY_SETS:
            queries = (queries or set()) | ids
        elif manifest.set_name == "reference":
            references = (references or set()) | ids
        else:
            raise ConfigError(
                f"{path} pins {manifest.set_name!r} images; a selection takes query or reference manifests"
            )
    return queries, references


def run(args: argparse.Namespace) -> int:
    if args.max_predictions < 0:
        raise ConfigError(f"--max-predictions must be 0 (no limit) or more, got {args.max_predictions}")
    gt = load_ground_truth(args.ground_truth)
    report = None
    if args.selection:
        queries, references = _selection_ids(args.selection)
        gt, report = restrict(gt, queries, references)
    predictions = load_predictions(args.predictions)
    result = evaluate(gt, predictions, max_predictions=args.max_predictions or None)
    if args.json:
        out: dict[str, object] = {
            "predictions": args.predictions,
            "ground_truth": args.ground_truth,
            **result.to_dict(),
        }
        if report is not None:
            out["selection"] = {"manifests": args.selection, **report.__dict__}
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(result.summary())
    if report is not None:
        print("selection: " + report.summary())
    return 0
