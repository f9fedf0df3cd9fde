"""The block readers and the C lister agree with their line-by-line / os.scandir twins.

pinned rows and verified-record lines are read a block at a time with C loops; any block with a
line the fast check refuses is read again line by line. Each mutation below must either be
refused by the fast check or give exactly what the line-by-line reader gives; a clean block
must take the fast path (or the speed-up is gone). The C lister (``isc_kit._scanx``) must list a
folder exactly as ``os.scandir`` does.
"""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from isc_kit import destination, records
from isc_kit.catalog import get_set
from isc_kit.destination import Destination
from isc_kit.pinned import _Rows

MD5 = hashlib.md5(b"x").hexdigest().encode()
ROWS = [b"R%06d,R%06d.jpg,%s,%d\n" % (i, i, MD5, 10 + i) for i in range(1, 6)]
CLEAN = b"".join(ROWS)
PINNED_MUTATIONS = [
    CLEAN.replace(b"R000002,", b"R000009,"),  # not sorted
    CLEAN.replace(b"R000003,", b"R000002,"),  # duplicate id
    CLEAN.replace(b"R000002,", b"Q000002,"),  # another set's letter
    CLEAN.replace(b"R000002,", b"R00000:,"),  # in range as bytes, not digits
    CLEAN.replace(b"R000002,", b"R0000002,"),  # wrong width
    CLEAN.replace(b"R000002.jpg", b"R000001.jpg"),  # another row's file
    CLEAN.replace(b"R000002.jpg", b"sub/x.jpg"),  # an odd relpath (allowed)
    CLEAN.replace(b"R000002.jpg", b"../x.jpg"),  # unsafe relpath
    CLEAN.replace(MD5 + b",12", MD5.upper() + b",12"),  # upper-case md5
    CLEAN.replace(MD5 + b",12", MD5[:31] + b",12"),  # short md5
    CLEAN.replace(MD5 + b",12", b",12"),  # no md5 (allowed)
    CLEAN.replace(b",12\n", b",\n"),  # no size (allowed)
    CLEAN.replace(b",12\n", b",1234567890123456\n"),  # 16-digit size
    CLEAN.replace(b",12\n", b",1x\n"),  # not a number
    CLEAN.replace(b",12\n", b",12,extra\n"),  # five fields
    CLEAN.replace(b",12\n", b"\n").replace(b",13\n", b",13,\n"),  # three then five: the counts balance
    CLEAN.replace(b",12\n", b",12\r\n"),  # CRLF
    CLEAN.replace(b",12\n", b",1\x002\n"),  # NUL
    CLEAN.replace(b"R000002,", b"R000000,"),  # out of range (the set starts at R000000: in range)
]


def _read(body: bytes, fast: bool) -> tuple[bool, object]:
    rows = _Rows(get_set("reference"))
    took = rows.block(body, 0, len(body)) if fast else False
    if not took:
        rows.rows(body, 0, len(body))
    columns = (list(rows.ids.column()), list(rows.rels.column()), list(rows.md5s.column()), list(rows.sizes))
    problems = [(p.line, p.column, p.message) for p in rows.problems.problems]
    return took, (columns, problems, dict(rows.odd_rels), rows.previous, rows.line)


def test_a_clean_block_of_pinned_rows_takes_the_fast_path() -> None:
    took, fast = _read(CLEAN, fast=True)
    assert took
    assert fast == _read(CLEAN, fast=False)[1]
    assert fast[0][3] == [11, 12, 13, 14, 15]


@pytest.mark.parametrize("body", PINNED_MUTATIONS)
def test_a_pinned_block_is_read_fast_only_when_it_reads_the_same_row_by_row(body) -> None:
    took, fast = _read(body, fast=True)
    _, slow = _read(body, fast=False)
    assert fast == slow
    if took:
        assert slow[1] == []  # the fast path never takes a block with a problem


LINES = [b"R%06d.jpg\t%d\t%d\t%s\n" % (i, i, 1733480000123456789 + i, MD5) for i in range(5)]
RECORD = b"".join(LINES)
RECORD_MUTATIONS = [
    RECORD.replace(b"\t1\t", b"\t\t"),  # empty size
    RECORD.replace(b"\t1\t", b"\t+1\t"),
    RECORD.replace(b"\t1\t", b"\t99999999999999999999\t"),  # 20 digits
    RECORD.replace(b"\t1\t", b"\t9223372036854775808\t"),  # 2**63
    RECORD.replace(b"\t1\t", b"\t9223372036854775807\t"),  # 2**63 - 1: fine
    RECORD.replace(b"\t1733480000123456790\t", b"\t-9223372036854775808\t"),  # -2**63: fine (line by line)
    RECORD.replace(b"\t1733480000123456790\t", b"\t-5\t"),
    RECORD.replace(b"\t1733480000123456790\t", b"\t5-\t"),
    RECORD.replace(b"\t1733480000123456790\t", b"\t--5\t"),
    RECORD.replace(b"\t1733480000123456790\t", b"\t-\t"),
    RECORD.replace(b"R000001.jpg", b""),  # empty relpath
    RECORD.replace(b"R000001.jpg", b"a b\x00\r.jpg"),  # odd bytes are a relpath all the same
    RECORD.replace(MD5 + b"\nR000002", MD5[:31] + b"\nR000002"),
    RECORD.replace(MD5 + b"\nR000002", MD5.upper() + b"\nR000002"),
    RECORD.replace(MD5 + b"\nR000002", MD5 + b"\textra\nR000002"),
    RECORD.replace(b"\n", b"\n\n", 1),  # a blank line
    RECORD.replace(b"\n", b"\n# a comment\n", 1),
]


@pytest.mark.parametrize("data", [RECORD, *RECORD_MUTATIONS])
def test_a_record_block_reads_as_its_lines_do(data) -> None:
    fast = records._block(data, len(data))
    slow = records._lines(data, len(data))
    if data == RECORD:
        assert fast is not None
    if fast is not None:
        assert fast == slow
    assert slow[0] == [r for r in slow[0] if r]  # the line reader itself keeps only well-formed lines


def test_iter_entries_reads_across_block_edges_and_skips_a_torn_last_line(tmp_path) -> None:
    path = tmp_path / "r.verified"
    path.write_bytes(records.HEADER + RECORD + b"R9.jpg\t1\t1\t" + MD5[:10])  # torn
    whole = list(records.iter_entries(path, raw=True))
    assert [e[0] for e in whole] == [b"R%06d.jpg" % i for i in range(5)]
    small = [e for block in records.iter_blocks(path, block_bytes=7) for e in zip(*block, strict=True)]
    assert small == whole


@pytest.mark.skipif(destination._scanx is None, reason="the C lister was not built")
def test_the_c_lister_lists_a_folder_as_os_scandir_does(tmp_path, monkeypatch) -> None:
    root = tmp_path / "d"
    (root / "sub").mkdir(parents=True)
    for i in range(5000):  # over the threshold from which lstat runs on several threads
        (root / f"R{i:06d}.jpg").write_bytes(b"x" * (i % 7))
    (root / os.fsdecode(b"\xff.jpg")).write_bytes(b"y")
    (root / "link").symlink_to(root / "R000001.jpg")
    (root / "dangling").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    try:
        got = destination.list_folder(str(root))
        monkeypatch.setattr(destination, "_scanx", None)
        want = destination._list_folder_py(str(root))
    finally:
        sock.close()
    as_set = lambda r: (  # noqa: E731
        sorted(zip(r[0], r[1], r[2], strict=True)),
        sorted(r[3]),
    )
    assert as_set(got) == as_set(want)
    assert {("d", "sub"), ("l", "link"), ("l", "dangling"), ("o", "fifo"), ("o", "sock")} == set(got[3])
    assert len(got[0]) == 5001
    with pytest.raises(FileNotFoundError):
        destination.list_folder(str(root / "absent"))
    with pytest.raises(NotADirectoryError):
        destination.list_folder(str(root / "R000001.jpg"))


@pytest.mark.skipif(not destination._FLAT_NAMES, reason="the C lister was not built (or names are not UTF-8)")
def test_a_flat_scan_keeps_the_names_as_one_buffer_and_reads_as_the_python_scan(tmp_path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    for i in range(300):
        (root / f"R{i:06d}.jpg").write_bytes(b"x" * (i % 5))
    (root / os.fsdecode(b"\xff.jpg")).write_bytes(b"y")  # undecodable: its own bytes, either way

    def rows(scan):
        return sorted(zip(scan.rels, scan.sizes, scan.mtimes, strict=True)), sorted(scan.temps)

    def both():
        fast = Destination(root).scan()
        with pytest.MonkeyPatch.context() as m:
            m.setattr(destination, "_FLAT_NAMES", False)
            m.setattr(destination, "_scanx", None)
            slow = Destination(root).scan()
        return fast, slow

    fast, slow = both()
    assert fast.joined is not None  # a flat folder: no str per name was made
    assert len(fast) == 301
    assert fast.names_utf8() == slow.names_utf8()
    assert rows(fast) == rows(slow)
    assert fast.joined is None  # asked for, the names were decoded once
    (root / destination.temp_name("R000001.jpg")).write_bytes(b"part")
    fast, slow = both()
    assert rows(fast) == rows(slow)
    assert len(fast.temps) == 1  # the part file set aside, not listed
    assert len(fast) == 301
    (root / "sub").mkdir()
    (root / "sub" / "x.jpg").write_bytes(b"zz")
    fast, slow = both()
    assert rows(fast) == rows(slow)
    assert ("sub/x.jpg", 2) in [(r, s) for r, s, _ in rows(fast)[0]]
    assert len(fast) == 302
