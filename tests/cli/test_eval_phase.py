"""Phase switches given badly: one clear line, an exit code, nothing written (CLI and params.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from isc_kit.cli.main import main
from isc_kit.errors import ConfigError
from isc_kit.pipeline import read_params, set_spec

PHASE2_GT = "query_id,reference_id\nQ50001,R000001\nQ50002,\n"
PHASE2_PRED = "query_id,reference_id,score\nQ50001,R000001,0.9\nQ50002,R000003,0.2\n"
META = "s3://drivendata-competition-fb-isc-data/metadata"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.strip().splitlines() if line]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_eval_phase2_with_its_ground_truth_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gt.csv").write_text(PHASE2_GT)
    (tmp_path / "pred.csv").write_text(PHASE2_PRED)
    argv = ["-q", "eval", str(tmp_path / "pred.csv"), "--ground-truth", str(tmp_path / "gt.csv")]
    assert main([*argv, "--phase", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["phase"] == 2
    assert out["muap"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--phase", "3"], "unknown phase '3'"),
        (["--phase", "1"], "Phase-2 queries, not Phase 1"),  # a Phase-2 ground truth, scored as Phase 1
        ([], None),  # no --phase: scored as before
    ],
)
def test_eval_phase_mistakes_are_one_line(
    extra: list[str], expected: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gt.csv").write_text(PHASE2_GT)
    (tmp_path / "pred.csv").write_text(PHASE2_PRED)
    code = main(
        ["-q", "eval", str(tmp_path / "pred.csv"), "--ground-truth", str(tmp_path / "gt.csv"), *extra]
    )
    if expected is None:
        assert code == 0
        return
    assert code == 2
    assert expected in _one_error_line(capsys)


def test_eval_without_any_ground_truth_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pred.csv").write_text(PHASE2_PRED)
    assert main(["-q", "eval", str(tmp_path / "pred.csv")]) == 2
    assert "--ground-truth GT" in _one_error_line(capsys)


def test_eval_phase2_with_a_missing_ground_truth_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pred.csv").write_text(PHASE2_PRED)
    monkeypatch.setenv("ISC_KIT_PHASE2_GROUND_TRUTH", str(tmp_path / "final_ground_truth.csv"))  # not there
    code = main(["-q", "eval", str(tmp_path / "pred.csv"), "--phase", "2"])
    assert code != 0
    assert "final_ground_truth.csv" in _one_error_line(capsys)


def _params(tmp_path: Path, **top: object) -> Path:
    data = {
        "ground_truth": {"file": f"{META}/public_ground_truth.csv", "queries": 5},
        "sets": {
            "query": {"metadata": f"{META}/query_images_metadata.csv", "ground_truth": True, "sample": 3},
            "reference": {"metadata": f"{META}/reference_images_metadata.csv", "ground_truth": True},
        },
        **top,
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ({"phase": 3}, "phase: unknown phase 3"),
        ({"phase": "two"}, "phase: unknown phase 'two'"),
        ({"phase": 2}, "phase: 2 needs phase2.metadata"),
        ({"phase": 2, "phase2": {"metadata": 5}}, "phase2.metadata must be text"),
        ({"phase": 2, "phase2": {"meta": "x.csv"}}, "phase2 must be a mapping with keys"),
    ],
)
def test_bad_phase_params_are_one_line_naming_the_key(tmp_path: Path, top: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_params(_params(tmp_path, **top))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_phase2_params_make_the_query_stage_select_phase2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ISC_KIT_PHASE2_GROUND_TRUTH", raising=False)
    p2 = {"metadata": "p2.csv", "prefix": "final/queries"}
    params = read_params(_params(tmp_path, phase=2, phase2=p2))
    query, reference = set_spec(params, "query"), set_spec(params, "reference")
    assert (query.set_name, query.metadata, query.prefix) == ("phase2", "p2.csv", "final/queries")
    assert query.selection.sample == 3  # sets.query's selection keys apply to the phase's queries
    assert query.ground_truth.file == f"{META}/final_ground_truth.csv"  # the catalog's default
    assert reference.ground_truth.file == query.ground_truth.file
    monkeypatch.setenv("ISC_KIT_PHASE2_GROUND_TRUTH", "/data/final_ground_truth.csv")
    assert set_spec(read_params(_params(tmp_path, phase=2, phase2=p2)), "query").ground_truth.file == (
        "/data/final_ground_truth.csv"
    )
    phase1 = read_params(_params(tmp_path))
    assert phase1.phase.number == 1
    assert set_spec(phase1, "query").set_name == "query"
