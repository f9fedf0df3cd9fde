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

import logging
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._glob import glob_to_regex
from .catalog import ImageSet
from .errors import ConfigError, EmptySelectionError, InputFileError, Problem
from .inputs import ID_LIST_LIMIT, read_input, utf16_error
from .manifest import Manifest
from .source import Source

logger = logging.getLogger(__name__)

FilterKind = Literal["include", "exclude"]
Filter = tuple[FilterKind, str]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


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


# ---------------------------------------------------------------------------------------------- building a set


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
    selection: Selection = Selection()
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
    from .metadata import manifest_from_listing, read_metadata

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
    from .groundtruth import load_ground_truth

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
