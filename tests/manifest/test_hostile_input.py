"""Hostile and broken input through the CLI: one clear error, a non-zero exit, nothing written, no traceback.

The corpus covers publisher metadata CSVs, pinned manifests (including ones with a *valid* fingerprint
over hostile rows, as an attacker would write them), ground-truth files and params.yaml. Each case runs
``isc-kit`` in-process; the whole working folder is snapshotted (paths and bytes) before and after, so
"nothing is written" is checked, not assumed. Symlink tricks in the destination are tested against the
real S3 server: no path derived from input ever resolves outside the destination.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from _fetch_helpers import PREFIX, md5, tree_md5s

from isc_kit.cli.main import main

BUCKET = "drivendata-competition-fb-isc-data"
URI = f"s3://{BUCKET}/all/reference_images/"
HEAD = "image_id,s3_uri,md5_checksum\n"


def h(i: int) -> str:
    return hashlib.md5(f"image {i}".encode()).hexdigest()


def row(i: int, *, rid: str | None = None, uri: str | None = None, digest: str | None = None) -> str:
    rid = rid or f"R{i:06d}"
    return f"{rid},{uri or URI + rid + '.jpg'},{digest or h(i)}\n"


GOOD_ROWS = row(0) + row(1) + row(2)


def pinned(rows: list[tuple[str, str, str | None, int | None]], **header: str) -> bytes:
    """A pinned manifest with a *correct* fingerprint over arbitrary (possibly hostile) rows, written by hand."""
    body = "".join(f"{i},{r},{m or ''},{'' if s is None else s}\n" for i, r, m, s in rows).encode()
    fields = {
        "set": "reference",
        "bucket": BUCKET,
        "prefix": "all/reference_images/",
        "selection": "all",
        "count": str(len(rows)),
        "bytes": "unknown",
        "fingerprint": "sha256:" + hashlib.sha256(body).hexdigest(),
        **header,
    }
    head = "# isc-kit pinned manifest v1\n" + "".join(f"# {k}: {v}\n" for k, v in fields.items())
    return (head + "image_id,relpath,md5,size\n").encode() + body


def good_pinned(relpath: str = "R000001.jpg", **header: str) -> bytes:
    return pinned([("R000000", "R000000.jpg", h(0), 10), ("R000001", relpath, h(1), 11)], **header)


PARAMS_OK = (
    "source:\n  bucket: drivendata-competition-fb-isc-data\n  region: us-west\n"
    "sets:\n  reference:\n    metadata: meta.csv\n"
)

# case -> (files to create, argv ({d} is the working folder), words the error line must contain)
Case = tuple[dict[str, bytes | str], list[str], tuple[str, ...]]
MANIFEST = ["manifest", "reference", "--metadata", "{d}/meta.csv", "-o", "{d}/out.pinned"]
FETCH = ["fetch", "{d}/m.pinned", "{d}/dest"]
LS_IDS = ["-q", "ls", "reference", "--metadata", "{d}/meta.csv", "--id-file", "{d}/ids.txt"]
EVAL = ["eval", "{d}/pred.csv", "--ground-truth", "{d}/gt.csv"]
STAGE = ["stage", "manifest", "reference", "-o", "{d}/out.pinned", "--params", "{d}/params.yaml"]
PRED = "query_id,reference_id,score\nQ00001,R000001,0.9\n"

CORPUS: dict[str, Case] = {
    # ---- publisher metadata CSVs
    "csv-wrong-columns": ({"meta.csv": "id,url,md5\n" + GOOD_ROWS}, MANIFEST, ("header must be",)),
    "csv-extra-column": ({"meta.csv": HEAD + row(0) + row(1)[:-1] + ",x\n"}, MANIFEST, ("line 3", "columns")),
    "csv-binary-garbage": ({"meta.csv": bytes(range(256)) * 64}, MANIFEST, ("NUL byte", "binary")),
    "csv-jpeg-instead": (
        {"meta.csv": b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 100},
        MANIFEST,
        ("binary",),
    ),
    "csv-huge-line": ({"meta.csv": HEAD + "R000001," + "A" * (20 << 20) + "\n"}, MANIFEST, ("line 2",)),
    "csv-duplicate-ids": ({"meta.csv": HEAD + GOOD_ROWS + row(1)}, MANIFEST, ("line 5", "duplicate")),
    "csv-md5-31-chars": ({"meta.csv": HEAD + row(0, digest=h(0)[:31])}, MANIFEST, ("32 hex",)),
    "csv-md5-not-hex": ({"meta.csv": HEAD + row(0, digest="g" * 32)}, MANIFEST, ("32 hex",)),
    "csv-other-bucket": (
        {"meta.csv": HEAD + row(0, uri="s3://attacker-bucket/all/reference_images/R000000.jpg")},
        MANIFEST,
        ("not below", "s3_uri"),
    ),
    "csv-id-with-dotdot": ({"meta.csv": HEAD + row(0, rid="../R000000")}, MANIFEST, ("not a reference id",)),
    "csv-uri-traversal": (
        {"meta.csv": HEAD + row(0, uri=URI + "../../../../etc/R000000.jpg")},
        MANIFEST,
        ("does not match image_id",),
    ),
    "csv-absolute-path-uri": ({"meta.csv": HEAD + row(0, uri="/etc/passwd")}, MANIFEST, ("not below",)),
    "csv-nul-in-row": (
        {"meta.csv": (HEAD + row(0)).encode() + b"R000001\x00,x,y\n"},
        MANIFEST,
        ("line 3", "NUL"),
    ),
    "csv-windows-separators": (
        {"meta.csv": HEAD + row(0, uri=f"s3://{BUCKET}\\all\\reference_images\\R000000.jpg")},
        MANIFEST,
        ("not below",),
    ),
    "csv-cyrillic-lookalike-id": (
        {"meta.csv": HEAD + row(0, rid="\u0420000000")},
        MANIFEST,
        ("not a reference id",),
    ),
    "csv-fullwidth-digits": (
        {"meta.csv": HEAD + row(0, rid="R\uff10\uff10\uff10\uff10\uff10\uff11")},
        MANIFEST,
        ("not a reference id",),
    ),
    "csv-zero-width-in-id": (
        {"meta.csv": HEAD + row(0, rid="R000000\u200b")},
        MANIFEST,
        ("not a reference id",),
    ),
    "csv-invalid-utf8": (
        {"meta.csv": HEAD.encode() + b"R000000,\xff\xfe,abc\n"},
        MANIFEST,
        ("UTF-8", "line 2"),
    ),
    "csv-empty-file": ({"meta.csv": b""}, MANIFEST, ("header",)),
    "csv-query-id-in-reference": (
        {"meta.csv": HEAD + row(0, rid="Q00001")},
        MANIFEST,
        ("not a reference id",),
    ),
    "csv-quoted-newline-trick": (
        {"meta.csv": HEAD + f'"R000000\n../x",{URI}R000000.jpg,{h(0)}\n'},
        MANIFEST,
        ("not a reference id",),
    ),
    "csv-is-a-folder": ({"meta.csv/x": "x"}, MANIFEST, ("is a folder",)),
    "csv-header-only": ({"meta.csv": HEAD}, MANIFEST, ("no images in this file",)),
    "csv-header-only-no-newline": ({"meta.csv": HEAD.strip()}, MANIFEST, ("no images in this file",)),
    "csv-header-and-blank-lines": ({"meta.csv": HEAD + "\n\r\n\n"}, MANIFEST, ("no images in this file",)),
    "out-is-a-folder": (
        {"meta.csv": HEAD + GOOD_ROWS, "outdir/keep": "x"},
        ["-q", "manifest", "reference", "--metadata", "{d}/meta.csv", "-o", "{d}/outdir"],
        ("it is a folder",),
    ),
    "out-folder-missing": (
        {"meta.csv": HEAD + GOOD_ROWS},
        ["-q", "manifest", "reference", "--metadata", "{d}/meta.csv", "-o", "{d}/meta.csv.d/x.pinned"],
        ("does not exist",),
    ),
    "csv-selection-keeps-nothing": (
        {"meta.csv": HEAD + GOOD_ROWS},
        ["-q", *MANIFEST, "--ids", "R000500:R000600"],
        ("keeps no reference images", "--allow-empty"),
    ),
    "csv-utf16-bom": ({"meta.csv": (HEAD + GOOD_ROWS).encode("utf-16")}, MANIFEST, ("UTF-16", "iconv")),
    "csv-utf16-le-no-bom": ({"meta.csv": (HEAD + GOOD_ROWS).encode("utf-16-le")}, MANIFEST, ("UTF-16",)),
    "ids-utf16": (
        {"meta.csv": HEAD + GOOD_ROWS, "ids.txt": "R000001\n".encode("utf-16")},
        LS_IDS,
        ("UTF-16", "iconv"),
    ),
    # ---- pinned manifests (fingerprints valid: the rows themselves are hostile)
    "pinned-dotdot-relpath": ({"m.pinned": good_pinned("../evil.jpg")}, FETCH, ("unsafe", "relpath")),
    "pinned-absolute-relpath": ({"m.pinned": good_pinned("/tmp/evil.jpg")}, FETCH, ("unsafe",)),
    "pinned-windows-relpath": ({"m.pinned": good_pinned("..\\..\\evil.jpg")}, FETCH, ("unsafe",)),
    "pinned-nested-dotdot": ({"m.pinned": good_pinned("sub/../../evil.jpg")}, FETCH, ("unsafe",)),
    "pinned-hidden-relpath": ({"m.pinned": good_pinned(".isc-kit/x.verified")}, FETCH, ("unsafe",)),
    "pinned-lookalike-relpath": ({"m.pinned": good_pinned("R000001\u2024jpg")}, FETCH, ("unsafe",)),
    "pinned-md5-wrong-length": (
        {"m.pinned": pinned([("R000000", "R000000.jpg", h(0)[:30], 1)])},
        FETCH,
        ("md5 must be 32",),
    ),
    "pinned-negative-size": (
        {"m.pinned": pinned([("R000000", "R000000.jpg", h(0), -5)])},
        FETCH,
        ("size must be",),
    ),
    "pinned-duplicate-ids": (
        {"m.pinned": pinned([("R000000", "R000000.jpg", h(0), 1), ("R000000", "R000001.jpg", h(1), 1)])},
        FETCH,
        ("duplicate",),
    ),
    "pinned-edited-row": (
        {"m.pinned": good_pinned().replace(h(1).encode(), h(2).encode())},
        FETCH,
        ("fingerprint",),
    ),
    "pinned-unknown-set": ({"m.pinned": good_pinned(set="secrets")}, FETCH, ("secrets",)),
    "pinned-hostile-bucket": ({"m.pinned": good_pinned(bucket="../../etc")}, FETCH, ("bucket",)),
    "pinned-metadata-csv-instead": ({"m.pinned": HEAD + GOOD_ROWS}, FETCH, ("not a pinned manifest",)),
    "pinned-nul-byte": (
        {"m.pinned": good_pinned().replace(b"R000001.jpg", b"R00\x001.jpg")},
        FETCH,
        ("NUL",),
    ),
    "pinned-verify-dotdot": (
        {"m.pinned": good_pinned("../evil.jpg")},
        ["verify", "{d}/m.pinned", "{d}/dest"],
        ("unsafe",),
    ),
    "pinned-pin-dotdot": (
        {"m.pinned": good_pinned("../evil.jpg")},
        ["pin", "{d}/m.pinned", "{d}/dest"],
        ("unsafe",),
    ),
    "dest-is-a-file": ({"m.pinned": good_pinned(), "dest": "not a folder"}, FETCH, ("not a folder",)),
    # ---- ground truth (and predictions)
    "gt-wrong-header": ({"pred.csv": PRED, "gt.csv": "a,b\nc,d\n"}, EVAL, ("header",)),
    "gt-binary": ({"pred.csv": PRED, "gt.csv": b"\x89PNG\r\n\x1a\n\xff\xfe\xfd"}, EVAL, ("UTF-8",)),
    "gt-bad-ids": (
        {"pred.csv": PRED, "gt.csv": "query_id,reference_id\nQ1,R2\n"},
        EVAL,
        ("line 2", "not a query id"),
    ),
    "gt-predictions-instead": ({"pred.csv": PRED, "gt.csv": PRED}, EVAL, ("predictions file",)),
    "gt-utf16": ({"pred.csv": PRED, "gt.csv": "query_id,reference_id\n".encode("utf-16")}, EVAL, ("UTF-16",)),
    "gt-three-columns": (
        {"pred.csv": PRED, "gt.csv": "query_id,reference_id\nQ00001,R000001,x\n"},
        EVAL,
        ("expected 2 columns",),
    ),
    "gt-traversal-ids": (
        {"pred.csv": PRED, "gt.csv": "query_id,reference_id\n../../Q00001,R000001\n"},
        EVAL,
        ("not a query id",),
    ),
    # ---- params.yaml
    "params-invalid-yaml": ({"params.yaml": "sets: [unclosed\n"}, STAGE, ("invalid YAML",)),
    "params-top-level-list": ({"params.yaml": "- a\n- b\n"}, STAGE, ("mapping",)),
    "params-unknown-set": (
        {"params.yaml": PARAMS_OK.replace("reference:", "secrets:")},
        STAGE,
        ("unknown set",),
    ),
    "params-negative-sample": ({"params.yaml": PARAMS_OK + "    sample: -3\n"}, STAGE, ("sample",)),
    "params-no-metadata": (
        {"params.yaml": "sets:\n  reference:\n    sample: 3\n"},
        STAGE,
        ("metadata is required",),
    ),
    "params-unknown-key": ({"params.yaml": PARAMS_OK + "    rm_rf: true\n"}, STAGE, ("unknown key", "rm_rf")),
    "params-filters-not-a-list": ({"params.yaml": PARAMS_OK + "    filters: '*'\n"}, STAGE, ("filters",)),
    "params-ftp-endpoint": (
        {"params.yaml": PARAMS_OK.replace("region: us-west\n", "region: us-west\n  endpoint_url: ftp://x\n")},
        STAGE,
        ("http://",),
    ),
    "params-bogus-region": ({"params.yaml": PARAMS_OK.replace("us-west", "mars")}, STAGE, ("region",)),
    "params-hostile-bucket": (
        {"params.yaml": PARAMS_OK.replace("bucket: drivendata", "bucket: ../drivendata")},
        STAGE,
        ("bucket",),
    ),
    "params-binary": ({"params.yaml": b"\xff\xfe\x00\x01garbage"}, STAGE, ("UTF-8",)),
    "params-python-tag": (
        {"params.yaml": "sets: !!python/object/apply:os.system ['touch {d}/pwned']\n"},
        STAGE,
        ("invalid YAML",),
    ),
    "params-alias-bomb": (
        {
            "params.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nsets: *b\n"
        },
        STAGE,
        ("sets must map",),
    ),
}


def snapshot(root: Path) -> dict[str, str]:
    """Every path below root (folders and symlinks too) with a digest of its bytes."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every S3 client at a closed local port: a case that slipped through could not reach AWS."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ISC_KIT_ENDPOINT_URL", f"http://127.0.0.1:{port}")


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25
    kinds = {name.split("-")[0] for name in CORPUS}
    assert {"csv", "pinned", "gt", "params", "dest"} <= kinds


@pytest.mark.parametrize("case", list(CORPUS))
def test_hostile_input_is_one_clear_error_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_network: None
) -> None:
    files, argv, words = CORPUS[case]
    work = tmp_path / "work"
    work.mkdir()
    for name, content in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.replace("{d}", str(work)).encode()
        path.write_bytes(content)
    before = snapshot(work)
    args = [a.replace("{d}", str(work)) for a in argv]
    code = main(args)
    captured = capsys.readouterr()
    assert code not in (0, 70), f"exit {code}: {captured.err}"  # 70 is an internal error (a bug)
    assert snapshot(work) == before  # nothing written, nothing created, nothing deleted
    assert captured.out == ""
    assert "Traceback" not in captured.err
    first = captured.err.splitlines()[0]
    command = next(a for a in args if not a.startswith("-"))
    assert first.startswith(f"isc-kit {command}: error: "), captured.err
    for word in words:
        assert word in first, f"{word!r} not in {first!r}"
    named = {name.split("/")[0] for name in files if name.split("/")[0] in " ".join(args)}
    assert any(n in first for n in named), f"the error does not say which file: {first!r}"


def test_verbose_shows_the_traceback_for_the_same_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m.pinned").write_bytes(good_pinned("../evil.jpg"))
    assert main(["-v", "fetch", str(tmp_path / "m.pinned"), str(tmp_path / "dest")]) == 3
    assert "Traceback" in capsys.readouterr().err


# ------------------------------------------------------------------------------ symlinks in the destination


def _pinned_for(bucket: str, rows: dict[str, bytes], path: Path) -> None:
    data = pinned([(r.split("/")[-1][:-4], r, md5(b), len(b)) for r, b in sorted(rows.items())])
    path.write_bytes(data.replace(f"# bucket: {BUCKET}".encode(), f"# bucket: {bucket}".encode()))


def test_symlinked_subfolder_pointing_out_is_refused(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"R000001.jpg": b"one", "sub/R000002.jpg": b"two"}
    bucket = make_bucket({PREFIX + k: v for k, v in rows.items()})
    _pinned_for(bucket, rows, tmp_path / "m.pinned")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub").symlink_to(outside)
    assert main(["-q", "fetch", str(tmp_path / "m.pinned"), str(dest)]) == 1
    err = capsys.readouterr().err
    assert "symlink" in err
    assert "Traceback" not in err
    assert list(outside.iterdir()) == []
    assert (dest / "R000001.jpg").read_bytes() == b"one"


def test_symlinked_parent_chain_pointing_out_is_refused(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"a/b/R000003.jpg": b"three"}
    bucket = make_bucket({PREFIX + k: v for k, v in rows.items()})
    _pinned_for(bucket, rows, tmp_path / "m.pinned")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "a").symlink_to(outside)  # a/ links out; b/ would be created *outside* if followed
    assert main(["-q", "fetch", str(tmp_path / "m.pinned"), str(dest)]) == 1
    assert "symlink" in capsys.readouterr().err
    assert list(outside.rglob("*")) == [] or not any(p.is_file() for p in outside.rglob("*"))


def test_final_name_that_is_a_symlink_is_replaced_not_written_through(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"R000001.jpg": b"the real image"}
    bucket = make_bucket({PREFIX + k: v for k, v in rows.items()})
    _pinned_for(bucket, rows, tmp_path / "m.pinned")
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (dest / "R000001.jpg").symlink_to(victim)
    assert main(["-q", "fetch", str(tmp_path / "m.pinned"), str(dest)]) == 0
    assert victim.read_text() == "precious"
    assert not (dest / "R000001.jpg").is_symlink()
    assert tree_md5s(dest) == {"R000001.jpg": md5(b"the real image")}


def test_symlink_to_a_correct_file_outside_is_not_counted_as_verified(
    s3_env: str, make_bucket: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"R000001.jpg": b"bytes"}
    bucket = make_bucket({PREFIX + k: v for k, v in rows.items()})
    _pinned_for(bucket, rows, tmp_path / "m.pinned")
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "copy.jpg"
    outside.write_bytes(b"bytes")
    (dest / "R000001.jpg").symlink_to(outside)
    assert main(["-q", "verify", str(tmp_path / "m.pinned"), str(dest)]) == 1
    assert "missing" in capsys.readouterr().err
