"""``isc-kit eval``: the ISC micro-average precision of a predictions file or of two descriptor files."""

from __future__ import annotations

import argparse
import json
import sys

from ..catalog import PHASES, Phase, get_phase
from ..errors import ConfigError
from ..evaluate import CAP_MODES, DEFAULT_MAX_PREDICTIONS, EvalResult, evaluate, load_predictions
from ..evaluate.descriptors import (
    DEFAULT_MAX_DIM,
    DEFAULT_MAX_RESULTS,
    METRICS,
    DescriptorEvalResult,
    evaluate_descriptors,
)
from ..groundtruth import check_phase, load_ground_truth, outside_phase, restrict
from ._common import add_source_args, nonnegative_int, source_from_args

NAME = "eval"
HELP = "score matching-track predictions or descriptor-track HDF5 files with the ISC µAP"

_QUERY_SETS = tuple(p.query_set for p in PHASES.values())


def _phase(value: str) -> Phase:
    try:
        return get_phase(value)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "predictions", nargs="?", metavar="PREDICTIONS", help="CSV with header query_id,reference_id,score"
    )
    p.add_argument(
        "--descriptors",
        nargs=2,
        metavar=("QUERY_H5", "REFERENCE_H5"),
        help="descriptor track: HDF5 files (datasets vectors, image_names), searched with faiss",
    )
    p.add_argument(
        "--ground-truth",
        metavar="GT",
        help="ground truth CSV (query_id,reference_id), local or s3://; with --phase the default is "
        "$ISC_KIT_PHASE<N>_GROUND_TRUTH, else the phase's file in the bucket's metadata/",
    )
    p.add_argument(
        "--phase",
        type=_phase,
        metavar="1|2",
        help="score one challenge phase: 1 (queries Q00000-Q49999, public_ground_truth.csv) or "
        "2 (Q50000-Q99999, final_ground_truth.csv); the ground truth, the predictions' queries and the "
        "selection must all be of that phase",
    )
    p.add_argument(
        "--selection",
        action="append",
        default=[],
        metavar="PINNED",
        help="pinned manifest(s) of query and/or reference images: the ground truth and the predictions "
        "(or descriptors) are both restricted to them (repeatable)",
    )
    m = p.add_argument_group("matching track (official isc2021 rules unless told otherwise)")
    m.add_argument(
        "--max-predictions",
        type=nonnegative_int,
        default=DEFAULT_MAX_PREDICTIONS,
        metavar="N",
        help=f"most predictions accepted (default {DEFAULT_MAX_PREDICTIONS:,}; 0: no limit)",
    )
    m.add_argument(
        "--cap",
        choices=CAP_MODES,
        default="refuse",
        help="more than N predictions: refuse the file as the official track does (default), "
        "or score only the top N",
    )
    m.add_argument(
        "--restrict-to-ground-truth",
        action="store_true",
        help="leave out predictions for queries the ground truth does not list "
        "(official: they count as false positives)",
    )
    d = p.add_argument_group("descriptor track (official isc2021 track-2 rules)")
    d.add_argument(
        "--max-results",
        type=int,
        default=DEFAULT_MAX_RESULTS,
        metavar="N",
        help=f"pairs kept by the capped range search (default {DEFAULT_MAX_RESULTS:,})",
    )
    d.add_argument("--knn", type=int, metavar="K", help="keep each query's K nearest instead (no cap)")
    d.add_argument("--metric", choices=METRICS, default="l2", help="l2 (default) or inner product")
    d.add_argument(
        "--max-dim",
        type=int,
        default=DEFAULT_MAX_DIM,
        metavar="D",
        help=f"widest accepted descriptor ({DEFAULT_MAX_DIM})",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_source_args(p)


def _selection_ids(paths: list[str]) -> tuple[set[str] | None, set[str] | None]:
    """Query and reference ids of the pinned manifests (``None``: that side is not restricted)."""
    from ..pinned import load_pinned  # lazy: only needed with --selection

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


def _check(args: argparse.Namespace) -> None:
    if (args.predictions is None) == (args.descriptors is None):
        raise ConfigError("give either PREDICTIONS (matching track) or --descriptors Q.h5 R.h5, not both")
    if args.max_predictions < 0:
        raise ConfigError(f"--max-predictions must be 0 (no limit) or more, got {args.max_predictions}")
    for flag, value in (
        ("--max-results", args.max_results),
        ("--knn", args.knn),
        ("--max-dim", args.max_dim),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")


def _ground_truth_path(args: argparse.Namespace) -> str:
    if args.ground_truth:
        return args.ground_truth
    if args.phase is None:
        raise ConfigError(
            "give --ground-truth GT (the ground-truth CSV), or --phase 1|2 for that phase's catalog file"
        )
    return args.phase.ground_truth(None, source_from_args(args).bucket)


def _check_phase_ids(what: str, ids: set[str] | list[str], phase: Phase) -> None:
    stray = outside_phase(ids, phase)
    if stray:
        raise ConfigError(
            f"{what}: {len(stray):,} queries (first {stray[0]}) are not Phase-{phase.number} queries "
            f"({phase.queries.first_id}..{phase.queries.last_id}); score them with the matching --phase"
        )


def run(args: argparse.Namespace) -> int:
    _check(args)
    gt_path = _ground_truth_path(args)
    source = source_from_args(args) if gt_path.startswith("s3://") else None
    gt = load_ground_truth(gt_path, source=source)
    if args.phase is not None:
        check_phase(gt, args.phase, what=gt_path)
    report = queries = references = None
    if args.selection:
        queries, references = _selection_ids(args.selection)
        if args.phase is not None and queries is not None:
            _check_phase_ids(" + ".join(args.selection), queries, args.phase)
        gt, report = restrict(gt, queries, references)
    result: DescriptorEvalResult | EvalResult
    if args.descriptors:
        result = evaluate_descriptors(
            gt,
            *args.descriptors,
            max_results=args.max_results,
            knn=args.knn,
            metric=args.metric,
            max_dim=args.max_dim,
            query_ids=queries,
            reference_ids=references,
        )
        inputs: dict[str, object] = {"descriptors": args.descriptors}
    else:
        predictions = load_predictions(args.predictions)
        if args.phase is not None:
            _check_phase_ids(args.predictions, set(predictions.query_ids.tolist()), args.phase)
        result = evaluate(
            gt,
            predictions,
            max_predictions=args.max_predictions or None,
            cap=args.cap,
            restrict_to_ground_truth=args.restrict_to_ground_truth,
            queries=queries,
            references=references,
        )
        inputs = {"predictions": args.predictions}
    if args.json:
        out: dict[str, object] = {**inputs, "ground_truth": gt_path, **result.to_dict()}
        if args.phase is not None:
            out["phase"] = args.phase.number
        if report is not None:
            out["selection"] = {"manifests": args.selection, **report.__dict__}
        json.dump(out, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if args.phase is not None:
        print(f"Phase {args.phase.number} ({gt_path})")
    print(result.summary())
    if report is not None:
        print("selection: " + report.summary())
    return 0
