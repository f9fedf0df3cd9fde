"""The relpath join under compare(): the loops execution and the numpy one give one answer.

Both are run on the same generated cases (duplicate relpaths in the manifest, repeated and
malformed record lines, files the manifest does not list, unicode and undecodable names, empty
sides, one entry, numbered relpaths that take the by-number lookup and near-misses of it); a
plain-Python statement of the rules is the oracle for both. compare() itself is then run through
the large-manifest path (scan in a thread, numpy join and classification) on real files.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isc_kit import _join, local, records
from isc_kit.local import CORRUPT, MISSING, UNVERIFIED, VERIFIED, Destination, TreeScan, compare
from isc_kit.manifest import Manifest

EXECUTIONS = _join.EXECUTIONS
NAMES = ("R000000.jpg", "a/b.jpg", "é.jpg", "日本/写真.jpg", "x y.jpg", "R000001.jpg")
FILE_NAMES = (*NAMES, "\udcff.jpg")  # a file name that is not UTF-8 (as os.fsdecode gives it)
MD5S = (hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest(), "")


def _manifest(rows: list[tuple[str, str, int]]) -> Manifest:
    """Rows (relpath, md5 or "", size) in this order (ids are made sortable so the order is kept)."""
    return Manifest.from_rows(
        "reference",
        "b",
        "p/",
        [(f"R{i:06d}", rel, md5 or None, size) for i, (rel, md5, size) in enumerate(rows)],
    )


def _write_record(path: Path, lines: list[bytes], header: bytes = records.HEADER) -> Path:
    path.write_bytes(header + b"".join(lines))
    return path


def _line(rel: str, size: int, mtime: int, md5: str) -> bytes:
    return f"{rel}\t{size}\t{mtime}\t{md5}\n".encode("utf-8", "surrogateescape")


def _oracle(manifest: Manifest, files: dict[str, tuple[int, int]], record: list[bytes] | None):
    """The rules in plain Python: last row of a duplicate relpath, latest well-formed record line."""
    rows = {manifest.relpaths.raw(i): i for i in range(len(manifest))}
    n = len(manifest)
    lsize, lmtime, extra = [-1] * n, [0] * n, []
    for rel, (size, mtime) in files.items():
        row = rows.get(rel.encode("utf-8", "surrogateescape"))
        if row is None:
            extra.append(rel)
        else:
            lsize[row], lmtime[row] = size, mtime
    recorded = [0] * n
    for line in record or []:
        if not (records._LINE.fullmatch(line)):
            continue
        rel, size, mtime, md5 = line[:-1].split(b"\t")
        if int(size) >= 2**63 or not -(2**63) <= int(mtime) < 2**63 or rel not in rows:
            continue
        row = rows[rel]
        if int(size) == lsize[row] and int(mtime) == lmtime[row]:
            recorded[row] = 1 if md5 == manifest.md5s.raw(row) else 2
        else:
            recorded[row] = 3
    return lsize, lmtime, sorted(extra), recorded


def _run(
    execution: str | None, manifest: Manifest, files: dict[str, tuple[int, int]], record_path: Path | None
):
    """The join of a scan of ``files``; the same whether the scan holds its names as ``str`` or as the C
    lister's one NUL-terminated buffer (a flat folder)."""
    results = []
    for flat in (False, True):
        n = len(manifest)
        sizes = array("q", (s for s, _ in files.values()))
        mtimes = array("q", (m for _, m in files.values()))
        if flat:
            joined = b"".join(os.fsencode(name) + b"\0" for name in files)
            tree = TreeScan(None, sizes, mtimes, joined=joined)
        else:
            tree = TreeScan(list(files), sizes, mtimes)
        lsize, lmtime, extra = array("q", [-1]) * n, array("q", [0]) * n, []
        returned, recorded = _join.join(
            manifest, tree, record_path, lsize, lmtime, extra, execution=execution
        )
        assert returned is tree
        assert tree.rels == []  # the scan's names are let go
        assert tree.joined is None
        results.append((list(lsize), list(lmtime), sorted(extra), list(recorded)))
    assert results[0] == results[1]
    return results[0]


rel_ = st.sampled_from(NAMES)
file_rel = st.sampled_from(FILE_NAMES)
file_ = st.tuples(st.integers(0, 3), st.integers(-2, 2))
record_line = st.one_of(
    st.builds(_line, file_rel, st.integers(0, 3), st.integers(-2, 2), st.sampled_from(MD5S[:2])),
    st.sampled_from(
        [
            b"R000000.jpg\t1\t1\tnot-an-md5\n",
            b"\t1\t1\t" + MD5S[0].encode() + b"\n",  # empty relpath
            b"R000000.jpg\t99999999999999999999\t1\t" + MD5S[0].encode() + b"\n",  # 20 digits
            b"R000000.jpg\t9223372036854775808\t1\t" + MD5S[0].encode() + b"\n",  # 2**63: not int64
            b"R000000.jpg\t1\t-9223372036854775809\t" + MD5S[0].encode() + b"\n",
            b"R000000.jpg\t+1\t1\t" + MD5S[0].encode() + b"\n",
            b"\n",
            b"# a comment\n",
        ]
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(rel_, st.sampled_from(MD5S), st.integers(-1, 3)), max_size=8),
    files=st.dictionaries(file_rel, file_, max_size=len(FILE_NAMES)),
    lines=st.none() | st.lists(record_line, max_size=10),
    torn=st.booleans(),
)
def test_both_executions_agree_with_the_rules(tmp_path_factory, rows, files, lines, torn) -> None:
    manifest = _manifest(rows)
    path = None
    if lines is not None:
        body = lines + ([b"R000000.jpg\t1\t1\t" + MD5S[0].encode()] if torn else [])  # a torn last line
        path = _write_record(tmp_path_factory.mktemp("rec") / "r.verified", body)
    want = _oracle(manifest, files, lines)
    for execution in EXECUTIONS:
        assert _run(execution, manifest, files, path) == want, execution


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_duplicate_relpath_belongs_to_the_last_row_and_the_latest_record_line_wins(
    tmp_path, execution
) -> None:
    manifest = _manifest([("a.jpg", MD5S[0], 1), ("a.jpg", MD5S[0], 1), ("b.jpg", MD5S[1], 1)])
    record = _write_record(
        tmp_path / "r",
        [_line("a.jpg", 1, 5, MD5S[1]), _line("a.jpg", 1, 5, MD5S[0]), _line("b.jpg", 1, 5, MD5S[1]),
         _line("b.jpg", 1, 4, MD5S[1])],
    )  # fmt: skip
    lsize, _, extra, recorded = _run(execution, manifest, {"a.jpg": (1, 5), "b.jpg": (1, 5)}, record)
    assert lsize == [-1, 1, 1]
    assert recorded == [0, 1, 3]  # a: its latest line names its md5; b: its latest line is stale
    assert extra == []


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_empty_sides_and_one_entry(tmp_path, execution) -> None:
    empty = _manifest([])
    assert _run(execution, empty, {"x.jpg": (1, 1)}, None) == ([], [], ["x.jpg"], [])
    one = _manifest([("é.jpg", MD5S[0], 1)])
    assert _run(execution, one, {}, None) == ([-1], [0], [], [0])
    record = _write_record(tmp_path / "r", [_line("é.jpg", 1, 7, MD5S[0])])
    assert _run(execution, one, {"é.jpg": (1, 7)}, record) == ([1], [7], [], [1])
    bad_header = _write_record(tmp_path / "bad", [_line("é.jpg", 1, 7, MD5S[0])], header=b"# other\n")
    assert _run(execution, one, {"é.jpg": (1, 7)}, bad_header) == ([1], [7], [], [0])
    assert _run(execution, one, {"é.jpg": (1, 7)}, tmp_path / "absent") == ([1], [7], [], [0])


def test_an_unknown_execution_is_refused() -> None:
    with pytest.raises(ValueError, match="execution"):
        _join.join(
            _manifest([]),
            TreeScan([], array("q"), array("q")),
            None,
            array("q"),
            array("q"),
            [],
            execution="x",
        )


@pytest.mark.parametrize("large", [False, True])
def test_compare_on_files_through_either_path(tmp_path, monkeypatch, large) -> None:
    """compare() end to end: the large-manifest path (threaded scan, numpy join) is the small one's twin."""
    if large:
        monkeypatch.setattr(_join, "VECTOR_MIN", 0)
        monkeypatch.setattr(local, "VECTOR_MIN", 0)
    root = tmp_path / "dest"
    (root / "日本").mkdir(parents=True)
    good, other = b"good", b"othr"
    names = ["R000000.jpg", "日本/写真.jpg", "R000002.jpg", "R000003.jpg", "R000004.jpg", "R000005.jpg"]
    for name in names[:5]:
        (root / name).write_bytes(good)
    (root / "R000003.jpg").write_bytes(other)
    (root / "extra.jpg").write_bytes(b"x")
    (root / os.fsdecode(b"\xff.jpg")).write_bytes(b"x")  # not UTF-8: an extra file all the same
    md5 = hashlib.md5(good).hexdigest()
    manifest = _manifest(
        [(names[0], md5, 4), (names[1], md5, 4), (names[2], md5, 9), (names[3], md5, 4), (names[4], "", 4),
         (names[5], md5, 4)]
    )  # fmt: skip
    dest = Destination(root)
    st0 = (root / names[0]).stat()
    with records.RecordWriter(dest.record_path) as w:
        w.add(names[0], st0.st_size, st0.st_mtime_ns, md5)

    status = compare(manifest, dest, record=False)

    assert list(status.status) == [VERIFIED, VERIFIED, CORRUPT, CORRUPT, UNVERIFIED, MISSING]
    assert status.hashed == 2  # the record vouches for the first; the second and fourth are read
    assert status.reason(2) == "size is 4 bytes, manifest says 9"
    assert status.reason(3).startswith("md5 is ")
    assert status.extra == sorted(["extra.jpg", os.fsdecode(b"\xff.jpg")])


NUMBERED = tuple(f"R{i:06d}.jpg" for i in (0, 1, 2, 3, 13, 31, 100))
NEAR_MISSES = (
    "R0000001.jpg",
    "R00000a.jpg",
    "R00003.jpg",
    "S000001.jpg",
    "R000001.png",
    "R000103.jpg",
    "R00001١.jpg",
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.sampled_from(NUMBERED), max_size=7),
    sparse=st.booleans(),
    files=st.dictionaries(st.sampled_from(NUMBERED + NEAR_MISSES), file_, max_size=8),
    lines=st.lists(
        st.builds(_line, st.sampled_from(NUMBERED + NEAR_MISSES), st.integers(0, 3), st.integers(-2, 2),
                  st.sampled_from(MD5S[:2]))
        | st.just(b"R000\x00001.jpg\t1\t1\t" + MD5S[0].encode() + b"\n"),
        max_size=10,
    ),
)  # fmt: skip
def test_numbered_relpaths_are_looked_up_by_number_with_the_same_answer(
    tmp_path_factory, rows, sparse, files, lines
) -> None:
    """ISC-style names take the by-number lookup; widths, letters and other stems in them are not listed."""
    if sparse:
        rows = [*rows, "R987654.jpg"]  # numbers too far apart for a table: the dict instead
    manifest = _manifest([(rel, MD5S[i % 2], 1) for i, rel in enumerate(rows)])
    numbered = _join._Numbered.of(manifest.relpaths)
    if rows and len(set(rows)) == len(rows) and not sparse and len(rows) > 1:
        assert numbered is not None  # the case under test really takes the fast lookup
    if len(set(rows)) != len(rows) or sparse:
        assert numbered is None  # duplicates ("last row wins") and sparse numbers go to the dict
    path = _write_record(tmp_path_factory.mktemp("rec") / "r.verified", lines)
    want = _oracle(manifest, files, lines)
    for execution in EXECUTIONS:
        assert _run(execution, manifest, files, path) == want, execution


def test_one_name_wide_of_the_rest_is_gathered_not_viewed() -> None:
    """The by-number lookup over names of mixed widths reads each at its own offset."""
    manifest = _manifest([(rel, MD5S[0], 1) for rel in NUMBERED])
    numbered = _join._Numbered.of(manifest.relpaths)
    assert numbered is not None
    names = ["R000013.jpg", "R0000013.jpg", "", "R000100.jpg", "R000002.jpg"]
    joined = b"".join(n.encode() + b"\0" for n in names)
    assert numbered.rows(joined, len(names)).tolist() == [4, -1, -1, 6, 2]
    same_width = ["R000031.jpg", "R000032.jpg", "R000003.jpg"]
    joined = b"".join(n.encode() + b"\0" for n in same_width)
    assert numbered.rows(joined, len(same_width)).tolist() == [5, -1, 3]
