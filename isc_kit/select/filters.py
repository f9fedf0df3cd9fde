"""AWS CLI ``--exclude/--include`` filters, exactly as ``aws s3 cp --recursive`` applies them.

Every key starts included, filters apply in order, the last matching filter wins, and patterns are
fnmatch globs on the key relative to the set's prefix in which ``*`` also matches ``/``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._glob import glob_to_regex
from ..errors import ConfigError

FilterKind = Literal["include", "exclude"]
Filter = tuple[FilterKind, str]

# ---------------------------------------------------------------------------------------------- AWS filters


def filter_mask(
    relpaths: Sequence[str] | pa.Array | pa.ChunkedArray, filters: Iterable[Filter], prefix: str = ""
) -> np.ndarray:
    """Boolean mask of keys an ordered list of AWS ``--exclude/--include`` filters keeps.

    As ``aws s3 cp s3://BUCKET/PREFIX DEST --recursive`` does it: every key starts included, each
    pattern is joined to the source root (``os.path.join(BUCKET/PREFIX, pattern)``) and matched with
    fnmatch against ``BUCKET/KEY``, and the last filter that matches decides. So a pattern is relative
    to ``prefix`` (a glob character in the prefix itself is a glob there too), and a pattern that
    starts with ``/`` matches nothing (no key or relpath starts with ``/``; ``BUCKET/KEY`` never does).
    """
    arr = relpaths if isinstance(relpaths, (pa.Array, pa.ChunkedArray)) else pa.array(relpaths, pa.string())
    keys = arr
    if _has_magic(prefix):  # then the prefix takes part in the match; otherwise it cancels out
        keys = pc.binary_join_element_wise(pa.scalar(prefix, pa.string()), arr, "")
    keep = np.ones(len(arr), dtype=bool)
    for kind, pattern in filters:
        if kind not in ("include", "exclude"):
            raise ConfigError(f"filter kind must be include or exclude, not {kind!r}")
        full = posixpath.join(prefix, pattern) if keys is not arr else pattern
        hit = np.asarray(
            pc.match_substring_regex(keys, glob_to_regex(full)).to_numpy(zero_copy_only=False), dtype=bool
        )
        keep[hit] = kind == "include"
    return keep


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def listing_prefix(filters: Sequence[Filter]) -> str:
    """Longest key prefix a listing can ask the server for without missing a key the filters keep.

    Only when everything starts excluded (a leading ``--exclude "*"``) can the includes narrow it.
    """
    if not filters or filters[0] != ("exclude", "*"):
        return ""
    literals = [_literal(p) for kind, p in filters[1:] if kind == "include"]
    if not literals:
        return ""
    common = literals[0]
    for lit in literals[1:]:
        while not lit.startswith(common):
            common = common[:-1]
    return common


def _literal(pattern: str) -> str:
    m = re.search(r"[*?\[]", pattern)
    return pattern if m is None else pattern[: m.start()]
