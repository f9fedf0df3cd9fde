"""The pandas-free verify path: pinned rows read with the standard library, same answers as load_pinned."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, md5

from isc_kit._pinned import read_rows
from isc_kit.errors import InputFileError
from isc_kit.manifest import load_pinned
from isc_kit.records import HEADER, compact, record_path
from isc_kit.verify import verify, verify_pinned


def _refingerprint(path: Path, body_edit: tuple[bytes, bytes]) -> None:
    """Edit a row and recompute the fingerprint, as a careful attacker would."""
    data = path.read_bytes()
    head, _, body = data.partition(b"image_id,relpath,md5,size\n")
    body = body.replace(*body_edit, 1)
    lines = [
        b"# fingerprint: sha256:" + hashlib.sha256(body).hexdigest().encode()
        if line.startswith(b"# fingerprint:")
        else line
        for line in head.split(b"\n")
    ]
    path.write_bytes(b"\n".join(lines) + b"image_id,relpath,md5,size\n" + body)


def test_rows_equal_load_pinned(pinned: Path) -> None:
    rows = read_rows(pinned)
    m = load_pinned(pinned)
    assert rows is not None
    assert len(rows) == len(m) == 40
    assert rows.relpaths == m.table["relpath"].tolist()
    assert rows.md5s == m.table["md5"].tolist()
    assert rows.sizes == m.table["size"].fillna(-1).astype(int).tolist()
    assert (rows.set_name, rows.bucket, rows.prefix) == (m.set_name, m.bucket, m.prefix)


@pytest.mark.parametrize(
    "edit",
    [
        (b"R000003.jpg", b"../../etc.jpg"),  # unsafe path, fingerprint recomputed
        (b"R000003,", b"R000002,"),  # duplicate / unsorted id
        (b"R000003,", b"Q000003,"),  # id of another set
    ],
)
def test_edited_rows_fall_back_to_load_pinned_errors(pinned: Path, tmp_path: Path, edit: tuple) -> None:
    _refingerprint(pinned, edit)
    assert read_rows(pinned) is None
    with pytest.raises(InputFileError):
        load_pinned(pinned)
    with pytest.raises(InputFileError):
        verify_pinned(pinned, tmp_path / "dest")


def test_edited_row_without_new_fingerprint_is_refused(pinned: Path, tmp_path: Path) -> None:
    data = pinned.read_bytes()
    pinned.write_bytes(data.replace(b",\n", b",7\n", 1))  # a size added by hand
    assert read_rows(pinned) is None
    proc = subprocess.run(
        [sys.executable, "-m", "isc_kit", "verify", str(pinned), str(tmp_path), "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == InputFileError.exit_code
    assert "fingerprint" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_light_verify_matches_verify_and_never_imports_pandas(
    pinned: Path, tiny_root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "ref"
    shutil.copytree(tiny_root / PREFIX, dest)
    (dest / "R000001.jpg").write_bytes(b"rot")
    (dest / "R000002.jpg").unlink()
    (dest / "stray.txt").write_bytes(b"x")
    code = (
        "import json, sys; from isc_kit.verify import verify_pinned; "
        f"r = verify_pinned({str(pinned)!r}, {str(dest)!r}); "
        "print(json.dumps([r.to_dict(), sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    light, heavy_modules = json.loads(out)
    assert heavy_modules == []
    full = verify(load_pinned(pinned), dest).to_dict()
    for d in (light, full):
        d.pop("seconds")
    assert light == full
    assert light["missing"] == ["R000002.jpg"]
    assert [c["relpath"] for c in light["corrupt"]] == ["R000001.jpg"]
    assert light["corrupt"][0]["reason"].startswith(f"md5 is {md5(b'rot')}")
    assert light["extra"] == ["stray.txt"]
    assert light["verified"] == 38


def test_compact_keeps_latest_valid_line_per_file_sorted(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    path = record_path(dest)
    path.parent.mkdir(parents=True)
    a, b = md5(b"a"), md5(b"b")
    path.write_bytes(
        HEADER.encode()
        + f"z.jpg\t1\t5\t{a}\n".encode()
        + f"a.jpg\t1\t5\t{a}\n".encode()
        + b"bad line\n"
        + f"z.jpg\t2\t6\t{b}\n".encode()
        + f"gone.jpg\t1\t5\t{a}\n".encode()
        + b"torn\t1"
    )
    assert compact(dest, drop=["gone.jpg"]) == 2
    assert path.read_bytes() == HEADER.encode() + f"a.jpg\t1\t5\t{a}\nz.jpg\t2\t6\t{b}\n".encode()
