"""``isc-kit eval`` and ``isc-kit baseline`` end to end, through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isc_kit.cli.main import main

GT = "query_id,reference_id\nQ00001,R000001\nQ00002,R000002\nQ00003,\nQ00004,R000004\n"
# sorted: TP Q1 (.9), FP Q3 (.8), TP Q2 (.7), TP Q4 (.6); 3 pairs
PRED = (
    "query_id,reference_id,score\n"
    "Q00001,R000001,0.9\nQ00003,R000001,0.8\nQ00002,R000002,0.7\nQ00004,R000004,0.6\nQ09999,R000001,1.0\n"
)
MUAP = (1 / 3) * 1 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 4)  # Q09999 left out (--restrict-to-ground-truth)
# official rules: Q09999 (1.0, not in the ground truth) is a false positive ranked first
MUAP_OFFICIAL = (1 / 3) * (1 / 2) + (1 / 3) * (2 / 4) + (1 / 3) * (3 / 5)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt.csv", tmp_path / "pred.csv"
    gt.write_text(GT)
    pred.write_text(PRED)
    return pred, gt


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_json(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pred, gt = files
    out = run_json(capsys, "eval", str(pred), "--ground-truth", str(gt), "--restrict-to-ground-truth")
    assert out["muap"] == pytest.approx(MUAP)
    assert out["n_dropped"] == 1
    assert out["n_predictions"] == 4
    assert out["n_gt_pairs"] == 3
    assert out["recall_at_p90"] == pytest.approx(1 / 3)
    assert out["threshold_at_p90"] == 0.9


def test_eval_json_official_rules_by_default(files: tuple[Path, Path], capsys) -> None:
    pred, gt = files
    out = run_json(capsys, "eval", str(pred), "--ground-truth", str(gt))
    assert out["muap"] == pytest.approx(MUAP_OFFICIAL)
    assert (out["n_dropped"], out["n_predictions"], out["n_outside_ground_truth"]) == (0, 5, 1)
    assert out["recall_at_p90"] is None  # the first prediction is wrong: precision never reaches 0.9


def test_eval_refuses_too_many_predictions(files: tuple[Path, Path], capsys) -> None:
    pred, gt = files
    assert main(["eval", str(pred), "--ground-truth", str(gt), "--max-predictions", "4"]) == 3
    err = capsys.readouterr().err
    assert f"{pred}: file: 5 predictions, more than the 4 allowed" in err
    assert "--cap top" in err
    assert "Traceback" not in err


def test_eval_plain(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pred, gt = files
    argv = ["eval", str(pred), "--ground-truth", str(gt), "--max-predictions", "2", "--cap", "top"]
    assert main([*argv, "--restrict-to-ground-truth"]) == 0
    out = capsys.readouterr().out
    assert "µAP               0.3333" in out  # TP, FP kept: 1/3 * 1
    assert "2 beyond the maximum" in out
    assert "1 for queries not selected or not in the ground truth" in out


def test_eval_bad_file_is_one_clear_error(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pred, gt = files
    pred.write_text(PRED + "Q00001,R000001,0.1\n")
    assert main(["eval", str(pred), "--ground-truth", str(gt)]) == 3
    err = capsys.readouterr().err
    assert f"{pred}: line 7: duplicate prediction (first on line 2)" in err
    assert "Traceback" not in err


def test_eval_negative_max_is_a_config_error(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pred, gt = files
    assert main(["eval", str(pred), "--ground-truth", str(gt), "--max-predictions", "-1"]) == 2
    assert "--max-predictions" in capsys.readouterr().err


def pin(tmp_path: Path, set_name: str, ids: list[str]) -> Path:
    from isc_kit.metadata import read_metadata
    from isc_kit.pinned import write_pinned

    prefix = {
        "query": "all/query_images/",
        "reference": "all/reference_images/",
        "training": "all/training_images/",
    }
    csv = tmp_path / f"{set_name}_metadata.csv"
    csv.write_text(
        "image_id,s3_uri,md5_checksum\n"
        + "".join(
            f"{i},s3://drivendata-competition-fb-isc-data/{prefix[set_name]}{i}.jpg,{'0' * 32}\n" for i in ids
        )
    )
    out = tmp_path / f"{set_name}.pinned.csv"
    write_pinned(read_metadata(csv, set_name), out)
    return out


def test_eval_on_a_selection(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("isc_kit.manifest")
    pred, gt = files
    queries = pin(tmp_path, "query", ["Q00001", "Q00003", "Q00004"])
    refs = pin(tmp_path, "reference", ["R000001", "R000002"])
    out = run_json(
        capsys,
        "eval",
        str(pred),
        "--ground-truth",
        str(gt),
        "--selection",
        str(queries),
        "--selection",
        str(refs),
    )
    # left: pair Q1-R1 only (Q2 not selected, Q4's reference not selected -> distractor);
    # scored: TP Q1 (.9), FP Q3 (.8); Q4-R4 dropped (reference), Q2 and Q9999 dropped (query)
    assert out["n_gt_pairs"] == 1
    assert out["muap"] == 1.0
    assert (out["n_dropped"], out["n_dropped_reference"], out["n_predictions"]) == (2, 1, 2)
    assert out["selection"]["pairs_after"] == 1
    assert out["selection"]["new_distractors"] == 1


def test_eval_rejects_a_training_selection(files: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    pytest.importorskip("isc_kit.manifest")
    pred, gt = files
    training = pin(tmp_path, "training", ["T000001"])
    assert main(["eval", str(pred), "--ground-truth", str(gt), "--selection", str(training)]) == 2
    assert "query or reference manifests" in capsys.readouterr().err


@pytest.mark.slow
def test_baseline_beats_random_on_the_tiny_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = pytest.importorskip("isc_kit.fixture")
    root = fixture.materialize("tiny", seed=0, cache_dir=tmp_path / "cache")
    pred = tmp_path / "pred.csv"
    gt_path = root / "metadata" / "public_ground_truth.csv"
    made = run_json(
        capsys,
        "baseline",
        str(root / "all/query_images"),
        str(root / "all/reference_images"),
        "-o",
        str(pred),
        "--descriptors-out",
        str(tmp_path / "q.h5"),
        str(tmp_path / "r.h5"),
    )
    scored = run_json(capsys, "eval", str(pred), "--ground-truth", str(gt_path))
    track2 = run_json(
        capsys,
        "eval",
        "--descriptors",
        str(tmp_path / "q.h5"),
        str(tmp_path / "r.h5"),
        "--ground-truth",
        str(gt_path),
    )
    n_queries = made["n_queries"]
    n_refs = made["n_references"]
    n_pairs = sum(1 for line in gt_path.read_text().splitlines()[1:] if not line.endswith(","))
    # A random ranking of all query/reference pairs has µAP about its prevalence of true pairs.
    random_muap = n_pairs / (n_queries * n_refs)
    assert n_pairs > 0
    assert scored["muap"] > 20 * random_muap
    assert scored["recall_at_rank10"] >= 0.5
    assert track2["muap"] > 20 * random_muap  # the same baseline's vectors on the descriptor track
    assert (track2["n_query_descriptors"], track2["n_reference_descriptors"]) == (n_queries, n_refs)
