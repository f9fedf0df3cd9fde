"""The pinned manifest: a :class:`~isc_kit.manifest.Manifest` as a canonical file, read back strictly.

``# key: value`` header lines (set, bucket, prefix, selection, count, bytes, fingerprint), then
``image_id,relpath,md5,size`` rows sorted by id; the fingerprint is the SHA-256 of the rows, so
two people who pin the same selection get the same file, and provenance can be read by people
without changing the identity of the data. :func:`load_pinned` is the one reader (standard
library only: ``isc-kit fetch``/``verify`` start without pandas); it checks every row, the order,
uniqueness of ids and of files, and the fingerprint, and names the line and field of each problem.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import re
from array import array
from itertools import accumulate, islice

from .catalog import ImageSet, base_bucket, get_set, valid_bucket_name
from .columns import StrColumn
from .errors import InputFileError, IscKitError, Problem, ProblemCollector
from .inputs import PINNED_LIMIT, read_input
from .manifest import COLUMNS as PINNED_COLUMNS
from .manifest import Manifest

logger = logging.getLogger(__name__)

PINNED_MAGIC = "# isc-kit pinned manifest v1"
_HEADER_KEYS = ("set", "bucket", "prefix", "fingerprint")
_RELPATH = rb"[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*"
_ROW = re.compile(rb"([A-Z][0-9]{1,9}),(" + _RELPATH + rb"),([0-9a-f]{32})?,([0-9]{1,15})?\n")
_BLOCK = 65_536  # rows joined per part by the row-by-row reader: bounded transient lists
_DIGITS, _HEX = b"0123456789", b"0123456789abcdef"
_BLOCK_BYTES = 1 << 20  # bytes of whole lines read per block in C: bounded transient tuples


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
    """Every row checked with one compiled pattern, columns built block by block.

    A block of whole lines is read in C (``findall`` + whole-block checks: the matches tile it, ids
    are of one width, in range and strictly increasing, relpaths are ``<id>.jpg``); a block that
    fails any check is read again row by row, which names the line and field of each problem.
    """
    rows = _Rows(image_set, n_header)
    pos, end = 0, len(body)
    while pos < end:
        cut = body.rfind(b"\n", pos, pos + _BLOCK_BYTES) + 1
        if cut <= pos:  # a line longer than a block, or a last line with no line end
            stop = body.find(b"\n", pos)
            cut = end if stop < 0 else stop + 1
        if not rows.block(body, pos, cut):
            rows.rows(body, pos, cut)
        pos = cut
    ids, rels = rows.ids.column(), rows.rels.column()
    problems = rows.problems
    _check_odd_relpaths(problems, rows.odd_rels, ids, rels, n_header)
    problems.raise_if_any(
        name, hint="the pinned manifest was edited or damaged; re-create it with `isc-kit manifest`"
    )
    selection = fields.get("selection", "")
    return Manifest(
        image_set.name,
        fields["bucket"],
        image_set.prefix,
        ids,
        rels,
        rows.md5s.column(),
        rows.sizes,
        "" if selection == "all" else selection,
    )


class _Rows:
    """The columns being built, the parse position and the problems found (see :func:`_parse_rows`)."""

    def __init__(self, image_set: ImageSet, n_header: int = 0) -> None:
        self.image_set = image_set
        self.first, self.last = image_set.first_id.encode(), image_set.last_id.encode()
        self.ids, self.rels, self.md5s = _Builder(), _Builder(), _Builder()
        self.sizes = array("q")
        self.odd_rels: dict[bytes, int] = {}  # relpaths other than <id>.jpg -> line (checked for duplicates)
        self.problems = ProblemCollector()
        self.previous = b""
        self.line = n_header

    def block(self, body: bytes, pos: int, cut: int) -> bool:
        """Take the whole lines ``body[pos:cut]`` with C loops if all are well formed; False to read them row by row.

        Every rule of ``_ROW`` and of :meth:`rows` is checked over whole columns: four fields per
        line, ids of the set's letter and width, in range and strictly increasing, relpaths
        ``<id>.jpg`` (others go to the row-by-row reader), md5s 32 hex digits or empty, sizes
        up to 15 digits or empty.
        """
        n = body.count(b"\n", pos, cut)
        # "a,b,c,d\n" -> "a,b,c,d,\n,": five tokens a line, the fifth exactly "\n" when it had four fields
        tokens = body[pos:cut].replace(b"\n", b",\n,").split(b",")
        tokens.pop()
        if len(tokens) != 5 * n or tokens[4::5].count(b"\n") != n:
            return False
        ids, rels, md5s, sizes = tokens[0::5], tokens[1::5], tokens[2::5], tokens[3::5]
        del tokens
        width, letter = len(self.first), self.first[:1] * n
        joined, jrels, jmd5s = b"".join(ids), b"".join(rels), b"".join(md5s)
        if (
            set(map(len, ids)) != {width}
            or joined[0::width] != letter
            or joined.translate(None, _DIGITS) != letter
            or ids[0] <= self.previous
            or ids[0] < self.first
            or ids[-1] > self.last
            or not all(map(operator.lt, ids, islice(ids, 1, None)))
            or set(map(len, rels)) != {width + 4}
            or jrels != b".jpg".join(ids) + b".jpg"  # one length each, so row for row
            or not set(map(len, md5s)) <= {0, 32}
            or jmd5s.translate(None, _HEX)
            or max(map(len, sizes)) > 15
            or b"".join(sizes).translate(None, _DIGITS)
        ):
            return False
        self.ids.extend(ids, width, joined)
        self.rels.extend(rels, width + 4, jrels)
        self.md5s.extend(md5s, 0 if b"" in md5s else 32, jmd5s)
        if b"" in sizes:
            self.sizes.extend(int(s) if s else -1 for s in sizes)
        else:
            self.sizes.extend(map(int, sizes))
        self.previous = ids[-1]
        self.line += n
        return True

    def rows(self, body: bytes, pos: int, end: int) -> None:
        """Row by row: every problem named by line and field."""
        first, last, width = self.first, self.last, len(self.first)
        problems, odd_rels, image_set = self.problems, self.odd_rels, self.image_set
        match = _ROW.match
        add_id, add_rel, add_md5, add_size = self.ids.add, self.rels.add, self.md5s.add, self.sizes.append
        previous, line = self.previous, self.line
        while pos < end:
            line += 1
            m = match(body, pos, end)
            if m is None:
                stop = body.find(b"\n", pos, end)
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
            else:
                previous = image_id
            if rel != image_id + b".jpg":
                if rel in odd_rels:
                    problems(
                        line, "relpath", rel.decode(), f"duplicate relpath (also on line {odd_rels[rel]})"
                    )
                odd_rels[rel] = line
            add_id(image_id)
            add_rel(rel)
            add_md5(md5 or b"")
            add_size(-1 if size is None else int(size))
        self.previous, self.line = previous, line


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

    def extend(self, values: list[bytes], width: int = 0, joined: bytes | None = None) -> None:
        """Append a block of values at once (C loops).

        ``width``: every value has this length (0: unknown); ``joined``: ``b"".join(values)``, when made already.
        """
        self._blocks.append(b"".join(self._parts))
        self._parts.clear()
        self._blocks.append(b"".join(values) if joined is None else joined)
        end = self._end
        if width:
            self._offsets.extend(range(end + width, end + width * len(values) + 1, width))
        else:
            ends = accumulate(map(len, values), initial=end)
            next(ends)
            self._offsets.extend(ends)
        self._end = self._offsets[-1]

    def column(self) -> StrColumn:
        self._blocks.append(b"".join(self._parts))
        self._parts.clear()
        return StrColumn(b"".join(self._blocks), self._offsets)
