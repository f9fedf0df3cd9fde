"""A :class:`Selection` (filters, ranges, ids, sample) and :func:`select`, which applies it to a manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import EmptySelectionError
from ..manifest import Manifest
from .filters import Filter, filter_mask
from .ids import parse_id_range, range_mask, read_id_list
from .samples import sample_mask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """What to take from a set; every part is optional and they combine with AND, sample last.

    ``allow_empty``: a selection that keeps nothing is returned as an empty manifest instead of
    raising :class:`~isc_kit.errors.EmptySelectionError`.
    """

    filters: tuple[Filter, ...] = ()
    ranges: tuple[str, ...] = ()
    id_file: str | None = None
    ids: tuple[str, ...] = field(default=())
    sample: int | None = None
    seed: int = 0
    allow_empty: bool = False

    def describe(self) -> str:
        parts = [f"--{kind} {pattern!r}" for kind, pattern in self.filters]
        parts += [f"--ids {r}" for r in self.ranges]
        if self.id_file:
            parts.append(f"--id-file {Path(self.id_file).name}")
        if self.ids:
            parts.append(f"{len(self.ids)} listed ids")
        if self.sample is not None:
            parts.append(f"--sample {self.sample} --seed {self.seed}")
        return " ".join(parts)


def select(manifest: Manifest, selection: Selection, *, allow_empty: bool | None = None) -> Manifest:
    """Apply a selection to a manifest.

    An empty result raises :class:`~isc_kit.errors.EmptySelectionError` saying how many images each
    step kept and how to widen it, unless ``allow_empty`` (default: ``selection.allow_empty``).
    """
    image_set = manifest.image_set
    ids = manifest.ids.to_arrow()
    keep = np.ones(len(manifest), dtype=bool)
    steps: list[tuple[str, int]] = []
    if selection.filters:
        keep &= filter_mask(manifest.relpaths.to_arrow(), selection.filters, manifest.prefix)
        steps.append((" ".join(f"--{k} {p!r}" for k, p in selection.filters), int(keep.sum())))
    if selection.ranges:
        keep &= range_mask(ids, [parse_id_range(r, image_set) for r in selection.ranges])
        steps.append((" ".join(f"--ids {r}" for r in selection.ranges), int(keep.sum())))
    if selection.id_file or selection.ids:
        wanted = set(selection.ids)
        if selection.id_file:
            wanted.update(read_id_list(selection.id_file, image_set))
        listed = pc.is_in(ids, value_set=pa.array(sorted(wanted), pa.large_string()))
        present = np.asarray(listed.to_numpy(zero_copy_only=False), dtype=bool)
        _warn_unknown_ids(selection, manifest, wanted, int(present.sum()))
        keep &= present
        what = f"--id-file {selection.id_file}" if selection.id_file else f"{len(selection.ids)} listed ids"
        steps.append((what, int(keep.sum())))
    if selection.sample is not None:
        rows = np.flatnonzero(keep)
        chosen = sample_mask(pc.take(ids, pa.array(rows)), selection.sample, selection.seed)
        keep[:] = False
        keep[rows[chosen]] = True
        steps.append((f"--sample {selection.sample}", int(keep.sum())))
    result = manifest.take(np.flatnonzero(keep).tolist(), selection.describe())
    if len(result) == 0 and not (selection.allow_empty if allow_empty is None else allow_empty):
        raise empty_selection_error(manifest, steps)
    return result


def _warn_unknown_ids(selection: Selection, manifest: Manifest, wanted: set[str], found: int) -> None:
    """Ids asked for by name that the manifest does not hold: counted in one warning, never silently."""
    missing = len(wanted) - found
    if missing <= 0:
        return
    asked = pa.array(sorted(wanted), pa.string())
    absent = asked.filter(pc.invert(pc.is_in(asked, value_set=manifest.ids.to_arrow().cast(pa.string()))))
    logger.warning(
        "%s: %d of %d ids are not in the %s input (e.g. %s); they are left out",
        selection.id_file or "the listed ids",
        missing,
        len(wanted),
        manifest.set_name,
        ", ".join(absent.slice(0, 3).to_pylist()),
    )


def empty_selection_error(manifest: Manifest, steps: list[tuple[str, int]]) -> EmptySelectionError:
    """The error for a selection that kept nothing: each step's count and how to widen it."""
    n = len(manifest)
    example = f"{manifest.image_set.first_id[:4]}*"
    if n == 0:
        said = f"the {manifest.set_name} input has no images"
    else:
        ids = manifest.table["image_id"]
        first, last = ids.min(), ids.max()
        example = f"{first[:4]}*"
        said = f"{n:,} {manifest.set_name} images in the input ({first}..{last})"
        said += "".join(f", {what} kept {count:,}" for what, count in steps)
    return EmptySelectionError(
        f"the selection keeps no {manifest.set_name} images: {said}; widen the filters, ranges or id list "
        f"(patterns match keys relative to {manifest.prefix or 'the bucket root'}, e.g. '{example}'), "
        "or pass --allow-empty (allow_empty: true in params.yaml) if an empty set is intended"
    )
