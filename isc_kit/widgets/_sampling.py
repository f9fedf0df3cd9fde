"""The sampler's logic: draw a seeded (optionally ground-truth-aware) sample, and hand it to the pipeline.

Sampling reuses :mod:`isc_kit.select` (the same keys as ``isc-kit ls --sample N --seed S`` and
``--ground-truth --gt-queries K``), so a sample drawn here equals the CLI's. Handing it over
writes each set's ids to ``selections/<set>-<digest>.txt`` (the format ``--id-file`` reads) and
points ``sets.<set>.id_file`` in ``params.yaml`` at it, replacing the selection keys that would
otherwise change the result, so the next ``dvc repro`` pins exactly the ids the user saw. The
digest of the ids is in the file name so that a new sample changes params.yaml, which is what
makes DVC rerun the set's stages (the pipeline depends on ``sets.<set>``, not on the file).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..groundtruth import GroundTruth
from ..manifest import Manifest
from ..outputs import write_output
from ..select import Selection, ground_truth_subset, select

logger = logging.getLogger(__name__)

#: The params.yaml key (below ``sets.<set>``) that names an id-list file.
ID_FILE_KEY = "id_file"
#: Selection keys that would narrow or resample the id list; removed when a sample is used.
REPLACED_KEYS = ("ids", "id_ranges", "sample", "seed", "filters", "include", "exclude", "ground_truth")
QUERY_SETS = ("query", "phase2")


def draw_sample(
    manifests: Mapping[str, Manifest],
    set_name: str,
    size: int,
    seed: int,
    *,
    ground_truth: GroundTruth | None = None,
    distractors: int = 0,
) -> dict[str, Manifest]:
    """``{set: sampled manifest}``: ``size`` seeded images of ``set_name``, or with ``ground_truth``,
    ``size`` seeded queries plus every reference they match and ``distractors`` unmatched references.
    """
    if size < 0:
        raise ConfigError(f"sample size must be 0 or more, not {size}")
    if set_name not in manifests:
        raise ConfigError(f"no manifest for set {set_name!r}; have {', '.join(manifests) or 'none'}")
    base = manifests[set_name]
    if ground_truth is None:
        return {set_name: select(base, Selection(sample=size, seed=seed))}
    if set_name not in QUERY_SETS or "reference" not in manifests:
        raise ConfigError(
            "keeping ground-truth pairs needs a query set selected and a reference manifest; "
            f"have {', '.join(manifests)} with {set_name!r} selected"
        )
    refs = manifests["reference"]
    queries, references = ground_truth_subset(
        ground_truth.pairs,
        sorted(ground_truth.queries),
        refs.ids,
        queries=size,
        distractors=distractors,
        seed=seed,
    )
    note = f"--ground-truth {size} queries +{distractors} distractors, seed {seed}"
    return {
        set_name: _only(base, queries, note),
        "reference": _only(refs, references, note),
    }


def _only(manifest: Manifest, ids: list[str], note: str) -> Manifest:
    mask = manifest.table["image_id"].isin(set(ids)).to_numpy(dtype=bool, na_value=False)
    return manifest.subset(mask, note)


@dataclass(frozen=True)
class UsedSample:
    """What :func:`use_sample` wrote."""

    params: Path
    files: dict[str, Path]

    def summary(self) -> str:
        sets = ", ".join(f"{s} → {p.name}" for s, p in self.files.items())
        return (
            f"wrote {sets} and pointed {self.params.name} at them; run `dvc repro` to pin exactly this sample"
        )


def selection_text(manifest: Manifest, note: str = "") -> str:
    """The id-list file for a manifest: a comment header, then one id per line (sorted)."""
    head = [f"# isc-kit selection: {manifest.set_name}, {len(manifest)} ids"]
    if manifest.selection or note:
        head.append(f"# drawn with: {' '.join(x for x in (manifest.selection, note) if x)}")
    return "\n".join(head + sorted(manifest.ids)) + "\n"


def use_sample(
    samples: Mapping[str, Manifest],
    params: str | os.PathLike[str] = "params.yaml",
    *,
    selections_dir: str | os.PathLike[str] | None = None,
) -> UsedSample:
    """Write ``selections/<set>-<digest>.txt`` for each sampled set and point ``sets.<set>.id_file`` at it.

    The previous selection file of the set (when it is one of ours) is removed. The params file
    is edited in place with a round-trip YAML library: only the set entries' own keys change;
    comments, quoting, layout, ``null`` and long lines elsewhere stay byte for byte. It is created
    only inside a DVC project (a ``dvc.yaml`` beside it); anywhere else a missing params file is
    refused, rather than leaving a stray ``params.yaml``. Selection keys that would change the list
    (see ``REPLACED_KEYS``) are removed from the set's entry; everything else (metadata, prefix, ...)
    is kept. A ``query`` sample of Phase-2 queries also sets ``phase: 2`` (and Phase-1 ``phase: 1``), so
    the pipeline selects them from the phase it holds.
    """
    from ..catalog import phase_of_set

    params_path = Path(params)
    if not params_path.is_file() and not (params_path.parent / "dvc.yaml").is_file():
        raise ConfigError(
            f"{params_path.resolve()} does not exist and {params_path.resolve().parent} is not a DVC project "
            "(no dvc.yaml): pass params_path= the project's params.yaml"
        )
    folder = Path(selections_dir) if selections_dir is not None else params_path.parent / "selections"
    doc, yaml = _load_roundtrip(params_path)
    sets = doc.setdefault("sets", {})
    if not isinstance(sets, dict):
        raise ConfigError(f"{params_path}: 'sets' must be a mapping of set name to settings")
    written: dict[str, Path] = {}
    stale: list[Path] = []
    for set_name, manifest in samples.items():
        phase = phase_of_set(manifest.set_name) if set_name == "query" else None
        if phase is not None and doc.get("phase", 1) != phase.number:
            doc["phase"] = phase.number  # sets.query holds the queries of params.yaml's phase
        entry = sets.get(set_name)
        if entry is None:
            entry = sets[set_name] = {}
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{params_path}: sets.{set_name} must be a mapping, found {type(entry).__name__}"
            )
        digest = hashlib.sha256("\n".join(sorted(manifest.ids)).encode()).hexdigest()[:10]
        target = folder / f"{set_name}-{digest}.txt"
        old = entry.get(ID_FILE_KEY)
        if isinstance(old, str):
            old_path = params_path.parent / old
            if old_path.parent.resolve() == folder.resolve() and old_path.name.startswith(f"{set_name}-"):
                stale.append(old_path)
        for key in REPLACED_KEYS:
            entry.pop(key, None)
        entry[ID_FILE_KEY] = os.path.relpath(target, params_path.parent).replace(os.sep, "/")
        written[set_name] = target
        write_output(target, selection_text(manifest).encode("utf-8"), make_parents=True)
    out = io.StringIO()
    yaml.dump(doc, out)
    write_output(params_path, out.getvalue().encode("utf-8"), make_parents=True)
    for path in stale:
        if path not in written.values():
            path.unlink(missing_ok=True)
    logger.info("sample written to %s and %s", params_path, ", ".join(map(str, written.values())))
    return UsedSample(params_path, written)


def _represent_null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _null_keeping_representer() -> type:
    from ruamel.yaml.representer import RoundTripRepresenter

    class Representer(RoundTripRepresenter):  # type: ignore[misc]
        """ruamel writes a None value as nothing (``endpoint_url:``); keep the file's ``null``."""

    Representer.add_representer(type(None), _represent_null)
    return Representer


def _load_roundtrip(path: Path) -> tuple[Any, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML()  # round-trip: keeps comments and key order
    yaml.Representer = _null_keeping_representer()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True  # "T000*" stays double-quoted, 'x' single-quoted
    yaml.width = 1 << 16  # never wrap a long line (a metadata URL) onto the next
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason}); save it as UTF-8") from None
    try:
        doc = yaml.load(text) if text.strip() else None
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: invalid YAML; fix the syntax before using a sample") from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(doc).__name__}")
    return doc, yaml
