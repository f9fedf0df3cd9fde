"""Manifests: the entries of one set a selection names, and their pinned file form.

A :class:`Manifest` is the one entry model of isc_kit: ``image_id, relpath, md5, size`` per
image of one set, sorted by id, held as columns (:class:`~isc_kit.columns.StrColumn` and
``array('q')``; never a Python object per row) with the standard library only, so ``isc-kit
fetch`` and ``verify`` start without pandas. ``relpath`` is the key below the set's prefix and
the path below a local destination. :meth:`Manifest.to_arrow` and :attr:`Manifest.table` are
views for selections and for people (pandas); they are not a second implementation.

The pinned form (:func:`write_pinned`, :func:`load_pinned`) is canonical: ``# key: value``
header lines, then ``image_id,relpath,md5,size`` rows sorted by id; the fingerprint is the
SHA-256 of the rows, so two people who pin the same selection get the same file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .catalog import ImageSet, base_bucket, get_set, valid_bucket_name
from .columns import StrColumn
from .errors import InputFileError, IscKitError, Problem, ProblemCollector
from .inputs import PINNED_LIMIT, read_input

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

PINNED_MAGIC = "# isc-kit pinned manifest v1"
PINNED_COLUMNS = ("image_id", "relpath", "md5", "size")
_HEADER_KEYS = ("set", "bucket", "prefix", "fingerprint")
_RELPATH = rb"[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*"
_ROW = re.compile(rb"([A-Z][0-9]{1,9}),(" + _RELPATH + rb"),([0-9a-f]{32})?,([0-9]{1,15})?\n")
_BLOCK = 65_536  # rows canonicalised (or parsed) per block: bounded transient lists

#: One item of a transfer: (relpath, S3 key, md5 or None, size or None).
Item = tuple[str, str, "str | None", "int | None"]


@dataclass(frozen=True, eq=False)
class Manifest:
    """Images of one set, sorted by id: ``ids``, ``relpaths``, ``md5s`` ("" = unknown), ``sizes`` (-1 = unknown)."""

    set_name: str
    bucket: str
    prefix: str
    ids: StrColumn
    relpaths: StrColumn
    md5s: StrColumn
    sizes: array = field(repr=False)
    selection: str = ""

    # ------------------------------------------------------------------------------------ building

    @classmethod
    def from_rows(
        cls,
        set_name: str,
        bucket: str,
        prefix: str,
        rows: Iterable[tuple[str, str, str | None, int | None]],
        selection: str = "",
    ) -> Manifest:
        """From ``(image_id, relpath, md5 or None, size or None)`` rows; sorted by id here."""
        ordered = sorted(rows, key=lambda r: r[0])
        sizes = array("q", (-1 if r[3] is None else int(r[3]) for r in ordered))
        return cls(
            set_name,
            bucket,
            prefix,
            StrColumn.from_strings(r[0] for r in ordered),
            StrColumn.from_strings(r[1] for r in ordered),
            StrColumn.from_strings(r[2] or "" for r in ordered),
            sizes,
            selection,
        )

    @classmethod
    def from_arrow(
        cls, set_name: str, bucket: str, prefix: str, table: pa.Table, selection: str = ""
    ) -> Manifest:
        """From an Arrow table with the four columns (nulls for unknown md5/size); sorted by id here."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if table.num_rows > 1:
            table = table.take(pc.sort_indices(table["image_id"]))
        size = pc.fill_null(table["size"].cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        sizes = array("q")
        sizes.frombytes(np.ascontiguousarray(size, dtype=np.int64).tobytes())
        return cls(
            set_name,
            bucket,
            prefix,
            StrColumn.from_arrow(table["image_id"]),
            StrColumn.from_arrow(table["relpath"]),
            StrColumn.from_arrow(table["md5"]),
            sizes,
            selection,
        )

    @classmethod
    def from_pandas(
        cls, set_name: str, bucket: str, prefix: str, frame: pd.DataFrame, selection: str = ""
    ) -> Manifest:
        """From a DataFrame with ``image_id, relpath, md5, size`` (NA for unknown)."""
        import pyarrow as pa

        table = pa.table(
            {
                "image_id": pa.array(frame["image_id"], pa.string(), from_pandas=True),
                "relpath": pa.array(frame["relpath"], pa.string(), from_pandas=True),
                "md5": pa.array(frame["md5"], pa.string(), from_pandas=True),
                "size": pa.array(frame["size"], pa.int64(), from_pandas=True),
            }
        )
        return cls.from_arrow(set_name, bucket, prefix, table, selection)

    # ------------------------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def image_set(self) -> ImageSet:
        return get_set(self.set_name).with_prefix(self.prefix)

    @property
    def total_bytes(self) -> int | None:
        """Sum of sizes, or None when any size is unknown."""
        return None if -1 in self.sizes else sum(self.sizes)

    @property
    def md5_known(self) -> int:
        o = self.md5s.offsets
        return sum(1 for i in range(len(self)) if o[i + 1] != o[i])

    def md5(self, row: int) -> str | None:
        return self.md5s[row] or None

    def size(self, row: int) -> int | None:
        s = self.sizes[row]
        return None if s < 0 else s

    def key(self, relpath: str) -> str:
        """The S3 key of an entry."""
        return self.prefix + relpath

    def items(self, rows: Iterable[int] | None = None) -> Iterator[Item]:
        """``(relpath, key, md5 or None, size or None)`` of ``rows`` (default: all), streamed."""
        prefix, rels, md5s, sizes = self.prefix, self.relpaths, self.md5s, self.sizes
        for row in range(len(self)) if rows is None else rows:
            rel, s = rels[row], sizes[row]
            yield rel, prefix + rel, md5s[row] or None, None if s < 0 else s

    # ------------------------------------------------------------------------------------ subsets

    def take(self, rows: Sequence[int], selection: str | None = None) -> Manifest:
        """The entries at ``rows`` (ascending), as a new manifest."""
        return replace(
            self,
            ids=self.ids.take(rows),
            relpaths=self.relpaths.take(rows),
            md5s=self.md5s.take(rows),
            sizes=array("q", (self.sizes[r] for r in rows)),
            selection=self.selection if selection is None else selection,
        )

    def subset(self, mask: Any, selection: str | None = None) -> Manifest:
        """Rows where ``mask`` (a sequence of booleans, e.g. a numpy array) is true."""
        return self.take([i for i, keep in enumerate(mask) if keep], selection)

    # ------------------------------------------------------------------------------------ views

    def to_arrow(self) -> pa.Table:
        """The entries as an Arrow table (zero-copy strings; nulls for unknown md5 and size)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        md5 = self.md5s.to_arrow()
        size = np.frombuffer(self.sizes, dtype=np.int64) if len(self) else np.zeros(0, np.int64)
        return pa.table(
            {
                "image_id": self.ids.to_arrow().cast(pa.string()),
                "relpath": self.relpaths.to_arrow().cast(pa.string()),
                "md5": pc.if_else(pc.equal(md5, ""), pa.scalar(None, pa.large_string()), md5).cast(
                    pa.string()
                ),
                "size": pa.array(size, pa.int64(), mask=size < 0),
            }
        )

    def to_pandas(self) -> pd.DataFrame:
        """A pandas view (``image_id, relpath, md5, size``; string[pyarrow] and Int64 with NA for unknown)."""
        import pandas as pd
        import pyarrow as pa

        return self.to_arrow().to_pandas(
            types_mapper=lambda t: (
                pd.StringDtype("pyarrow")
                if t == pa.string()
                else pd.Int64Dtype()
                if t == pa.int64()
                else None
            )
        )

    @cached_property
    def table(self) -> pd.DataFrame:
        """:meth:`to_pandas`, made once (for people and widgets; programs use the columns)."""
        return self.to_pandas()

    # ------------------------------------------------------------------------------------ identity

    def canonical_rows(self) -> Iterator[bytes]:
        """The pinned rows in blocks of bytes (``id,relpath,md5,size\\n``)."""
        ids, rels, md5s, sizes = self.ids, self.relpaths, self.md5s, self.sizes
        for start in range(0, len(self), _BLOCK):
            stop = min(start + _BLOCK, len(self))
            yield b"".join(
                b"%s,%s,%s,%s\n"
                % (ids.raw(i), rels.raw(i), md5s.raw(i), b"" if sizes[i] < 0 else b"%d" % sizes[i])
                for i in range(start, stop)
            )

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the canonical rows: equal for equal content on any machine."""
        digest = hashlib.sha256()
        for block in self.canonical_rows():
            digest.update(block)
        return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------------- writing


def pinned_bytes(manifest: Manifest) -> bytes:
    """The canonical bytes of a pinned manifest: comment header, CSV header, sorted rows."""
    return b"".join(_pinned_parts(manifest)[:2])


def _pinned_parts(manifest: Manifest) -> tuple[bytes, bytes, str]:
    """(header bytes, row bytes, fingerprint)."""
    rows = b"".join(manifest.canonical_rows())
    fp = "sha256:" + hashlib.sha256(rows).hexdigest()
    total = manifest.total_bytes
    header = [
        PINNED_MAGIC,
        f"# set: {manifest.set_name}",
        f"# bucket: {manifest.bucket}",
        f"# prefix: {manifest.prefix}",
        f"# selection: {manifest.selection or 'all'}",
        f"# count: {len(manifest)}",
        f"# bytes: {'unknown' if total is None else total}",
        f"# fingerprint: {fp}",
        ",".join(PINNED_COLUMNS),
    ]
    return ("\n".join(header) + "\n").encode("utf-8"), rows, fp


def write_pinned(manifest: Manifest, path: str | os.PathLike[str]) -> str:
    """Write the pinned form (atomically for a regular file; ``-`` is stdout); returns the fingerprint."""
    from .outputs import write_output

    header, rows, fp = _pinned_parts(manifest)
    write_output(path, [header, rows], make_parents=True)
    logger.info("pinned %d %s images to %s (%s)", len(manifest), manifest.set_name, path, fp[:19])
    return fp


# ---------------------------------------------------------------------------------------------- reading


def load_pinned(path: str | os.PathLike[str]) -> Manifest:
    """Read a pinned manifest strictly: header, every row, order, uniqueness and the fingerprint.

    Raises :class:`~isc_kit.errors.InputFileError` naming the line and field of each problem.
    """
    name = str(path)
    data = read_input(path, what="pinned manifest", limit=PINNED_LIMIT)
    fields, start, n_header = _header(name, data)
    image_set = _image_set(name, fields)
    actual = "sha256:" + hashlib.sha256(memoryview(data)[start:]).hexdigest()
    body = data[start:]
    del data  # one copy of the rows in memory
    manifest = _parse_rows(name, body, n_header, image_set, fields)
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


def _header(name: str, data: bytes) -> tuple[dict[str, str], int, int]:
    """The ``# key: value`` fields, the offset of the first row and the number of header lines."""
    if not data.startswith(PINNED_MAGIC.encode() + b"\n"):
        first = data[: data.find(b"\n")].decode("utf-8", "replace") if data else "(empty file)"
        raise InputFileError(
            name,
            [Problem(1, "", first, f"not a pinned manifest (first line must be {PINNED_MAGIC!r})")],
            hint="create one with `isc-kit manifest SET --metadata CSV -o FILE`",
        )
    fields: dict[str, str] = {}
    offset, lines = 0, 0
    while data.startswith(b"#", offset):
        end = data.find(b"\n", offset)
        end = len(data) if end < 0 else end
        key, sep, value = data[offset + 1 : end].decode("utf-8", "replace").partition(":")
        if sep and lines:
            fields[key.strip()] = value.strip()
        offset, lines = end + 1, lines + 1
    missing = [k for k in _HEADER_KEYS if k not in fields]
    if missing:
        raise InputFileError(
            name,
            [Problem(1, "", "", f"header line '# {missing[0]}: …' is missing")],
            hint="re-create the file with `isc-kit manifest`",
        )
    columns = ",".join(PINNED_COLUMNS).encode() + b"\n"
    if not data.startswith(columns, offset):
        got = data[offset : data.find(b"\n", offset)].decode("utf-8", "replace")
        raise InputFileError(
            name,
            [Problem(lines + 1, "", got, f"expected the column header {columns.decode().strip()!r}")],
            hint="re-create the file with `isc-kit manifest`",
        )
    return fields, offset + len(columns), lines + 1


def _image_set(name: str, fields: dict[str, str]) -> ImageSet:
    try:
        image_set = get_set(fields["set"]).with_prefix(fields["prefix"])
    except IscKitError as err:
        raise InputFileError(name, [Problem(2, "set", fields["set"], str(err))]) from None
    if not valid_bucket_name(base_bucket(fields["bucket"])):
        raise InputFileError(
            name,
            [Problem(3, "bucket", fields["bucket"], "not a valid S3 bucket name")],
            hint="re-create the file",
        )
    return image_set


def _parse_rows(
    name: str, body: bytes, n_header: int, image_set: ImageSet, fields: dict[str, str]
) -> Manifest:
    """Every row checked with one compiled pattern, columns built block by block."""
    first, last = image_set.first_id.encode(), image_set.last_id.encode()
    width = len(first)
    problems = ProblemCollector()
    ids, rels, md5s = _Builder(), _Builder(), _Builder()
    sizes = array("q")
    odd_rels: dict[bytes, int] = {}  # relpaths other than <id>.jpg -> line (checked for duplicates)
    previous = b""
    pos, line, end = 0, n_header, len(body)
    match = _ROW.match
    while pos < end:
        line += 1
        m = match(body, pos)
        if m is None:
            stop = body.find(b"\n", pos)
            stop = end if stop < 0 else stop + 1
            _diagnose(problems, line, body[pos:stop])
            pos = stop
            continue
        pos = m.end()
        image_id, rel, md5, size = m.groups()
        if len(image_id) != width or not first <= image_id <= last:
            problems(
                line,
                "image_id",
                image_id.decode(),
                f"not a {image_set.name} id in {image_set.first_id}..{image_set.last_id}",
            )
        elif image_id <= previous:
            what = "duplicate image_id" if image_id == previous else "rows are not sorted by image_id"
            problems(line, "image_id", image_id.decode(), what)
        previous = max(previous, image_id)
        if rel != image_id + b".jpg":
            if rel in odd_rels:
                problems(line, "relpath", rel.decode(), f"duplicate relpath (also on line {odd_rels[rel]})")
            odd_rels[rel] = line
        ids.add(image_id)
        rels.add(rel)
        md5s.add(md5 or b"")
        sizes.append(-1 if size is None else int(size))
    id_col, rel_col = ids.column(), rels.column()
    _check_odd_relpaths(problems, odd_rels, id_col, rel_col, n_header)
    problems.raise_if_any(
        name, hint="the pinned manifest was edited or damaged; re-create it with `isc-kit manifest`"
    )
    selection = fields.get("selection", "")
    return Manifest(
        image_set.name,
        fields["bucket"],
        image_set.prefix,
        id_col,
        rel_col,
        md5s.column(),
        sizes,
        "" if selection == "all" else selection,
    )


def _check_odd_relpaths(
    problems: ProblemCollector, odd: dict[bytes, int], ids: StrColumn, rels: StrColumn, n_header: int
) -> None:
    """A relpath other than ``<id>.jpg`` must not be another row's ``<id>.jpg`` (one file, two entries)."""
    from bisect import bisect_left

    for rel, line in odd.items():
        if not rel.endswith(b".jpg"):
            continue
        other = rel[:-4].decode("ascii", "replace")
        i = bisect_left(ids, other)
        if i < len(ids) and ids[i] == other and rels.raw(i) == rel and i + n_header + 1 != line:
            problems(
                line,
                "relpath",
                rel.decode(),
                f"duplicate relpath (also the file of {other}, line {i + n_header + 1})",
            )


def _diagnose(problems: ProblemCollector, line: int, raw: bytes) -> None:
    """Say which field of a row that failed the pattern is wrong."""
    text = raw.decode("utf-8", "replace").rstrip("\n")
    if not raw.endswith(b"\n"):
        problems(line, "", text, "the last row has no line end (truncated file?)")
        return
    parts = text.split(",")
    if "\x00" in text:
        problems(line, "", text, "NUL byte: binary data, not a pinned manifest row")
    elif len(parts) != 4:
        problems(line, "", text, f"expected 4 fields (image_id,relpath,md5,size), found {len(parts)}")
    elif not re.fullmatch(r"[A-Z][0-9]{1,9}", parts[0]):
        problems(line, "image_id", parts[0], "not an image id")
    elif not re.fullmatch(_RELPATH.decode(), parts[1]):
        problems(
            line,
            "relpath",
            parts[1],
            "unsafe or invalid relative path (only letters, digits, _ . - and / allowed, no leading dot)",
        )
    elif parts[2] and not re.fullmatch("[0-9a-f]{32}", parts[2]):
        problems(line, "md5", parts[2], "md5 must be 32 lower-case hex digits or empty")
    else:
        problems(line, "size", parts[3], "size must be a whole number of bytes or empty")


class _Builder:
    """Appends raw strings block-wise into one :class:`StrColumn` (bounded transient lists)."""

    __slots__ = ("_blocks", "_end", "_offsets", "_parts")

    def __init__(self) -> None:
        self._blocks: list[bytes] = []
        self._parts: list[bytes] = []
        self._offsets = array("q", [0])
        self._end = 0

    def add(self, raw: bytes) -> None:
        self._parts.append(raw)
        self._end += len(raw)
        self._offsets.append(self._end)
        if len(self._parts) >= _BLOCK:
            self._blocks.append(b"".join(self._parts))
            self._parts.clear()

    def column(self) -> StrColumn:
        self._blocks.append(b"".join(self._parts))
        self._parts.clear()
        return StrColumn(b"".join(self._blocks), self._offsets)


def concat(manifests: Iterable[Manifest]) -> pd.DataFrame:
    """All rows of several manifests with a ``set`` column (for overviews)."""
    import pandas as pd

    frames = [m.table.assign(set=m.set_name) for m in manifests]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*PINNED_COLUMNS, "set"])
