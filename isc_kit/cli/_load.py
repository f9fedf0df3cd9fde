"""Build the manifest a command's arguments describe (``isc-kit ls`` and ``manifest``)."""

from __future__ import annotations

import argparse

from ..manifest import Manifest
from ..select import GroundTruthSpec, SetSpec, build
from ._common import selection_from_args, source_from_args


def spec_from_args(args: argparse.Namespace) -> SetSpec:
    """The :class:`~isc_kit.select.SetSpec` the selection flags name."""
    from ..catalog import get_set
    from ..errors import ConfigError

    truth = None
    if getattr(args, "ground_truth", None):
        if args.gt_queries is None:
            raise ConfigError("--ground-truth needs --gt-queries K (how many queries to sample)")
        truth = GroundTruthSpec(args.ground_truth, args.gt_queries, args.gt_distractors, args.seed)
    return SetSpec(
        get_set(args.set).name,
        metadata=None if args.from_listing else str(args.metadata),
        prefix=args.prefix,
        selection=selection_from_args(args),
        ground_truth=truth,
    )


def selected_manifest(args: argparse.Namespace) -> Manifest:
    """Read the input the arguments name and apply their selection (:func:`isc_kit.select.build`)."""
    return build(spec_from_args(args), source_from_args(args))
