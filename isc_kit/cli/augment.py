"""``isc-kit augment``: seeded AugLy copies of a pinned training selection (folder, pairs CSV, pinned manifest)."""

from __future__ import annotations

import argparse

from ._common import positive_int, print_json

NAME = "augment"
HELP = "seeded augmented copies (AugLy) of a pinned selection: a folder, a pairs CSV and a pinned manifest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pinned", metavar="PINNED", help="pinned training selection")
    p.add_argument("images", metavar="IMAGES", help="folder holding its fetched images")
    p.add_argument("out", metavar="OUT", help="folder the copies are written to (replaced)")
    p.add_argument(
        "--pairs", required=True, metavar="CSV", help="pairs CSV: augmented_id,source_id,transforms"
    )
    p.add_argument("--manifest", required=True, metavar="PINNED", help="pinned manifest of the copies")
    p.add_argument("--params", default="params.yaml", metavar="YAML", help="file with the `augment:` section")
    p.add_argument("--seed", type=int, help="override augment.seed")
    p.add_argument("--copies", type=int, help="override augment.copies")
    p.add_argument("--jobs", type=positive_int, metavar="N", help="processes (default: all cores)")
    p.add_argument(
        "--self-check",
        action="store_true",
        help="then score the baseline on the copies as queries (pairs CSV as ground truth)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")


def run(args: argparse.Namespace) -> int:
    from ..augment import AugmentParams, augment
    from ..config import load_params
    from ..pinned import load_pinned

    raw = dict(load_params(args.params).get("augment") or {})
    for key in ("seed", "copies"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    params = AugmentParams.from_dict(raw, f"{args.params} augment")
    manifest = load_pinned(args.pinned)
    result = augment(manifest, args.images, args.out, args.pairs, args.manifest, params, jobs=args.jobs)
    if args.json:
        print_json(result.to_dict())
    else:
        print(
            f"{result.n_copies} copies of {result.n_sources} images in {result.folder} ({result.seconds:.1f} s)"
        )
    return 0
