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

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import ImageSet
from .errors import ConfigError, InputFileError, Problem
from .inputs import ID_LIST_LIMIT, read_input, utf16_error
from .manifest import Manifest

FilterKind = Literal["include", "exclude"]
Filter = tuple[FilterKind, str]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------------------------------------- AWS filters


def glob_to_regex(pattern: str) -> str:
    """An fnmatch glob as an anchored RE2/Python regex (``*`` and ``?`` match ``/`` too, as in fnmatch)."""
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
            else:
                body = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if body.startswith("!"):
                    body = "^" + body[1:]
                elif body.startswith("^"):
                    body = "\\" + body
                out.append(f"[{body}]")
        else:
            out.append(re.escape(c))
    out.append("$")
    return "(?s)" + "".join(out)


def filter_mask(
    relpaths: Sequence[str] | pa.Array | pa.ChunkedArray, filters: Iterable[Filter]
) -> np.ndarray:
    """Boolean mask of keys an ordered list of AWS ``--exclude/--include`` filters keeps."""
    arr = relpaths if isinstance(relpaths, (pa.Array, pa.ChunkedArray)) else pa.array(relpaths, pa.string())
    keep = np.ones(len(arr), dtype=bool)
    for kind, pattern in filters:
        if kind not in ("include", "exclude"):
            raise ConfigError(f"filter kind must be include or exclude, not {kind!r}")
        hit = np.asarray(
            pc.match_substring_regex(arr, glob_to_regex(pattern)).to_numpy(zero_copy_only=False), dtype=bool
        )
        keep[hit] = kind == "include"
    return keep


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


# ---------------------------------------------------------------------------------------------- ids


@dataclass(frozen=True)
class IdRange:
    """An inclusive range of id numbers of one set."""

    first: int
    last: int


def parse_id_range(spec: str, image_set: ImageSet) -> IdRange:
    """``'R000000:R000999'`` (inclusive); either side may be empty for an open end; a single id is a range of one."""
    text = spec.strip()
    if ":" in text:
        a, b = (s.strip() for s in text.split(":", 1))
    else:
        a = b = text
    try:
        first = image_set.parse_id(a) if a else image_set.first
        last = image_set.parse_id(b) if b else image_set.last
    except ConfigError as err:
        raise ConfigError(
            f"id range {spec!r}: {err}; write it as {image_set.first_id}:{image_set.format_id(999)}"
        ) from None
    if first > last:
        raise ConfigError(f"id range {spec!r} is empty: {a} comes after {b}")
    return IdRange(first, last)


def id_numbers(ids: pa.ChunkedArray | pa.Array | Sequence[str]) -> np.ndarray:
    """The numeric part of ids like ``Q00123`` as int64."""
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string())
    return np.asarray(pc.cast(pc.utf8_slice_codeunits(arr, 1), pa.int64()).to_numpy(zero_copy_only=False))


def range_mask(ids: pa.ChunkedArray | Sequence[str], ranges: Sequence[IdRange]) -> np.ndarray:
    """Ids in any of the ranges."""
    numbers = id_numbers(ids)
    keep = np.zeros(len(numbers), dtype=bool)
    for r in ranges:
        keep |= (numbers >= r.first) & (numbers <= r.last)
    return keep


def read_id_list(path: str | Path, image_set: ImageSet) -> list[str]:
    """Ids from a text file, one per line (blank lines and ``#`` comments ignored), validated for the set."""
    name = str(path)
    raw = read_input(path, what="id list", limit=ID_LIST_LIMIT)
    utf16 = utf16_error(name, raw)
    if utf16 is not None:
        raise utf16
    if b"\x00" in raw:
        raise InputFileError(name, [Problem(0, "", "", "NUL byte: binary data, not an id list")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(name, [Problem(0, "", "", "not UTF-8 text")], hint="save it as UTF-8") from None
    ids: list[str] = []
    problems: list[Problem] = []
    pattern = re.compile(image_set.id_pattern)
    for lineno, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip().removesuffix(".jpg")
        if not value:
            continue
        if not pattern.match(value) or not image_set.first <= int(value[1:]) <= image_set.last:
            problems.append(Problem(lineno, "", line, f"not a {image_set.name} id"))
        else:
            ids.append(value)
    if problems:
        raise InputFileError(name, problems, hint=f"one id per line, like {image_set.first_id}")
    return ids


# ---------------------------------------------------------------------------------------------- sampling


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def sample_keys(ids: pa.ChunkedArray | Sequence[str], seed: int) -> np.ndarray:
    """The documented per-id sort key of a seeded sample (uint64)."""
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), pa.string())
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    letters = np.asarray(pc.utf8_slice_codeunits(arr, 0, 1).cast(pa.binary()).to_numpy(zero_copy_only=False))
    codes = np.frombuffer(b"".join(letters), dtype=np.uint8).astype(np.uint64)
    numbers = id_numbers(arr).astype(np.uint64)
    seed_key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(seed_key ^ ((codes << np.uint64(40)) | numbers))


def sample_mask(ids: pa.ChunkedArray | Sequence[str], n: int, seed: int) -> np.ndarray:
    """Mask of the ``n`` ids with the smallest seeded keys (all of them when ``n`` >= len)."""
    if n < 0:
        raise ConfigError(f"sample size must be 0 or more, not {n}")
    keys = sample_keys(ids, seed)
    keep = np.zeros(len(keys), dtype=bool)
    if n >= len(keys):
        keep[:] = True
    elif n > 0:
        keep[np.argpartition(keys, n - 1)[:n]] = True
    return keep


def sample_ids(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """The seeded sample of ``ids`` in sample order (smallest key first)."""
    keys = sample_keys(ids, seed)
    order = np.argsort(keys, kind="stable")[: max(n, 0)]
    return [ids[i] for i in order]


# ---------------------------------------------------------------------------------------------- all together


@dataclass(frozen=True)
class Selection:
    """What to take from a set; every part is optional and they combine with AND, sample last."""

    filters: tuple[Filter, ...] = ()
    ranges: tuple[str, ...] = ()
    id_file: str | None = None
    ids: tuple[str, ...] = field(default=())
    sample: int | None = None
    seed: int = 0

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


def select(manifest: Manifest, selection: Selection) -> Manifest:
    """Apply a selection to a manifest."""
    image_set = manifest.image_set
    table = manifest.table
    keep = np.ones(len(table), dtype=bool)
    if selection.filters:
        keep &= filter_mask(pa.array(table["relpath"]), selection.filters)
    if selection.ranges:
        keep &= range_mask(
            pa.array(table["image_id"]), [parse_id_range(r, image_set) for r in selection.ranges]
        )
    wanted: list[str] = list(selection.ids)
    if selection.id_file:
        wanted += read_id_list(selection.id_file, image_set)
    if selection.id_file or selection.ids:
        keep &= np.asarray(table["image_id"].isin(set(wanted)).to_numpy(dtype=bool, na_value=False))
    result = manifest.subset(keep, selection.describe())
    if selection.sample is not None:
        result = result.subset(
            sample_mask(pa.array(result.table["image_id"]), selection.sample, selection.seed)
        )
    return result


def ground_truth_subset(
    pairs: Iterable[tuple[str, str]],
    query_ids: Sequence[str],
    reference_ids: Sequence[str],
    *,
    queries: int,
    distractors: int = 0,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Seeded ``queries`` queries, every reference they match, and ``distractors`` unmatched references.

    ``pairs`` are (query_id, reference_id) ground-truth matches; ``query_ids`` every ground-truth
    query (distractor queries included); ``reference_ids`` the pool of references. Returns
    sorted (query ids, reference ids).
    """
    for name, value in (("queries", queries), ("distractors", distractors)):
        if value < 0:
            raise ConfigError(f"ground-truth {name} must be 0 or more, not {value}")
    matches: dict[str, set[str]] = {}
    matched_refs: set[str] = set()
    for q, r in pairs:
        matches.setdefault(q, set()).add(r)
        matched_refs.add(r)
    chosen_q = sample_ids(list(query_ids), queries, seed)
    refs = set().union(*(matches.get(q, set()) for q in chosen_q)) if chosen_q else set()
    pool = [r for r in reference_ids if r not in matched_refs]
    refs.update(sample_ids(pool, distractors, seed))
    return sorted(chosen_q), sorted(refs)
