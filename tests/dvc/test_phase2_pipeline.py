"""Phase 2 end to end with the real dvc.yaml on the tiny fixture: `phase: 2`, `dvc repro`, eval, and back."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_dvc_pipeline import META, PARAMS, sh, status_clean
from test_pin import DVC

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.dvc, pytest.mark.slow]


def _params(phase: int) -> dict:
    params = json.loads(json.dumps(PARAMS))  # a deep copy
    params["phase"] = phase
    params["ground_truth"]["queries"] = 10  # every tiny Phase-2 query (and 10 of the 20 Phase-1 ones)
    params["sets"] = {k: v for k, v in params["sets"].items() if k in ("query", "reference")}
    params.setdefault("augment", {})["sets"] = []  # no training set here, so nothing to augment
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Path:
    repo = tmp_path_factory.mktemp("phase2") / "p"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    (repo / "params.yaml").write_text(yaml.safe_dump(_params(2), sort_keys=False))
    (repo / ".gitignore").write_text(".isc-kit/\n")
    sh(["git", "init", "-q"], repo, s3_endpoint)
    sh([DVC, "init", "-q"], repo, s3_endpoint)
    sh([DVC, "repro"], repo, s3_endpoint)
    return repo


def test_phase2_repro_fetches_phase2_queries_and_scores_them_against_the_final_ground_truth(
    repo: Path, s3_endpoint: str, tiny_root: Path
) -> None:
    gt = list(csv.DictReader((tiny_root / "metadata/final_ground_truth.csv").open()))
    queries = sorted(p.stem for p in (repo / "data/query").iterdir())
    assert queries == [f"Q{n:05d}" for n in range(50_000, 50_010)]
    for p in (repo / "data/query").iterdir():
        expected = (tiny_root / "all/query_images_phase2" / p.name).read_bytes()
        assert hashlib.md5(p.read_bytes()).digest() == hashlib.md5(expected).digest()
    matched = {r["reference_id"] for r in gt if r["reference_id"]}
    assert matched, "the tiny Phase-2 set has copies"
    assert matched <= {p.stem for p in (repo / "data/reference").iterdir()}, "their references come along"
    pinned = (repo / "manifests/query.pinned").read_text()
    assert "# set: phase2" in pinned
    assert "# prefix: all/query_images_phase2/" in pinned
    scores = json.loads((repo / "metrics/eval.json").read_text())
    assert scores["phase"] == 2
    assert scores["gt_pairs"] == len(matched)
    assert scores["queries"] == 10
    assert scores["muap"] > scores["muap_random"], "the baseline finds Phase-2 copies"
    assert status_clean(repo, s3_endpoint)


def test_cli_eval_phase2_agrees_with_the_stage_and_refuses_the_wrong_phase(
    repo: Path, s3_endpoint: str
) -> None:
    base = ["isc-kit", "-q", "eval", "predictions/baseline.csv", "--selection", "manifests/query.pinned",
            "--selection", "manifests/reference.pinned", "--json"]  # fmt: skip
    out = json.loads(sh([*base, "--phase", "2"], repo, s3_endpoint).stdout)  # ground truth from the catalog
    assert out["phase"] == 2
    assert out["ground_truth"] == f"{META}/final_ground_truth.csv"
    assert round(out["muap"], 4) == json.loads((repo / "metrics/eval.json").read_text())["muap"]
    wrong = sh([*base, "--phase", "1"], repo, s3_endpoint, check=False)
    assert wrong.returncode == 2
    assert wrong.stdout == ""
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "manifests/query.pinned" in lines[0]
    assert "are not Phase-1 queries" in lines[0]
    wrong_gt = sh([*base, "--phase", "2", "--ground-truth", f"{META}/public_ground_truth.csv"], repo, s3_endpoint,
                  check=False)  # fmt: skip
    assert wrong_gt.returncode == 2
    assert len(wrong_gt.stderr.strip().splitlines()) == 1
    assert "are Phase-1 queries, not Phase 2" in wrong_gt.stderr
    assert "final_ground_truth.csv" in wrong_gt.stderr
    missing = sh([*base, "--phase", "2", "--ground-truth", "s3://drivendata-competition-fb-isc-data/metadata/nope.csv"],
                 repo, s3_endpoint, check=False)  # fmt: skip
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "nope.csv" in missing.stderr
    bad = sh([*base, "--phase", "3"], repo, s3_endpoint, check=False)
    assert bad.returncode == 2
    assert "unknown phase '3'" in bad.stderr


def test_switching_back_to_phase1_is_one_value(repo: Path, s3_endpoint: str) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(_params(1), sort_keys=False))
    assert not status_clean(repo, s3_endpoint)
    sh([DVC, "repro"], repo, s3_endpoint)
    queries = sorted(p.stem for p in (repo / "data/query").iterdir())
    assert len(queries) == 10
    assert all(q < "Q50000" for q in queries)
    assert json.loads((repo / "metrics/eval.json").read_text())["phase"] == 1
    assert status_clean(repo, s3_endpoint)


def test_phase2_without_its_metadata_is_one_line_and_runs_nothing(repo: Path, s3_endpoint: str) -> None:
    params = _params(2)
    del params["phase2"]["metadata"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = (repo / "manifests/query.pinned").read_bytes()
    proc = sh(
        ["isc-kit", "stage", "manifest", "query", "-o", "manifests/query.pinned"],
        repo,
        s3_endpoint,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "phase: 2 needs phase2.metadata" in proc.stderr
    assert (repo / "manifests/query.pinned").read_bytes() == before
