"""Vectorised validation of CSV-like inputs with per-line problems.

Files are parsed by Arrow in one pass; rules are checked as whole-column masks and only the
failing rows become :class:`~isc_kit.errors.Problem` entries (the first 20 shown), each with its
physical line number (blank and malformed lines do not shift it).
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .catalog import ImageSet
from .errors import InputFileError, InputPathError, Problem
from .inputs import METADATA_LIMIT, read_input, utf16_error
from .source import Source


def read_bytes(
    path: str | os.PathLike[str],
    fs: Any = None,
    *,
    what: str = "CSV file",
    limit: int = METADATA_LIMIT,
    source: Source | None = None,
) -> bytes:
    """A metadata CSV's bytes through the one input reader: regular files, capped; ``s3://`` through ``source``."""
    return read_input(path, what=what, limit=limit, fs=fs, source=source)


#: The publisher metadata CSV's columns (a file with only this header holds no images).
PUBLISHER_COLUMNS = ("image_id", "s3_uri", "md5_checksum")


def line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def check_text(path: str, data: bytes) -> bytes:
    """Strip a UTF-8 BOM; reject NUL bytes with the line they are on (UTF-8 is checked while parsing)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    utf16 = utf16_error(path, data)
    if utf16 is not None:
        raise utf16
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(
            path,
            [
                Problem(
                    line_of(data, nul),
                    "",
                    repr(data[max(0, nul - 10) : nul + 10]),
                    "NUL byte: this is binary data, not a CSV file",
                )
            ],
            hint="pass the metadata CSV itself (not an archive or image)",
        )
    return data


def utf8_error(path: str, data: bytes) -> InputFileError | None:
    """The first invalid UTF-8 sequence as an error naming its line, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        value = repr(data[err.start : err.start + 8])
        return InputFileError(
            path,
            [Problem(line_of(data, err.start), "", value, "not valid UTF-8 text")],
            hint="save the file as UTF-8",
        )
    return None


def check_header(path: str, data: bytes, expected: tuple[str, ...]) -> None:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8", "replace").rstrip("\r")
    got = tuple(c.strip().strip('"').strip().lower() for c in first.split(","))
    if got != expected:
        raise InputFileError(
            path,
            [Problem(1, "", first, f"header must be {','.join(expected)}")],
            hint="is this the right file? Metadata CSVs start with image_id,s3_uri,md5_checksum",
        )


def read_rows(
    path: str, data: bytes, columns: tuple[str, ...], *, require_rows: bool | None = None
) -> tuple[pa.Table, np.ndarray, list[Problem]]:
    """Parse the rows after the header: the table, each row's physical line number, and malformed lines.

    ``require_rows`` (default: for a publisher metadata CSV) makes a file with no row but the header an
    error ("no images in FILE"); a pinned manifest of an (allowed) empty selection has no rows.
    """
    if require_rows is None:
        require_rows = columns == PUBLISHER_COLUMNS
    end = data.find(b"\n")
    if end < 0 or not data[end + 1 :].strip():
        if require_rows:
            raise _no_rows(path, columns)
        return pa.table({c: pa.array([], pa.string()) for c in columns}), np.zeros(0, np.int64), []
    table, lines, bad = _parse_rows(path, data, columns)
    if require_rows and not bad and not _has_nonblank_row(table, columns):
        raise _no_rows(path, columns)
    return table, lines, bad


def _no_rows(path: str, columns: tuple[str, ...]) -> InputFileError:
    return InputPathError(
        path,
        f"no images in this file, only the header line {','.join(columns)}",
        hint="is this the right file? A metadata CSV has one row per image; download it again",
    )


def _has_nonblank_row(table: pa.Table, columns: tuple[str, ...]) -> bool:
    if table.num_rows == 0:
        return False
    total = pc.binary_length(table[columns[0]])
    for c in columns[1:]:
        total = pc.add(total, pc.binary_length(table[c]))
    return bool(pc.max(total).as_py() or 0)


def _parse_rows(
    path: str, data: bytes, columns: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray, list[Problem]]:
    bad: list[Problem] = []

    def on_invalid(row: Any) -> str:
        bad.append(
            Problem(
                int(row.number or 0),
                "",
                row.text,
                f"expected {row.expected_columns} columns, found {row.actual_columns}",
            )
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                skip_rows=1, column_names=list(columns), use_threads=False, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as err:
        raise utf8_error(path, data) or InputFileError(
            path, [Problem(0, "", "", f"cannot parse as CSV: {err}")]
        ) from None
    skipped = np.array(sorted(p.line for p in bad), dtype=np.int64)
    n_lines = table.num_rows + len(skipped)
    lines = np.setdiff1d(np.arange(2, n_lines + 2, dtype=np.int64), skipped, assume_unique=True)
    trimmed = pa.table({c: pc.utf8_trim_whitespace(table[c]) for c in columns})
    return trimmed, lines, bad


class RowChecker:
    """Collects row problems from boolean masks, keeping the first 20 by line number."""

    def __init__(self, path: str, lines: np.ndarray, problems: list[Problem]):
        self.path, self.lines, self.problems, self.total = path, lines, list(problems), len(problems)

    def require(self, ok: Any, column: str, values: pa.ChunkedArray, message: str) -> None:
        ok_np = np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool)
        idx = np.flatnonzero(~ok_np)
        self.total += len(idx)
        for i in idx[: InputFileError.max_shown]:
            self.problems.append(Problem(int(self.lines[i]), column, str(values[int(i)]), message))

    def raise_if_any(self, hint: str) -> None:
        if self.total:
            self.problems.sort(key=lambda p: p.line)
            raise InputFileError(self.path, self.problems, total=self.total, hint=hint)


def first_occurrence(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a value is seen for the first time (cheap when there are no duplicates at all)."""
    if pc.count_distinct(values).as_py() == len(values):
        return pa.chunked_array([pa.array(np.ones(len(values), dtype=bool))])
    dup = pd.Series(values.to_numpy(zero_copy_only=False)).duplicated().to_numpy()
    return pa.chunked_array([pa.array(~dup)])


def id_checks(ids: pa.ChunkedArray, image_set: ImageSet) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(id has the set's format, id has the format and is in the set's range)."""
    fmt = pc.match_substring_regex(ids, image_set.id_pattern)
    numbers = pc.cast(pc.if_else(fmt, pc.utf8_slice_codeunits(ids, 1), "0"), pa.int64())
    in_range = pc.and_(
        fmt, pc.and_(pc.greater_equal(numbers, image_set.first), pc.less_equal(numbers, image_set.last))
    )
    return fmt, in_range
