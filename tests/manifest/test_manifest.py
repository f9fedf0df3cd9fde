"""Publisher CSV validation, listing manifests and the pinned form."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from isc_kit.errors import InputFileError
from isc_kit.metadata import manifest_from_listing, read_metadata
from isc_kit.pinned import load_pinned, write_pinned
from isc_kit.source import resolve_source

BUCKET = "drivendata-competition-fb-isc-data"
HEADER = "image_id,s3_uri,md5_checksum"


def md5_of(i: int) -> str:
    return hashlib.md5(f"image {i}".encode()).hexdigest()


def row(i: int, *, bucket: str = BUCKET, prefix: str = "all/query_images/", md5: str | None = None) -> str:
    return f"Q{i:05d},s3://{bucket}/{prefix}Q{i:05d}.jpg,{md5 or md5_of(i)}"


def write(
    tmp_path: Path, lines: list[str], *, name: str = "q.csv", eol: str = "\n", bom: bool = False
) -> Path:
    path = tmp_path / name
    data = eol.join(lines) + eol
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode())
    return path


def good(n: int = 5) -> list[str]:
    return [HEADER] + [row(i) for i in range(n)]


def test_reads_a_valid_csv(tmp_path: Path) -> None:
    m = read_metadata(write(tmp_path, good(5)), "query")
    assert m.ids == ["Q00000", "Q00001", "Q00002", "Q00003", "Q00004"]
    assert m.table["relpath"].tolist()[0] == "Q00000.jpg"
    assert m.table["md5"].tolist()[3] == md5_of(3)
    assert m.prefix == "all/query_images/"
    assert m.bucket == BUCKET
    assert m.total_bytes is None  # the publisher ships no sizes


@pytest.mark.parametrize(
    ("eol", "bom"), [("\r\n", False), ("\n", True), ("\r\n", True)], ids=["crlf", "bom", "crlf+bom"]
)
def test_accepts_crlf_and_bom(tmp_path: Path, eol: str, bom: bool) -> None:
    assert len(read_metadata(write(tmp_path, good(3), eol=eol, bom=bom), "query")) == 3


def test_accepts_quotes_blank_lines_upper_case_md5_and_mirrors(tmp_path: Path) -> None:
    lines = [
        '"image_id","s3_uri","md5_checksum"',
        f'"Q00002","s3://{BUCKET}-eu/all/query_images/Q00002.jpg","{md5_of(2).upper()}"',
        "",
        row(0, bucket=BUCKET + "-asia"),
        "",
        row(1),
    ]
    m = read_metadata(write(tmp_path, lines), "query")
    assert m.ids == ["Q00000", "Q00001", "Q00002"]  # sorted
    assert m.table["md5"].tolist()[2] == md5_of(2)  # lower-cased


# (lines to write, expected line number, words the message must contain)
MALFORMED = {
    "wrong-header": ([("id,uri,md5"), row(0)], 1, "header"),
    "missing-column-header": (["image_id,s3_uri", row(0)], 1, "header"),
    "too-few-columns": ([HEADER, row(0), "Q00001,s3://x"], 3, "expected 3 columns"),
    "too-many-columns": ([HEADER, row(0) + ",extra"], 2, "expected 3 columns"),
    "short-md5": ([HEADER, row(0), row(1, md5="abc123")], 3, "32 hex"),
    "long-md5": ([HEADER, row(0, md5=md5_of(0) + "ff")], 2, "32 hex"),
    "non-hex-md5": ([HEADER, row(0), row(1), row(2, md5="z" * 32)], 4, "32 hex"),
    "empty-md5": ([HEADER, f"Q00000,s3://{BUCKET}/all/query_images/Q00000.jpg,"], 2, "32 hex"),
    "bad-id-format": ([HEADER, row(0), "Q1,s3://x/Q1.jpg," + md5_of(1)], 3, "not a query id"),
    "reference-id-in-query-set": (
        [HEADER, f"R000001,s3://{BUCKET}/all/query_images/R000001.jpg,{md5_of(1)}"],
        2,
        "not a query id",
    ),
    "phase2-id-in-query-set": ([HEADER, row(50_001)], 2, "outside the query set"),
    "other-bucket": ([HEADER, row(0), row(1, bucket="evil-bucket")], 3, "not below"),
    "other-prefix": ([HEADER, row(0, prefix="all/reference_images/")], 2, "not below"),
    "uri-disagrees-with-id": (
        [HEADER, f"Q00000,s3://{BUCKET}/all/query_images/Q00001.jpg,{md5_of(0)}"],
        2,
        "does not match image_id",
    ),
    "path-traversal-in-uri": (
        [HEADER, f"Q00000,s3://{BUCKET}/all/query_images/../../etc/Q00000.jpg,{md5_of(0)}"],
        2,
        "does not match image_id",
    ),
    "duplicate-id": ([HEADER, row(0), row(1), row(0)], 4, "duplicate"),
    "unclosed-quote": ([HEADER, row(0), '"Q00001,s3://x,' + md5_of(1)], 3, "column"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv_names_the_line(tmp_path: Path, case: str) -> None:
    lines, line, words = MALFORMED[case]
    path = write(tmp_path, lines)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputFileError) as info:
        read_metadata(path, "query")
    err = info.value
    assert err.path.endswith("q.csv")
    assert err.line == line, str(err)
    assert words in str(err)
    assert str(err).count("\n") == 0  # one line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_binary_garbage_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(HEADER.encode() + b"\n" + bytes(range(256)) * 4)
    with pytest.raises(InputFileError, match="NUL byte"):
        read_metadata(path, "query")


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(f"{HEADER}\n{row(0)}\nQ00001,s3://\xff\xfe,x\n".encode("latin-1"))
    with pytest.raises(InputFileError, match="UTF-8") as info:
        read_metadata(path, "query")
    assert info.value.line == 3


def test_reports_the_first_20_of_many_problems(tmp_path: Path) -> None:
    lines = [HEADER] + [row(i, md5="bad") for i in range(50)]
    with pytest.raises(InputFileError) as info:
        read_metadata(write(tmp_path, lines), "query")
    assert info.value.total == 50
    assert len(info.value.problems) == 20
    assert [p.line for p in info.value.problems] == list(range(2, 22))
    assert "+49 more problems" in str(info.value)


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_metadata(tmp_path / "nope.csv", "query")


def test_phase2_prefix_is_configurable(tmp_path: Path) -> None:
    lines = [HEADER, row(50_000, prefix="phase2/q/")]
    m = read_metadata(write(tmp_path, lines), "phase2", prefix="phase2/q")
    assert m.prefix == "phase2/q/"
    assert m.ids == ["Q50000"]


def test_pinned_form_is_canonical_and_round_trips(tmp_path: Path) -> None:
    a = read_metadata(write(tmp_path, good(4), name="a.csv"), "query")
    b = read_metadata(
        write(tmp_path, [HEADER] + [row(i) for i in (3, 1, 0, 2)], name="b.csv", eol="\r\n"), "query"
    )
    fa = write_pinned(a, tmp_path / "a.pinned")
    fb = write_pinned(b, tmp_path / "b.pinned")
    assert fa == fb
    assert (tmp_path / "a.pinned").read_bytes() == (tmp_path / "b.pinned").read_bytes()
    text = (tmp_path / "a.pinned").read_text()
    expected_rows = "".join(f"Q{i:05d},Q{i:05d}.jpg,{md5_of(i)},\n" for i in range(4))
    assert text.endswith("image_id,relpath,md5,size\n" + expected_rows)
    assert fa == "sha256:" + hashlib.sha256(expected_rows.encode()).hexdigest()
    back = load_pinned(tmp_path / "a.pinned")
    assert back.ids == a.ids
    assert back.fingerprint() == fa


def test_edited_pinned_manifest_is_rejected(tmp_path: Path) -> None:
    m = read_metadata(write(tmp_path, good(3)), "query")
    path = tmp_path / "m.pinned"
    write_pinned(m, path)
    path.write_text(path.read_text().replace(md5_of(1), md5_of(7)))
    with pytest.raises(InputFileError, match="fingerprint"):
        load_pinned(path)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("Q00001.jpg", "../../x.jpg", "unsafe"),
        ("Q00001.jpg", "/etc/passwd", "unsafe"),
        ("Q00001.jpg", "a\\\\b.jpg", "unsafe"),
        ("# set: query", "# set: movies", "unknown set"),
        ("# isc-kit pinned manifest v1", "hello", "not a pinned manifest"),
    ],
)
def test_hostile_pinned_manifest_is_rejected(tmp_path: Path, old: str, new: str, words: str) -> None:
    m = read_metadata(write(tmp_path, good(3)), "query")
    path = tmp_path / "m.pinned"
    write_pinned(m, path)
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(InputFileError, match=words):
        load_pinned(path)


def test_manifest_from_listing_uses_single_part_etags(make_bucket, s3_env: str) -> None:
    body = b"not really a jpeg"
    bucket = make_bucket(
        {
            "all/query_images/Q00001.jpg": body,
            "all/query_images/Q00002.jpg": body * 2,
            "all/query_images/notes.txt": b"ignored",
        }
    )
    m = manifest_from_listing(resolve_source(bucket=bucket), "query")
    assert m.ids == ["Q00001", "Q00002"]
    assert m.table["md5"].tolist() == [hashlib.md5(body).hexdigest(), hashlib.md5(body * 2).hexdigest()]
    assert m.table["size"].tolist() == [len(body), 2 * len(body)]


def test_multipart_etag_is_not_an_md5(boto_client, make_bucket, s3_env: str) -> None:
    bucket = make_bucket({})
    key = "all/query_images/Q00003.jpg"
    up = boto_client.create_multipart_upload(Bucket=bucket, Key=key, ACL="public-read")
    part = boto_client.upload_part(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100
    )
    boto_client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    m = manifest_from_listing(resolve_source(bucket=bucket), "query")
    assert m.ids == ["Q00003"]
    assert m.table["md5"].isna().all()
    assert m.md5_known == 0
