"""Building a set: :class:`SetSpec` names a set's input and selection, :func:`build` makes its manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, EmptySelectionError
from ..manifest import Manifest
from ..source import Source
from .filters import listing_prefix
from .selection import Selection, select
from .subsets import ground_truth_subset


@dataclass(frozen=True)
class GroundTruthSpec:
    """A pair-aware subset: ``queries`` seeded queries, their references, ``distractors`` more references."""

    file: str
    queries: int
    distractors: int = 0
    seed: int = 0


@dataclass(frozen=True)
class SetSpec:
    """Everything that names one set's selection: its input (metadata CSV, or a listing) and what to take."""

    set_name: str
    metadata: str | None = None  # local path or s3:// URL; None = list the bucket
    prefix: str | None = None
    selection: Selection = field(default_factory=Selection)
    ground_truth: GroundTruthSpec | None = None

    def command(self, bucket: str | None = None) -> str:
        """The equivalent ``isc-kit manifest`` command line, quoted for a POSIX shell."""
        import shlex

        argv = ["isc-kit", "manifest", self.set_name]
        argv += ["--metadata", self.metadata] if self.metadata else ["--from-listing"]
        if bucket:
            argv += ["--bucket", bucket]
        if self.prefix:
            argv += ["--prefix", self.prefix]
        sel = self.selection
        for kind, pattern in sel.filters:
            argv += [f"--{kind}", pattern]
        for r in sel.ranges:
            argv += ["--ids", r]
        if sel.id_file:
            argv += ["--id-file", sel.id_file]
        if sel.sample is not None:
            argv += ["--sample", str(sel.sample)]
        gt = self.ground_truth
        if gt is not None:
            argv += [
                "--ground-truth",
                gt.file,
                "--gt-queries",
                str(gt.queries),
                "--gt-distractors",
                str(gt.distractors),
            ]
        argv += ["--seed", str(gt.seed if gt is not None else sel.seed)]
        if sel.allow_empty:
            argv.append("--allow-empty")
        return shlex.join(argv)


def build(spec: SetSpec, source: Source) -> Manifest:
    """The manifest a set's spec names: read its input through ``source``, then select.

    The one way a selection is made: ``isc-kit manifest``/``ls``, the pipeline's manifest stage
    and the notebook sampler all call it. An empty result is an :class:`EmptySelectionError` naming
    the input and what each step kept, unless ``spec.selection.allow_empty``.
    """
    where = spec.metadata or "the bucket listing"
    try:
        return _build(spec, source)
    except EmptySelectionError as err:
        raise EmptySelectionError(f"{where}: {err}") from None


def _build(spec: SetSpec, source: Source) -> Manifest:
    from ..metadata import manifest_from_listing, read_metadata

    if spec.metadata is None:
        within = listing_prefix(spec.selection.filters)
        manifest = manifest_from_listing(source, spec.set_name, prefix=spec.prefix, within=within)
    else:
        manifest = read_metadata(spec.metadata, spec.set_name, source=source, prefix=spec.prefix)
    result = select(manifest, spec.selection)
    if spec.ground_truth is not None:
        result = _ground_truth_subset(result, spec.ground_truth, source)
        if not len(result) and not spec.selection.allow_empty:
            raise EmptySelectionError(
                f"the ground-truth subset keeps no {result.set_name} images ({result.selection}); widen it, "
                "or pass --allow-empty (allow_empty: true in params.yaml) if an empty set is intended"
            )
    return result


def _ground_truth_subset(manifest: Manifest, spec: GroundTruthSpec, source: Source) -> Manifest:
    from ..groundtruth import load_ground_truth

    if manifest.set_name not in ("query", "reference", "phase2"):
        raise ConfigError(f"--ground-truth selects query and reference images, not {manifest.set_name}")
    gt = load_ground_truth(spec.file, source=source)
    queries, refs = ground_truth_subset(
        gt.pairs,
        sorted(gt.queries),
        list(manifest.ids),
        queries=spec.queries,
        distractors=spec.distractors,
        seed=spec.seed,
    )
    wanted = set(refs if manifest.set_name == "reference" else queries)
    rows = [i for i, image_id in enumerate(manifest.ids) if image_id in wanted]
    note = f"--ground-truth {spec.queries} queries +{spec.distractors} distractors, seed {spec.seed}"
    return manifest.take(rows, f"{manifest.selection} {note}".strip())
