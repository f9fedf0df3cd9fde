"""The DVC pipeline's logic: ``params.yaml`` -> the selection of each set -> stage actions.

``dvc.yaml`` runs two stages per set (``foreach`` over ``sets``): ``manifest@<set>`` turns the
publisher CSV and the set's parameters into ``manifests/<set>.pinned`` (committed to git), and
``fetch@<set>`` makes ``data/<set>`` hold exactly that selection, MD5-verified, and writes
``metrics/<set>.json``. A set's parameters become a :class:`~isc_kit.select.SetSpec`
(:func:`set_spec`), built by :func:`isc_kit.select.build` exactly as ``isc-kit manifest`` builds
the same flags.

``phase: 1|2`` switches the challenge phase with one value: the ``query`` stages then select the
Phase-2 queries (``phase2.metadata``, ``phase2.prefix``) with ``sets.query``'s selection keys, and
the ground-truth-aware subsets and the eval use that phase's ground truth (``ground_truth.file`` for
Phase 1; ``phase2.ground_truth``, else ``$ISC_KIT_PHASE2_GROUND_TRUTH``, else the catalog's
``final_ground_truth.csv`` in the bucket, for Phase 2). The references are the same in both phases.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import outputs
from .catalog import SETS, Phase, get_phase
from .config import load_params
from .errors import ConfigError
from .inputs import PARAMS_LIMIT, check_local_input
from .manifest import Manifest
from .source import Source, resolve_source

if TYPE_CHECKING:
    from .select import Filter, SetSpec

logger = logging.getLogger(__name__)

SET_KEYS = {
    "metadata",
    "filters",
    "ids",
    "id_file",
    "sample",
    "seed",
    "ground_truth",
    "prefix",
    "allow_empty",
}
GT_KEYS = {"file", "queries", "distractors", "seed"}
PHASE2_KEYS = {"metadata", "ground_truth", "prefix"}


@dataclass(frozen=True)
class SetParams:
    """One entry of ``sets:`` in params.yaml."""

    name: str
    metadata: str
    filters: tuple[Filter, ...] = ()
    ids: tuple[str, ...] = ()
    id_file: str | None = None
    sample: int | None = None
    seed: int = 0
    ground_truth: bool = False
    prefix: str | None = None
    allow_empty: bool = False  # an empty selection is an error unless the set says so


@dataclass(frozen=True)
class PipelineParams:
    source: Source
    sets: dict[str, SetParams]
    ground_truth: dict[str, Any]
    phase: Phase = field(default_factory=lambda: get_phase(1))
    phase2: dict[str, Any] = field(default_factory=dict)

    @property
    def ground_truth_file(self) -> str | None:
        """The ground truth of the selected phase (what the subsets and the eval use)."""
        if self.phase.number == 1:
            return self.ground_truth.get("file")
        return self.phase.ground_truth(self.phase2.get("ground_truth"), self.source.bucket)

    def stage_set(self, name: str) -> str:
        """The catalog set a stage of ``sets.<name>`` holds: ``query`` holds the selected phase's queries."""
        return self.phase.query_set if name == "query" else name


def _where(path: Path, key: str) -> str:
    return f"{path}: {key}"


def _parse_filters(value: Any, where: str) -> tuple[Filter, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list like [{{exclude: '*'}}, {{include: 'Q00*'}}]")
    out = []
    for i, item in enumerate(value):
        if not (isinstance(item, Mapping) and len(item) == 1):
            raise ConfigError(f"{where}[{i}] must be one {{exclude: PATTERN}} or {{include: PATTERN}}")
        ((kind, pattern),) = item.items()
        if kind not in ("include", "exclude") or not isinstance(pattern, str):
            raise ConfigError(f"{where}[{i}]: expected include or exclude with a text pattern, got {item!r}")
        out.append((kind, pattern))
    return tuple(out)


def _parse_set(path: Path, name: str, raw: Any) -> SetParams:
    where = _where(path, f"sets.{name}")
    if name not in SETS:
        raise ConfigError(f"{where}: unknown set; known sets: {', '.join(SETS)}")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with at least 'metadata'")
    unknown = set(raw) - SET_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(SET_KEYS))}"
        )
    if not isinstance(raw.get("metadata"), str):
        raise ConfigError(f"{where}.metadata is required: the publisher CSV (local path or s3:// URL)")
    ids = raw.get("ids") or ()
    ids = (ids,) if isinstance(ids, str) else tuple(str(i) for i in ids)
    for key in ("sample", "seed"):
        if raw.get(key) is not None and (
            not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 0
        ):
            raise ConfigError(f"{where}.{key} must be a whole number >= 0, not {raw[key]!r}")
    if not isinstance(raw.get("allow_empty", False), bool):
        raise ConfigError(f"{where}.allow_empty must be true or false, not {raw['allow_empty']!r}")
    return SetParams(
        name=name,
        metadata=raw["metadata"],
        filters=_parse_filters(raw.get("filters"), f"{where}.filters"),
        ids=ids,
        id_file=raw.get("id_file"),
        sample=raw.get("sample"),
        seed=int(raw.get("seed") or 0),
        ground_truth=bool(raw.get("ground_truth", False)),
        prefix=raw.get("prefix"),
        allow_empty=raw.get("allow_empty", False),
    )


def read_params(path: str | os.PathLike[str] = "params.yaml") -> PipelineParams:
    """Read and validate params.yaml; every error names the key and what to write instead."""
    p = Path(path)
    check_local_input(p, what="params.yaml", limit=PARAMS_LIMIT)  # no FIFO, device or giant file
    data = load_params(p)
    src = data.get("source") or {}
    if not isinstance(src, Mapping):
        raise ConfigError(f"{p}: source must be a mapping (bucket, region, endpoint_url, anon)")
    try:
        source = resolve_source(
            bucket=src.get("bucket"),
            region=src.get("region"),
            endpoint_url=src.get("endpoint_url"),
            anon=src.get("anon"),
        )
    except ConfigError as err:  # name the file and key, not only the value
        raise ConfigError(f"{p}: source: {err}") from None
    sets_raw = data.get("sets")
    if not isinstance(sets_raw, Mapping) or not sets_raw:
        raise ConfigError(f"{p}: sets must map set names ({', '.join(SETS)}) to their selection")
    gt = data.get("ground_truth") or {}
    if not isinstance(gt, Mapping) or set(gt) - GT_KEYS:
        raise ConfigError(f"{p}: ground_truth must be a mapping with keys {', '.join(sorted(GT_KEYS))}")
    for key in ("queries", "distractors", "seed"):
        value = gt.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{p}: ground_truth.{key} must be a whole number >= 0, not {value!r}")
    sets = {name: _parse_set(p, name, raw) for name, raw in sets_raw.items()}
    phase, phase2 = _parse_phase(p, data)
    needs = "ground_truth.file and ground_truth.queries" if phase.number == 1 else "ground_truth.queries"
    if any(s.ground_truth for s in sets.values()) and not (
        (gt.get("file") or phase.number != 1) and gt.get("queries") is not None
    ):
        raise ConfigError(f"{p}: a set uses ground_truth: true, so {needs} are needed")
    return PipelineParams(source, sets, dict(gt), phase, phase2)


def _parse_phase(p: Path, data: Mapping[str, Any]) -> tuple[Phase, dict[str, Any]]:
    """``phase`` (default 1) and the ``phase2`` section, checked: one line naming the key on error."""
    try:
        phase = get_phase(data.get("phase", 1))
    except ConfigError as err:
        raise ConfigError(f"{p}: phase: {err}") from None
    raw = data.get("phase2") or {}
    if not isinstance(raw, Mapping) or set(raw) - PHASE2_KEYS:
        raise ConfigError(f"{p}: phase2 must be a mapping with keys {', '.join(sorted(PHASE2_KEYS))}")
    for key in PHASE2_KEYS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{p}: phase2.{key} must be text (a path, an s3:// URL or a prefix)")
    if phase.number == 2 and not raw.get("metadata"):
        raise ConfigError(
            f"{p}: phase: 2 needs phase2.metadata, the Phase-2 query metadata CSV "
            f"({phase.queries.metadata_name}: a local path or an s3:// URL)"
        )
    return phase, dict(raw)


def set_spec(params: PipelineParams, set_name: str) -> SetSpec:
    """The :class:`~isc_kit.select.SetSpec` of one set of params.yaml (what ``manifest@<set>`` builds)."""
    from .select import GroundTruthSpec, Selection, SetSpec

    try:
        s = params.sets[set_name]
    except KeyError:
        raise ConfigError(
            f"params.yaml has no sets.{set_name}; add it or pick one of {', '.join(params.sets)}"
        ) from None
    gt = params.ground_truth
    truth = None
    if s.ground_truth:
        truth = GroundTruthSpec(
            file=str(params.ground_truth_file),
            queries=int(gt["queries"]),
            distractors=int(gt.get("distractors", 0)),
            seed=int(gt.get("seed", s.seed)),
        )
    selection = Selection(
        filters=s.filters,
        ranges=s.ids,
        id_file=s.id_file,
        sample=s.sample,
        seed=s.seed,
        allow_empty=s.allow_empty,
    )
    metadata, prefix = s.metadata, s.prefix
    if params.stage_set(set_name) != set_name:  # the query stage of phase 2
        metadata, prefix = params.phase2["metadata"], params.phase2.get("prefix")
    return SetSpec(
        params.stage_set(set_name), metadata=metadata, prefix=prefix, selection=selection, ground_truth=truth
    )


def set_metrics(manifest: Manifest, dest: str | os.PathLike[str]) -> dict[str, Any]:
    """Deterministic per-set figures for ``dvc metrics show``: files, bytes, verified share."""
    from .local import VERIFIED, compare

    local = compare(manifest, dest)
    files = len(manifest)
    verified = local.status.count(VERIFIED)
    return {
        "files": files,
        "bytes": sum(s for s in local.local_sizes if s > 0),
        "verified": verified,
        "verified_share": round(verified / files, 6) if files else 1.0,
    }


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Metrics and timings as sorted JSON, through the one output writer (its folder is made)."""
    outputs.write_json(path, dict(data), make_parents=True)


def timing_path(dest: str | os.PathLike[str]) -> Path:
    """Where the fetch stage leaves its (non-deterministic) timings: beside the folder, not in it."""
    from .local import Destination

    return Destination(dest).timing_path
