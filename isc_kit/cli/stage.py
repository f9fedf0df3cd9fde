"""``isc-kit stage manifest|fetch SET``: the commands ``dvc.yaml`` runs for each set of params.yaml."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..manifest import Manifest
from ._common import positive_int

NAME = "stage"
HELP = "run one DVC pipeline stage (used by dvc.yaml)"

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
    f.add_argument("--jobs", type=positive_int, metavar="N")
    e = sub.add_parser(
        "eval", help="baseline predictions on the fetched query/reference folders, scored (µAP)"
    )
    e.add_argument("query_pinned", metavar="QUERY_PINNED")
    e.add_argument("reference_pinned", metavar="REFERENCE_PINNED")
    e.add_argument("query_dir", metavar="QUERY_DIR")
    e.add_argument("reference_dir", metavar="REFERENCE_DIR")
    e.add_argument("-o", "--output", required=True, metavar="PREDICTIONS")
    e.add_argument("--metrics", required=True, metavar="JSON", help="metrics file to write")
    e.add_argument("--params", default="params.yaml", help="pipeline parameters (default params.yaml)")


def build_manifest(params_path: str, set_name: str) -> Manifest:
    """The selection of one set of params.yaml, built as ``isc-kit manifest`` builds the same flags."""
    from ..pipeline import read_params, set_spec
    from ..select import build

    params = read_params(params_path)
    spec = set_spec(params, set_name)
    logger.info("%s: %s", set_name, spec.command(params.source.bucket))
    return build(spec, params.source)


def run(args: argparse.Namespace) -> int:
    from ..pinned import load_pinned, write_pinned
    from ..pipeline import read_params, set_metrics, timing_path, write_json

    if args.stage == "eval":
        return run_eval(args)
    if args.stage == "manifest":
        manifest = build_manifest(args.params, args.set)
        fp = write_pinned(manifest, args.output)
        print(f"{args.output}: {len(manifest):,} {args.set} images, {fp}")
        return 0

    from ..dvcfiles import ignore_record_folder
    from ..errors import ConfigError
    from ..local import Destination
    from ..progress import TqdmProgress
    from ..transfer import fetch

    params = read_params(args.params)
    manifest = load_pinned(args.pinned)
    if manifest.set_name != params.stage_set(args.set):
        raise ConfigError(
            f"{args.pinned} is a {manifest.set_name} manifest, not {params.stage_set(args.set)} "
            f"(phase {params.phase.number}); run `dvc repro` to rebuild it"
        )
    progress = TqdmProgress(f"fetch {args.set}", files=len(manifest), disable=None)
    try:
        result = fetch(
            manifest, args.dest, source=params.source, jobs=args.jobs, progress=progress, prune=True
        )
    finally:
        progress.close()
    logger.info(
        "%s: %d added, %d removed, %d kept (%s)",
        args.set,
        result.transferred,
        result.pruned,
        result.skipped,
        args.dest,
    )
    metrics = set_metrics(manifest, args.dest)
    write_json(args.metrics, metrics)
    write_json(timing_path(args.dest), {**result.to_dict(), **metrics, "set": args.set})
    ignore_record_folder(Path(Destination(args.dest).root).parent)  # .isc-kit/ never shows in git status
    if not result.ok:
        for rel, why in result.failed[:5]:
            logger.error("%s: %s", rel, why)
        return 1
    return 0


def _descriptor_paths(predictions: str) -> tuple[str, str]:
    """The eval stage's descriptor-track files, beside its predictions: ``X.csv`` -> ``X.query.h5``, ``X.reference.h5``."""
    stem = predictions[:-4] if predictions.endswith(".csv") else predictions
    return f"{stem}.query.h5", f"{stem}.reference.h5"


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def run_eval(args: argparse.Namespace) -> int:
    """Baseline descriptor on the fetched selection, scored with the ISC µAP on exactly that selection,
    on both tracks: its matching predictions, and its descriptors searched as the descriptor track does."""
    from ..baseline import run_baseline
    from ..errors import ConfigError
    from ..evaluate import evaluate, load_predictions
    from ..evaluate.descriptors import evaluate_descriptors
    from ..groundtruth import check_phase, load_ground_truth, restrict
    from ..pinned import load_pinned
    from ..pipeline import read_params, write_json

    params = read_params(args.params)
    queries, references = load_pinned(args.query_pinned), load_pinned(args.reference_pinned)
    if not params.ground_truth_file:
        raise ConfigError(f"{args.params}: the eval needs ground_truth.file (the Phase-1 ground truth)")
    if queries.set_name != params.phase.query_set:
        raise ConfigError(
            f"{args.query_pinned} pins {queries.set_name} images but params.yaml has phase: "
            f"{params.phase.number} ({params.phase.query_set}); run `dvc repro` to rebuild it"
        )
    gt = load_ground_truth(params.ground_truth_file, source=params.source)
    check_phase(gt, params.phase, fix=f"or set phase: in {args.params} to match")
    q_ids, r_ids = set(queries.ids), set(references.ids)
    gt, _ = restrict(gt, q_ids, r_ids)
    descriptors = _descriptor_paths(args.output)
    baseline = run_baseline(args.query_dir, args.reference_dir, args.output, descriptors_out=descriptors)
    result = evaluate(gt, load_predictions(args.output), queries=q_ids, references=r_ids)
    track2 = evaluate_descriptors(gt, *descriptors, query_ids=q_ids, reference_ids=r_ids).scores
    chance = result.n_gt_pairs / max(1, len(queries) * len(references))
    write_json(
        args.metrics,
        {
            "phase": params.phase.number,
            "muap": round(result.muap, 4),
            "recall_at_p90": _rounded(result.recall_at_p90),
            "recall_at_rank1": round(result.recall_at_rank1, 4),
            "gt_pairs": result.n_gt_pairs,
            "queries": baseline.n_queries,
            "references": baseline.n_references,
            "muap_random": round(chance, 6),
            "descriptors": {
                "muap": round(track2.muap, 4),
                "recall_at_p90": _rounded(track2.recall_at_p90),
                "recall_at_rank1": round(track2.recall_at_rank1, 4),
                "pairs_searched": track2.n_predictions,
            },
        },
    )
    print("matching track\n" + result.summary())
    print("descriptor track\n" + track2.summary())
    return 0
