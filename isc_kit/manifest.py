"""Manifests: the validated table of images a selection names, and its pinned file form.

A :class:`Manifest` holds ``image_id, relpath, md5, size`` for one set (``relpath`` is the key
below the set's prefix, which is also the path below a local destination). It is built from
the publisher's metadata CSV (:func:`read_metadata`, every line validated) or from a bucket
listing (:func:`manifest_from_listing`), and written in a canonical pinned form
(:func:`write_pinned`) that :func:`load_pinned` reads back and checks.
"""

from __future__ import annotations

import hashlib
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

from ._csvcheck import (
    RowChecker,
    check_header,
    check_text,
    first_occurrence,
    id_checks,
    read_bytes,
    read_rows,
)
from .catalog import DEFAULT_BUCKET, ImageSet, base_bucket, get_set
from .errors import InputFileError, IscKitError, Problem
from .source import Source, list_objects

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("image_id", "s3_uri", "md5_checksum")
PINNED_COLUMNS = ("image_id", "relpath", "md5", "size")
PINNED_MAGIC = "# isc-kit pinned manifest v1"
MD5_RE = r"^[0-9a-fA-F]{32}$"
STRING = pd.StringDtype("pyarrow")
_HASH_BLOCK = 65_536  # rows canonicalised and hashed at a time


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
        digest = hashlib.sha256()
        for start in range(0, len(self.table), _HASH_BLOCK):  # in blocks: no second copy of all rows
            digest.update(_canonical_rows(self.table.iloc[start : start + _HASH_BLOCK]))
        return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------------- reading


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
    data = check_text(name, read_bytes(path, fs))
    check_header(name, data, METADATA_COLUMNS)
    table, lines, malformed = read_rows(name, data, METADATA_COLUMNS)
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
    check = RowChecker(name, lines, malformed)
    fmt, in_range = id_checks(ids, image_set)
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
    check.require(first_occurrence(ids), "image_id", ids, "duplicate image_id")
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
    data = check_text(name, read_bytes(path))
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
    del data  # one copy of the text at a time: 1M rows are ~60 MB
    check_header(name, body, PINNED_COLUMNS)
    table, lines, malformed = read_rows(name, body, PINNED_COLUMNS)
    del body
    lines = lines + n_header
    malformed = [replace(p, line=p.line + n_header) for p in malformed]
    ids, rels, md5s, sizes = (table[c] for c in PINNED_COLUMNS)
    check = RowChecker(name, lines, malformed)
    _, in_range = id_checks(ids, image_set)
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
    check.require(first_occurrence(ids), "image_id", ids, "duplicate image_id")
    check.raise_if_any("the pinned manifest was edited or damaged; re-create it with `isc-kit manifest`")
    if len(ids) > 1 and not pc.all(pc.greater_equal(ids[1:], ids[:-1])).as_py():
        raise InputFileError(
            name,
            [Problem(0, "image_id", "", "rows are not sorted by image_id")],
            hint="the pinned manifest was edited; re-create it with `isc-kit manifest`",
        )
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
    pa.default_memory_pool().release_unused()  # ~150 MB of parse buffers for 1M rows, else kept by Arrow
    return manifest


def concat(manifests: Iterable[Manifest]) -> pd.DataFrame:
    """All rows of several manifests with a ``set`` column (for overviews)."""
    frames = [m.table.assign(set=m.set_name) for m in manifests]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*PINNED_COLUMNS, "set"])
