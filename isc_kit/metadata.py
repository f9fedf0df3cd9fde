"""Where manifests come from: the publisher's metadata CSV, or a listing of the bucket.

:func:`read_metadata` validates every line of a publisher CSV (``image_id,s3_uri,md5_checksum``)
with vectorised Arrow checks; :func:`manifest_from_listing` lists the set's prefix server-side.
Both return a :class:`~isc_kit.manifest.Manifest`. A metadata CSV may be a local path or an
``s3://`` URL, read through the same :class:`~isc_kit.source.Source` as the images.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import ImageSet, base_bucket, get_set
from .input_checks import (
    RowChecker,
    check_header,
    check_text,
    first_occurrence,
    id_checks,
    read_bytes,
    read_rows,
)
from .manifest import Manifest
from .source import Source, list_objects, resolve_source

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("image_id", "s3_uri", "md5_checksum")
MD5_RE = r"^[0-9a-fA-F]{32}$"


def _image_set(set_name: str, prefix: str | None) -> ImageSet:
    image_set = get_set(set_name)
    return image_set if prefix is None else image_set.with_prefix(prefix)


def read_metadata(
    path: str | os.PathLike[str],
    set_name: str,
    *,
    source: Source | None = None,
    bucket: str | None = None,
    prefix: str | None = None,
    fs: Any = None,
) -> Manifest:
    """Read and validate a publisher metadata CSV (a local path, or ``s3://`` read through ``source``).

    Every line is checked: column count, id format and range for the set, 32-hex md5 (case is
    normalised), an ``s3_uri`` inside the bucket (any regional mirror) and prefix that agrees
    with the id, and no duplicate ids. Blank lines, a BOM, CRLF and quoting are accepted. All
    problems are collected and raised together (the first 20 shown) as :class:`InputFileError`.
    """
    image_set = _image_set(set_name, prefix)
    source = source or resolve_source(bucket=bucket)
    bucket = base_bucket(bucket or source.bucket)
    name = str(path)
    if fs is None and name.startswith("s3://"):
        from .source import make_filesystem

        fs = make_filesystem(source)
    data = check_text(name, read_bytes(path, fs, source=source))
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
    relpaths = _check_rows(RowChecker(name, lines, malformed), ids, uris, md5s, image_set, bucket)
    entries = pa.table(
        {
            "image_id": ids,
            "relpath": relpaths,
            "md5": pc.utf8_lower(md5s),
            "size": pa.nulls(len(ids), pa.int64()),
        }
    )
    manifest = Manifest.from_arrow(image_set.name, bucket, image_set.prefix, entries)
    logger.info("read %s: %d %s images", name, len(manifest), set_name)
    return manifest


def _check_rows(
    check: RowChecker, ids: Any, uris: Any, md5s: Any, image_set: ImageSet, bucket: str
) -> pa.ChunkedArray:
    """Validate the columns (raising every problem at once); the relpaths below the prefix."""
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
    base = re.escape(bucket)
    uri_re = f"^s3://{base}(-eu|-asia)?/{re.escape(image_set.prefix)}"
    in_place = pc.match_substring_regex(uris, uri_re)
    check.require(in_place, "s3_uri", uris, f"not below s3://{bucket}/{image_set.prefix}")
    relpaths = pc.replace_substring_regex(uris, uri_re, "")
    agrees = pc.equal(relpaths, pc.binary_join_element_wise(ids, ".jpg", ""))
    check.require(pc.or_(pc.invert(in_place), agrees), "s3_uri", uris, "file name does not match image_id")
    check.require(first_occurrence(ids), "image_id", ids, "duplicate image_id")
    check.raise_if_any("fix or remove these lines, or download the metadata CSV again")
    return relpaths


def manifest_from_listing(
    source: Source, set_name: str, *, prefix: str | None = None, within: str = "", fs: Any = None
) -> Manifest:
    """A manifest from listing the bucket (no metadata CSV); ``within`` narrows the server-side prefix.

    An ETag is taken as the MD5 only when it is 32 hex digits (single-part upload); a multipart
    ETag (``…-N``) leaves the md5 unknown and is counted in a warning.
    """
    image_set = _image_set(set_name, prefix)
    id_re = re.compile(image_set.id_pattern[:-1] + r"\.jpg$")
    md5_re = re.compile(r"[0-9a-f]{32}")
    rows: list[tuple[str, str, str | None, int | None]] = []
    skipped = multipart = 0
    for obj in list_objects(source, image_set.prefix + within, fs=fs):
        rel = obj["key"][len(image_set.prefix) :]
        if not id_re.match(rel):
            skipped += 1
            continue
        etag = obj["etag"].lower()
        md5 = etag if md5_re.fullmatch(etag) else None
        multipart += md5 is None
        rows.append((rel[:-4], rel, md5, obj["size"]))
    if skipped:
        logger.warning("skipped %d keys below %s that are not %s images", skipped, image_set.prefix, set_name)
    if multipart:
        logger.warning(
            "%d objects have multipart ETags: their md5 is unknown and cannot be verified", multipart
        )
    return Manifest.from_rows(image_set.name, source.bucket, image_set.prefix, rows)
