"""Ground truth: reading both file forms, rejecting broken ones with line numbers, and subsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from isc_kit.errors import InputFileError
from isc_kit.groundtruth import GroundTruth, load_ground_truth, restrict


def write(tmp_path: Path, text: str | bytes, name: str = "gt.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


PUBLIC = "query_id,reference_id\nQ00000,R000003\nQ00001,\nQ00002,R123456\nQ00003,\n"


def test_public_form_with_distractors(tmp_path: Path) -> None:
    gt = load_ground_truth(write(tmp_path, PUBLIC))
    assert gt.pairs == {("Q00000", "R000003"), ("Q00002", "R123456")}
    assert gt.queries == {"Q00000", "Q00001", "Q00002", "Q00003"}
    assert gt.distractors == {"Q00001", "Q00003"}
    assert gt.n_pairs == 2
    assert gt.references is None


def test_headerless_bom_and_crlf(tmp_path: Path) -> None:
    data = "\ufeffQ00000,R000003\r\nQ00001,\r\n\r\nQ50000,R999999\r\n".encode()
    gt = load_ground_truth(write(tmp_path, data))
    assert gt.pairs == {("Q00000", "R000003"), ("Q50000", "R999999")}
    assert gt.queries == {"Q00000", "Q00001", "Q50000"}


def test_header_with_bom_and_crlf(tmp_path: Path) -> None:
    gt = load_ground_truth(write(tmp_path, ("\ufeff" + PUBLIC.replace("\n", "\r\n")).encode()))
    assert gt.n_pairs == 2
    assert len(gt.queries) == 4


def test_query_with_two_references_is_two_pairs(tmp_path: Path) -> None:
    gt = load_ground_truth(write(tmp_path, "query_id,reference_id\nQ00000,R000001\nQ00000,R000002\n"))
    assert gt.pairs == {("Q00000", "R000001"), ("Q00000", "R000002")}
    assert gt.queries == {"Q00000"}


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("query_id,reference_id\nQ0000,R000003\n", 2, "query_id", "not a query id"),
        ("query_id,reference_id\nQ00000,R00003\n", 2, "reference_id", "not a reference id"),
        ("query_id,reference_id\nQ00000,T000003\n", 2, "reference_id", "not a reference id"),
        ("query_id,reference_id\nQ00000,R000003,0.5\n", 2, "", "expected 2 columns"),
        ("query_id,reference_id\nQ00000\n", 2, "", "expected 2 columns"),
        (
            "query_id,reference_id\nQ00000,R000003\nQ00001,\nQ00000,R000003\n",
            4,
            "",
            "duplicate row (first on line 2)",
        ),
        ("query_id,reference_id\nQ00001,\nQ00001,\n", 3, "query_id", "distractor repeated"),
        ("query_id,reference_id\nQ00001,\nQ00001,R000001\n", 2, "query_id", "matched on line 3"),
        ("query,reference\nQ00001,R000001\n", 1, "", "unexpected header"),
        ("query_id,reference_id,score\nQ00001,R000001,1.0\n", 1, "", "predictions file"),
    ],
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, text: str, line: int, column: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputFileError) as info:
        load_ground_truth(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    assert err.problems[0].column == column
    assert fragment in str(err)
    assert str(path) in str(err)


def test_many_problems_are_counted_and_capped(tmp_path: Path) -> None:
    text = "query_id,reference_id\n" + "".join(f"X{i},R000001\n" for i in range(30))
    with pytest.raises(InputFileError) as info:
        load_ground_truth(write(tmp_path, text))
    assert info.value.total == 30
    assert len(info.value.problems) == 20
    assert [p.line for p in info.value.problems[:3]] == [2, 3, 4]


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no ground-truth rows"):
        load_ground_truth(write(tmp_path, "query_id,reference_id\n"))
    with pytest.raises(InputFileError, match="no such file"):
        load_ground_truth(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="UTF-16 text"):
        load_ground_truth(write(tmp_path, b"\xff\xfe\x00Q\x00", "bin.csv"))
    with pytest.raises(InputFileError, match="not UTF-8"):
        load_ground_truth(write(tmp_path, b"query_id,reference_id\nQ\xc3\x28,\n", "latin.csv"))


def test_restrict_queries_and_references() -> None:
    gt = GroundTruth.from_pairs(
        [("Q00000", "R000000"), ("Q00001", "R000001"), ("Q00002", "R000002")], distractors=["Q00009"]
    )
    sub, report = restrict(gt, ["Q00000", "Q00001", "Q00009", "Q04444"], ["R000000", "R000002"])
    assert sub.pairs == {("Q00000", "R000000")}
    # Q00001 stays, now a distractor: its copy is not in the selected references.
    assert sub.queries == {"Q00000", "Q00001", "Q00009"}
    assert sub.distractors == {"Q00001", "Q00009"}
    assert sub.references == {"R000000", "R000002"}
    assert (report.pairs_before, report.pairs_after) == (3, 1)
    assert (report.pairs_dropped_query, report.pairs_dropped_reference) == (1, 1)
    assert (report.queries_before, report.queries_after, report.new_distractors) == (4, 3, 1)
    assert "1 of 3 ground-truth pairs kept" in report.summary()


def test_restrict_none_keeps_everything() -> None:
    gt = GroundTruth.from_pairs([("Q00000", "R000000")], distractors=["Q00001"])
    sub, report = restrict(gt)
    assert sub == gt
    assert report.pairs_after == 1
    assert report.queries_after == 2


def test_restrict_twice_intersects_references() -> None:
    gt = GroundTruth.from_pairs([("Q00000", "R000000"), ("Q00001", "R000001")])
    once, _ = restrict(gt, reference_ids=["R000000", "R000001"])
    twice, _ = restrict(once, reference_ids=["R000001", "R000005"])
    assert twice.references == {"R000001"}
    assert twice.pairs == {("Q00001", "R000001")}


def test_large_file_loads(tmp_path: Path) -> None:
    rows = "".join(f"Q{i:05d},{f'R{i * 7:06d}' if i % 5 == 0 else ''}\n" for i in range(50_000))
    gt = load_ground_truth(write(tmp_path, "query_id,reference_id\n" + rows))
    assert gt.n_pairs == 10_000
    assert len(gt.queries) == 50_000
