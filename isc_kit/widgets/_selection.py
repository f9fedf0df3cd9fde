"""What Similar and EmbeddingMap share: ground-truth marks of a pair, and adding ids to params.yaml's
selection through the sampler's round-trip editor (:func:`._sampling.use_sample`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..catalog import SETS
from ..errors import ConfigError
from ..manifest import Manifest
from ._sampling import ID_FILE_KEY, UsedSample, use_sample
from ._tiles import Partners
from .imagesource import entries

MATCH, NOT, UNKNOWN = "match", "not", "unknown"
_REFERENCE = re.compile(SETS["reference"].id_pattern)


def mark(a: str, b: str, found: Partners | None) -> str:
    """The ground-truth mark of the pair ``(a, b)`` (either order): match, not or unknown."""
    if found is None:
        return UNKNOWN
    refs, _copies, queries = found
    for q, r in ((a, b), (b, a)):
        if q in queries or q in refs:
            if r in refs.get(q, ()):
                return MATCH
            return NOT if _REFERENCE.fullmatch(r) else UNKNOWN
    return UNKNOWN


def _set_of(manifests: Mapping[str, Manifest], image_id: str) -> str | None:
    for name, m in manifests.items():
        if entries(m, [image_id]):
            return name
    return None


def _current_ids(params: Path, set_name: str) -> list[str]:
    """The ids of ``sets.<set>.id_file`` in ``params`` (empty when it names none)."""
    import yaml

    try:
        doc = yaml.safe_load(params.read_text(encoding="utf-8")) if params.is_file() else None
    except yaml.YAMLError:
        raise ConfigError(f"{params}: invalid YAML; fix the syntax before adding to the selection") from None
    entry = ((doc or {}).get("sets") or {}).get(set_name) or {}
    name = entry.get(ID_FILE_KEY) if isinstance(entry, dict) else None
    path = params.parent / name if isinstance(name, str) else None
    if path is None or not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.startswith("#")]


def add_to_selection(
    manifests: Mapping[str, Manifest], ids: Iterable[str], params: str | os.PathLike[str] = "params.yaml"
) -> UsedSample:
    """Add ``ids`` to each of their sets' selections in ``params`` (see the module doc); ids of no set are refused."""
    params = Path(params)
    by_set: dict[str, set[str]] = {}
    for image_id in ids:
        set_name = _set_of(manifests, image_id)
        if set_name is None:
            raise ConfigError(
                f"{image_id} is in none of the {'/'.join(manifests)} manifests; nothing was written"
            )
        by_set.setdefault(set_name, set()).add(image_id)
    if not by_set:
        raise ConfigError("no ids to add to the selection; pick an image first")
    samples = {}
    for set_name, new in by_set.items():
        keep = new | set(_current_ids(params, set_name))
        manifest = manifests[set_name]
        mask = manifest.table["image_id"].isin(keep).to_numpy(dtype=bool, na_value=False)
        samples[set_name] = manifest.subset(mask, f"similar: +{len(new)} ids")
    return use_sample(samples, params)
