"""A light reader of pinned manifests for the hot CLI paths (``verify``): standard library only.

:func:`isc_kit.manifest.load_pinned` builds a pandas table (importing pandas and pyarrow costs
about a second per run, as much as hashing a few hundred MB). :func:`read_rows` returns the
same rows as plain lists, accepting a file only when it is exactly what ``isc-kit manifest``
writes: the header fields present, the rows hashing to the recorded fingerprint, and every row
passing the same checks as ``load_pinned`` (safe relpath, md5 and size syntax, ids sorted,
unique and in the set's range). Anything else returns ``None``, and the caller falls back to
``load_pinned``, which says precisely what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass

from .catalog import ImageSet, base_bucket, get_set
from .errors import IscKitError
from .source import Source

MAGIC = b"# isc-kit pinned manifest v1\n"
COLUMNS = b"image_id,relpath,md5,size\n"
_ROW = re.compile(
    r"([A-Z]\d+),"
    r"([A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*),"
    r"([0-9a-f]{32})?,(\d{1,15})?"
)


@dataclass
class PinnedRows:
    """The rows of a pinned manifest as lists (md5 ``None`` and size ``-1`` when unknown)."""

    set_name: str
    bucket: str
    prefix: str
    relpaths: list[str]
    md5s: list[str | None]
    sizes: list[int]

    def __len__(self) -> int:
        return len(self.relpaths)


def read_rows(path: str | os.PathLike[str]) -> PinnedRows | None:
    """The rows of a well-formed pinned manifest, or ``None`` to mean "use ``load_pinned``"."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if not data.startswith(MAGIC):
        return None
    fields: dict[str, str] = {}
    offset = len(MAGIC)
    while data.startswith(b"#", offset):
        end = data.find(b"\n", offset)
        if end < 0:
            return None
        key, sep, value = data[offset + 1 : end].decode("utf-8", "replace").partition(":")
        if sep:
            fields[key.strip()] = value.strip()
        offset = end + 1
    if not data.startswith(COLUMNS, offset) or any(
        k not in fields for k in ("set", "bucket", "prefix", "fingerprint")
    ):
        return None
    start = offset + len(COLUMNS)
    if fields["fingerprint"] != "sha256:" + hashlib.sha256(memoryview(data)[start:]).hexdigest():
        return None
    try:
        image_set = get_set(fields["set"]).with_prefix(fields["prefix"])
        Source(
            bucket=base_bucket(fields["bucket"])
        )  # a bucket no fetch could address: let load_pinned say so
        text = data[start:].decode("utf-8")
    except (IscKitError, UnicodeDecodeError):
        return None
    del data  # one copy of the rows in memory, not two
    return _parse(text, image_set, fields)


def _parse(text: str, image_set: ImageSet, fields: dict[str, str]) -> PinnedRows | None:
    if text and not text.endswith("\n"):
        return None
    lines = io.StringIO(text)  # line by line: never a list of a million lines
    first, last = image_set.first_id, image_set.last_id
    rels: list[str] = []
    md5s: list[str | None] = []
    sizes: list[int] = []
    previous = ""
    match = _ROW.fullmatch
    for line in lines:
        m = match(line, 0, len(line) - 1)
        if m is None:
            return None
        image_id, rel, md5, size = m.groups()
        # an id is the set's letter and a fixed number of digits, so string order is numeric order
        if len(image_id) != len(first) or not first <= image_id <= last or image_id <= previous:
            return None
        previous = image_id
        rels.append(rel)
        md5s.append(md5)
        sizes.append(-1 if size is None else int(size))
    return PinnedRows(image_set.name, fields["bucket"], image_set.prefix, rels, md5s, sizes)
