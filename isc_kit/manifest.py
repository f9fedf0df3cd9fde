"""Manifests: the validated table of images a selection names, and its pinned file form.

A :class:`Manifest` holds ``image_id, relpath, md5, size`` for one set (``relpath`` is the key
below the set's prefix, which is also the path below a local destination). It is built from
the publisher's metadata CSV (:func:`read_metadata`, every line validated) or from a bucket
listing (:func:`manifest_from_listing`), and written in a canonical pinned form
(:func:`write_pinned`) that :func:`load_pinned` reads back and checks.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .catalog import DEFAULT_BUCKET, ImageSet, base_bucket, get_set
from .errors import InputFileError, IscKitError, Problem
from .source import Source, list_objects, translate_error

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("image_id", "s3_uri", "md5_checksum")
PINNED_COLUMNS = ("image_id", "relpath", "md5", "size")
PINNED_MAGIC = "# isc-kit pinned manifest v1"
MD5_RE = r"^[0-9a-fA-F]{32}$"
STRING = pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class Manifest:
    """Images of one set: a DataFrame with ``image_id, relpath, md5, size``, sorted by image_id.

    ``md5`` is lower-case hex or ``<NA>`` when unknown (multipart ETag); ``size`` is bytes or ``<NA>``.
    """

    set_name: str
    bucket: str
    prefix: str
    table: pd.DataFrame
    selection: str = ""

    def __len__(self) -> int:
        return len(self.table)

    @property
    def image_set(self) -> ImageSet:
        return get_set(self.set_name).with_prefix(self.prefix)

    @property
    def ids(self) -> list[str]:
        return self.table["image_id"].tolist()

    @property
    def total_bytes(self) -> int | None:
        """Sum of sizes, or None when any size is unknown."""
        sizes = self.table["size"]
        return None if sizes.isna().any() else int(sizes.sum())

    @property
    def md5_known(self) -> int:
        return int(self.table["md5"].notna().sum())

    def key(self, relpath: str) -> str:
        """The S3 key of an entry."""
        return self.prefix + relpath

    def subset(self, mask: Any, selection: str | None = None) -> Manifest:
        """Rows where ``mask`` is true, as a new manifest (the table is not copied more than needed)."""
        table = self.table[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        return replace(self, table=table, selection=self.selection if selection is None else selection)

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the canonical rows: equal for equal content on any machine."""
        return "sha256:" + hashlib.sha256(_canonical_rows(self.table)).hexdigest()


# ---------------------------------------------------------------------------------------------- reading


def _open_bytes(path: str | os.PathLike[str], fs: Any = None) -> bytes:
    text = str(path)
    try:
        if fs is not None:
            with fs.open(text, "rb") as fh:
                return bytes(fh.read())
        if "://" in text:
            import fsspec

            with fsspec.open(text, "rb") as fh:
                return bytes(fh.read())
        return Path(text).read_bytes()
    except IsADirectoryError:
        raise InputFileError(text, [Problem(0, "", text, "is a folder, not a CSV file")]) from None
    except FileNotFoundError as err:
        if "://" in text:
            raise translate_error(err, text, Source()) from err
        raise InputFileError(
            text,
            [Problem(0, "", text, "no such file")],
            hint="check the path (metadata CSVs come from the competition's data page)",
        ) from None
    except PermissionError:
        raise InputFileError(text, [Problem(0, "", text, "permission denied")]) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_text(path: str, data: bytes) -> bytes:
    """Strip a UTF-8 BOM; reject NUL bytes with the line they are on (UTF-8 is checked while parsing)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(
            path,
            [
                Problem(
                    _line_of(data, nul),
                    "",
                    repr(data[max(0, nul - 10) : nul + 10]),
                    "NUL byte: this is binary data, not a CSV file",
                )
            ],
            hint="pass the metadata CSV itself (not an archive or image)",
        )
    return data


def _utf8_error(path: str, data: bytes) -> InputFileError | None:
    """The first invalid UTF-8 sequence as an error naming its line, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        value = repr(data[err.start : err.start + 8])
        return InputFileError(
            path,
            [Problem(_line_of(data, err.start), "", value, "not valid UTF-8 text")],
            hint="save the file as UTF-8",
        )
    return None


def _check_header(path: str, data: bytes, expected: tuple[str, ...]) -> None:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8", "replace").rstrip("\r")
    got = tuple(c.strip().strip('"').strip().lower() for c in first.split(","))
    if got != expected:
        raise InputFileError(
            path,
            [Problem(1, "", first, f"header must be {','.join(expected)}")],
            hint="is this the right file? Metadata CSVs start with image_id,s3_uri,md5_checksum",
        )


def _read_rows(
    path: str, data: bytes, columns: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray, list[Problem]]:
    """Parse the rows after the header: the table, each row's physical line number, and malformed lines."""
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
        raise _utf8_error(path, data) or InputFileError(
            path, [Problem(0, "", "", f"cannot parse as CSV: {err}")]
        ) from None
    skipped = np.array(sorted(p.line for p in bad), dtype=np.int64)
    n_lines = table.num_rows + len(skipped)
    lines = np.setdiff1d(np.arange(2, n_lines + 2, dtype=np.int64), skipped, assume_unique=True)
    trimmed = pa.table({c: pc.utf8_trim_whitespace(table[c]) for c in columns})
    return trimmed, lines, bad


class _Checker:
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


def _first_occurrence(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a value is seen for the first time (cheap when there are no duplicates at all)."""
    if pc.count_distinct(values).as_py() == len(values):
        return pa.chunked_array([pa.array(np.ones(len(values), dtype=bool))])
    dup = pd.Series(values.to_numpy(zero_copy_only=False)).duplicated().to_numpy()
    return pa.chunked_array([pa.array(~dup)])


def _id_ok(ids: pa.ChunkedArray, image_set: ImageSet) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(id has the set's format, id has the format and is in the set's range)."""
    fmt = pc.match_substring_regex(ids, image_set.id_pattern)
    numbers = pc.cast(pc.if_else(fmt, pc.utf8_slice_codeunits(ids, 1), "0"), pa.int64())
    in_range = pc.and_(
        fmt, pc.and_(pc.greater_equal(numbers, image_set.first), pc.less_equal(numbers, image_set.last))
    )
    return fmt, in_range


def read_metadata(
    path: str | os.PathLike[str],
    set_name: str,
    *,
    bucket: str = DEFAULT_BUCKET,
    prefix: str | None = None,
    fs: Any = None,
) -> Manifest:
    """Read and validate a publisher metadata CSV (``image_id,s3_uri,md5_checksum``).

    Every line is checked: column count, id format and range for the set, 32-hex md5 (case is
    normalised), an ``s3_uri`` inside the bucket (any regional mirror) and prefix that agrees
    with the id, and no duplicate ids. Blank lines, a BOM, CRLF and quoting are accepted. All
    problems are collected and raised together (the first 20 shown) as :class:`InputFileError`.
    """
    image_set = get_set(set_name)
    if prefix is not None:
        image_set = image_set.with_prefix(prefix)
    name = str(path)
    data = _check_text(name, _open_bytes(path, fs))
    _check_header(name, data, METADATA_COLUMNS)
    table, lines, malformed = _read_rows(name, data, METADATA_COLUMNS)
    del data

    blank = pc.and_(
        pc.equal(pc.binary_length(table["image_id"]), 0),
        pc.and_(
            pc.equal(pc.binary_length(table["s3_uri"]), 0),
            pc.equal(pc.binary_length(table["md5_checksum"]), 0),
        ),
    )
    if pc.any(blank).as_py():
        keep = pc.invert(blank)
        table = table.filter(keep)
        lines = lines[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]

    ids, uris, md5s = table["image_id"], table["s3_uri"], table["md5_checksum"]
    check = _Checker(name, lines, malformed)
    fmt, in_range = _id_ok(ids, image_set)
    check.require(
        fmt,
        "image_id",
        ids,
        f"not a {image_set.name} id (expected {image_set.letter} + {image_set.digits} digits)",
    )
    check.require(
        pc.or_(pc.invert(fmt), in_range),
        "image_id",
        ids,
        f"outside the {image_set.name} set ({image_set.first_id}..{image_set.last_id})",
    )
    check.require(pc.match_substring_regex(md5s, MD5_RE), "md5_checksum", md5s, "md5 must be 32 hex digits")
    base = re.escape(base_bucket(bucket))
    uri_re = f"^s3://{base}(-eu|-asia)?/{re.escape(image_set.prefix)}"
    in_place = pc.match_substring_regex(uris, uri_re)
    check.require(in_place, "s3_uri", uris, f"not below s3://{base_bucket(bucket)}/{image_set.prefix}")
    relpaths = pc.replace_substring_regex(uris, uri_re, "")
    agrees = pc.equal(relpaths, pc.binary_join_element_wise(ids, ".jpg", ""))
    check.require(pc.or_(pc.invert(in_place), agrees), "s3_uri", uris, "file name does not match image_id")
    check.require(_first_occurrence(ids), "image_id", ids, "duplicate image_id")
    check.raise_if_any("fix or remove these lines, or download the metadata CSV again")

    frame = pd.DataFrame(
        {
            "image_id": pd.array(ids, dtype=STRING),
            "relpath": pd.array(relpaths, dtype=STRING),
            "md5": pd.array(pc.utf8_lower(md5s), dtype=STRING),
            "size": pd.arrays.IntegerArray(np.zeros(len(ids), np.int64), np.ones(len(ids), bool)),
        }
    )
    logger.info("read %s: %d %s images", name, len(frame), set_name)
    return Manifest(set_name, base_bucket(bucket), image_set.prefix, _sorted(frame), selection="")


def manifest_from_listing(
    source: Source, set_name: str, *, prefix: str | None = None, within: str = "", fs: Any = None
) -> Manifest:
    """A manifest from listing the bucket (no metadata CSV); ``within`` narrows the server-side prefix.

    An ETag is taken as the MD5 only when it is 32 hex digits (single-part upload); a multipart
    ETag (``…-N``) leaves the md5 unknown and is counted in a warning.
    """
    image_set = get_set(set_name)
    if prefix is not None:
        image_set = image_set.with_prefix(prefix)
    id_re = re.compile(image_set.id_pattern[:-1] + r"\.jpg$")
    ids, rels, md5s, sizes = [], [], [], []
    skipped = multipart = 0
    for obj in list_objects(source, image_set.prefix + within, fs=fs):
        rel = obj["key"][len(image_set.prefix) :]
        if not id_re.match(rel):
            skipped += 1
            continue
        ids.append(rel[:-4])
        rels.append(rel)
        etag = obj["etag"].lower()
        if re.fullmatch(r"[0-9a-f]{32}", etag):
            md5s.append(etag)
        else:
            md5s.append(None)
            multipart += 1
        sizes.append(obj["size"])
    if skipped:
        logger.warning("skipped %d keys below %s that are not %s images", skipped, image_set.prefix, set_name)
    if multipart:
        logger.warning(
            "%d objects have multipart ETags: their md5 is unknown and cannot be verified", multipart
        )
    frame = pd.DataFrame(
        {
            "image_id": pd.array(ids, dtype=STRING),
            "relpath": pd.array(rels, dtype=STRING),
            "md5": pd.array(md5s, dtype=STRING),
            "size": pd.array(sizes, dtype="Int64"),
        }
    )
    return Manifest(set_name, source.bucket, image_set.prefix, _sorted(frame), selection="")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("image_id", kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------- pinned form


def _canonical_rows(table: pd.DataFrame) -> bytes:
    if len(table) == 0:
        return b""
    cols = [
        pa.array(table["image_id"]).cast(pa.string()),
        pa.array(table["relpath"]).cast(pa.string()),
        pc.fill_null(pa.array(table["md5"]).cast(pa.string()), ""),
        pc.fill_null(pc.cast(pa.array(table["size"], type=pa.int64()), pa.string()), ""),
    ]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cols, ","), "", "\n")
    return _concat_strings(lines)


def _concat_strings(arr: pa.Array | pa.ChunkedArray) -> bytes:
    """The bytes of all strings of an array back to back, without building Python strings."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    return arr.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def pinned_bytes(manifest: Manifest) -> bytes:
    """The canonical bytes of a pinned manifest: comment header, CSV header, sorted rows."""
    rows = _canonical_rows(manifest.table)
    total = manifest.total_bytes
    header = [
        PINNED_MAGIC,
        f"# set: {manifest.set_name}",
        f"# bucket: {manifest.bucket}",
        f"# prefix: {manifest.prefix}",
        f"# selection: {manifest.selection or 'all'}",
        f"# count: {len(manifest)}",
        f"# bytes: {'unknown' if total is None else total}",
        f"# fingerprint: sha256:{hashlib.sha256(rows).hexdigest()}",
        ",".join(PINNED_COLUMNS),
    ]
    return ("\n".join(header) + "\n").encode("utf-8") + rows


def write_pinned(manifest: Manifest, path: str | os.PathLike[str]) -> str:
    """Write the pinned form atomically (temp file + ``os.replace``); returns the fingerprint."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(pinned_bytes(manifest))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fp = manifest.fingerprint()
    logger.info("pinned %d %s images to %s (%s)", len(manifest), manifest.set_name, target, fp[:19])
    return fp


def _header_fields(path: str, data: bytes) -> tuple[dict[str, str], int]:
    fields: dict[str, str] = {}
    offset = 0
    lineno = 0
    while data.startswith(b"#", offset):
        end = data.find(b"\n", offset)
        end = len(data) if end < 0 else end
        line = data[offset:end].decode("utf-8", "replace").rstrip("\r")
        lineno += 1
        if lineno == 1 and line != PINNED_MAGIC:
            break
        if ":" in line and lineno > 1:
            k, v = line[1:].split(":", 1)
            fields[k.strip()] = v.strip()
        offset = end + 1
    if lineno == 0 or not data.startswith(PINNED_MAGIC.encode()):
        first = data[: data.find(b"\n")].decode("utf-8", "replace")
        raise InputFileError(
            path,
            [Problem(1, "", first, f"not a pinned manifest (first line must be {PINNED_MAGIC!r})")],
            hint="create one with `isc-kit manifest SET --metadata CSV -o FILE`",
        )
    return fields, offset


def load_pinned(path: str | os.PathLike[str]) -> Manifest:
    """Read a pinned manifest, validate every row, and check its fingerprint."""
    name = str(path)
    data = _check_text(name, _open_bytes(path))
    fields, offset = _header_fields(name, data)
    n_header = data.count(b"\n", 0, offset)
    for key in ("set", "bucket", "prefix", "fingerprint"):
        if key not in fields:
            raise InputFileError(
                name,
                [Problem(1, "", "", f"header line '# {key}: …' is missing")],
                hint="re-create the file with `isc-kit manifest`",
            )
    try:
        image_set = get_set(fields["set"]).with_prefix(fields["prefix"])
    except IscKitError as err:  # unknown set or bad prefix: report it as a problem of the file
        raise InputFileError(name, [Problem(2, "set", fields["set"], str(err))]) from None
    try:
        Source(bucket=base_bucket(fields["bucket"]))
    except IscKitError as err:  # a bucket no fetch could address: a problem of the file, not of the setup
        raise InputFileError(name, [Problem(3, "bucket", fields["bucket"], str(err))]) from None
    body = data[offset:]
    _check_header(name, body, PINNED_COLUMNS)
    table, lines, malformed = _read_rows(name, body, PINNED_COLUMNS)
    lines = lines + n_header
    malformed = [replace(p, line=p.line + n_header) for p in malformed]
    ids, rels, md5s, sizes = (table[c] for c in PINNED_COLUMNS)
    check = _Checker(name, lines, malformed)
    _, in_range = _id_ok(ids, image_set)
    check.require(
        in_range, "image_id", ids, f"not a {image_set.name} id in {image_set.first_id}..{image_set.last_id}"
    )
    check.require(
        pc.match_substring_regex(rels, r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$"),
        "relpath",
        rels,
        "unsafe or invalid relative path (only letters, digits, _ . - and / allowed, no leading dot)",
    )
    check.require(
        pc.or_(pc.equal(md5s, ""), pc.match_substring_regex(md5s, "^[0-9a-f]{32}$")),
        "md5",
        md5s,
        "md5 must be 32 lower-case hex digits or empty",
    )
    check.require(
        pc.or_(pc.equal(sizes, ""), pc.match_substring_regex(sizes, r"^\d{1,15}$")),
        "size",
        sizes,
        "size must be a whole number of bytes or empty",
    )
    check.require(_first_occurrence(ids), "image_id", ids, "duplicate image_id")
    check.raise_if_any("the pinned manifest was edited or damaged; re-create it with `isc-kit manifest`")
    frame = pd.DataFrame(
        {
            "image_id": pd.array(ids, dtype=STRING),
            "relpath": pd.array(rels, dtype=STRING),
            "md5": pd.array(pc.if_else(pc.equal(md5s, ""), None, md5s), dtype=STRING),
            "size": pd.array(
                pc.cast(pc.if_else(pc.equal(sizes, ""), None, sizes), pa.int64()), dtype="Int64"
            ),
        }
    )
    manifest = Manifest(
        image_set.name,
        fields["bucket"],
        image_set.prefix,
        frame,
        selection="" if fields.get("selection") == "all" else fields.get("selection", ""),
    )
    if not frame["image_id"].is_monotonic_increasing:
        raise InputFileError(
            name,
            [Problem(0, "image_id", "", "rows are not sorted by image_id")],
            hint="the pinned manifest was edited; re-create it with `isc-kit manifest`",
        )
    actual = manifest.fingerprint()
    if actual != fields["fingerprint"]:
        raise InputFileError(
            name,
            [
                Problem(
                    0,
                    "fingerprint",
                    fields["fingerprint"],
                    f"rows do not match the fingerprint (they hash to {actual})",
                )
            ],
            hint="the file was edited by hand; re-create it with `isc-kit manifest`",
        )
    return manifest


def concat(manifests: Iterable[Manifest]) -> pd.DataFrame:
    """All rows of several manifests with a ``set`` column (for overviews)."""
    frames = [m.table.assign(set=m.set_name) for m in manifests]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*PINNED_COLUMNS, "set"])
