"""Selections: pure functions from a manifest to a sub-manifest.

* AWS CLI ``--exclude/--include`` filters, exactly as ``aws s3 cp --recursive`` applies them:
  every key starts included, filters apply in order, the last matching filter wins, and
  patterns are fnmatch globs on the key relative to the set's prefix in which ``*`` also
  matches ``/``.
* Id ranges (``R000000:R000999``, inclusive) and id list files.
* Seeded samples that are the same on every machine and library version: each id gets the
  key ``splitmix64(splitmix64(seed) XOR (ord(letter) << 40 | number))`` (unsigned 64-bit
  arithmetic) and the ``n`` ids with the smallest keys are taken. A larger sample with the same
  seed contains the smaller one, and the result does not depend on the manifest's row order.
* Ground-truth-aware subsets: sampled queries keep every reference they match, plus seeded
  distractor references that no query matches.
"""

import sys
import types

from .._glob import glob_to_regex
from ..manifest import Manifest
from .filters import Filter, FilterKind, filter_mask, listing_prefix
from .ids import IdRange, id_numbers, parse_id_range, range_mask, read_id_list
from .samples import sample_ids, sample_keys, sample_mask
from .selection import Selection, empty_selection_error, select
from .spec import GroundTruthSpec, SetSpec, build
from .subsets import ground_truth_subset

__all__ = [
    "Filter",
    "FilterKind",
    "GroundTruthSpec",
    "IdRange",
    "Selection",
    "SetSpec",
    "build",
    "empty_selection_error",
    "filter_mask",
    "glob_to_regex",
    "ground_truth_subset",
    "id_numbers",
    "listing_prefix",
    "parse_id_range",
    "range_mask",
    "read_id_list",
    "sample_ids",
    "sample_keys",
    "sample_mask",
    "select",
]


class _SelectModule(types.ModuleType):
    """``isc_kit.select`` names both this package and its function: once the package is imported,
    Python binds ``isc_kit.select`` to the package, so calling it must still select."""

    def __call__(
        self, manifest: Manifest, selection: Selection, *, allow_empty: bool | None = None
    ) -> Manifest:
        return select(manifest, selection, allow_empty=allow_empty)


sys.modules[__name__].__class__ = _SelectModule
