"""Id ranges (``R000000:R000999``, inclusive) and id list files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..catalog import ImageSet
from ..errors import ConfigError, InputFileError, Problem
from ..inputs import ID_LIST_LIMIT, read_input, utf16_error


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
