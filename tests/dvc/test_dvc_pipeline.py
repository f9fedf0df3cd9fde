"""The real dvc.yaml on the tiny fixture: `dvc repro`, no-op rerun, push/pull between two clones, rebuild, pattern change."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_pin import DVC, GIT_ID

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "drivendata-competition-fb-isc-data"
META = f"s3://{BUCKET}/metadata"
PARAMS = {
    "source": {"bucket": BUCKET, "region": "us-west", "endpoint_url": None, "anon": True},
    "phase": 1,
    "phase2": {
        "metadata": f"{META}/query_images_phase2_metadata.csv",
        "ground_truth": f"{META}/final_ground_truth.csv",
    },
    "ground_truth": {"file": f"{META}/public_ground_truth.csv", "queries": 8, "distractors": 5, "seed": 0},
    "sets": {
        "query": {"metadata": f"{META}/query_images_metadata.csv", "ground_truth": True},
        "reference": {"metadata": f"{META}/reference_images_metadata.csv", "ground_truth": True},
        "training": {
            "metadata": f"{META}/training_images_metadata.csv",
            "filters": [{"exclude": "*"}, {"include": "T00000*"}],
        },
    },
    "augment": {
        "sets": ["training"],
        "copies": 1,
        "seed": 0,
        "transforms": [{"name": "rotate", "degrees": [-10, 10]}],
    },
}

pytestmark = [pytest.mark.dvc, pytest.mark.slow]


def sh(cmd: list[str], cwd: Path, endpoint: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ID, "ISC_KIT_ENDPOINT_URL": endpoint, "DVC_NO_ANALYTICS": "1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "PATH": f"{Path(DVC).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def md5_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}  # fmt: skip


def status_clean(repo: Path, endpoint: str) -> bool:
    return json.loads(sh([DVC, "status", "--json"], repo, endpoint).stdout) == {}


@pytest.fixture(scope="module")
def repo_a(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Path:
    """A project with the real dvc.yaml, tiny params, after one `dvc repro`, committed."""
    repo = tmp_path_factory.mktemp("pipeline") / "a"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    (repo / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (repo / ".gitignore").write_text(".isc-kit/\n")
    sh(["git", "init", "-q"], repo, s3_endpoint)
    sh([DVC, "init", "-q"], repo, s3_endpoint)
    sh([DVC, "repro"], repo, s3_endpoint)
    sh(["git", "add", "-A"], repo, s3_endpoint)
    sh(["git", "commit", "-qm", "repro"], repo, s3_endpoint)
    return repo


def test_repro_selects_verifies_and_reports(repo_a: Path, s3_endpoint: str, tiny_root: Path) -> None:
    gt = list(csv.DictReader((tiny_root / "metadata/public_ground_truth.csv").open()))
    queries = sorted(p.stem for p in (repo_a / "data/query").iterdir())
    assert len(queries) == 8
    matched = {r["reference_id"] for r in gt if r["query_id"] in queries and r["reference_id"]}
    refs = {p.stem for p in (repo_a / "data/reference").iterdir()}
    assert matched <= refs, "sampled queries keep their matching references"
    all_matched = {r["reference_id"] for r in gt if r["reference_id"]}
    assert len(refs - all_matched) == 5, "plus 5 distractor references"
    assert sorted(p.name for p in (repo_a / "data/training").iterdir()) == [
        f"T00000{i}.jpg" for i in range(10)
    ]
    for name, prefix in (
        ("query", "query_images"),
        ("reference", "reference_images"),
        ("training", "training_images"),
    ):
        for rel, md5 in md5_tree(repo_a / "data" / name).items():
            assert md5 == hashlib.md5((tiny_root / "all" / prefix / rel).read_bytes()).hexdigest()
    metrics = json.loads(sh([DVC, "metrics", "show", "--json"], repo_a, s3_endpoint).stdout)
    shown = next(iter(metrics.values()))["data"]
    training = shown["metrics/training.json"]["data"]
    size = sum((tiny_root / "all/training_images" / f"T00000{i}.jpg").stat().st_size for i in range(10))
    assert training == {"files": 10, "bytes": size, "verified": 10, "verified_share": 1.0}
    scores = shown["metrics/eval.json"]["data"]  # the eval stage reports both tracks
    assert 0.0 <= scores["muap"] <= 1.0
    assert 0.0 <= scores["descriptors"]["muap"] <= 1.0
    assert status_clean(repo_a, s3_endpoint)


def test_noop_repro_does_nothing(repo_a: Path, s3_endpoint: str) -> None:
    lock = (repo_a / "dvc.lock").read_bytes()
    out = sh([DVC, "repro"], repo_a, s3_endpoint).stdout
    assert "Running stage" not in out
    assert (repo_a / "dvc.lock").read_bytes() == lock


def test_two_clones_push_pull_and_rebuild(
    repo_a: Path, s3_endpoint: str, make_bucket, tmp_path: Path
) -> None:
    team = make_bucket({})
    sh([DVC, "remote", "add", "-d", "team", f"s3://{team}/dvcstore"], repo_a, s3_endpoint)
    sh([DVC, "remote", "modify", "team", "endpointurl", s3_endpoint], repo_a, s3_endpoint)
    sh(["git", "commit", "-qam", "team remote"], repo_a, s3_endpoint)
    sh([DVC, "push"], repo_a, s3_endpoint)

    b = tmp_path / "b"
    sh(["git", "clone", "-q", str(repo_a), str(b)], tmp_path, s3_endpoint)
    sh([DVC, "pull"], b, s3_endpoint)
    for name in ("query", "reference", "training"):
        assert md5_tree(b / "data" / name) == md5_tree(repo_a / "data" / name)
    assert status_clean(b, s3_endpoint)

    c = tmp_path / "c"
    sh(["git", "clone", "-q", str(repo_a), str(c)], tmp_path, s3_endpoint)
    sh([DVC, "repro", "--force"], c, s3_endpoint)  # rebuild everything from the public bucket
    assert (c / "dvc.lock").read_bytes() == (repo_a / "dvc.lock").read_bytes()
    assert sh(["git", "status", "--porcelain"], c, s3_endpoint).stdout == ""


def test_pattern_change_reruns_only_that_set(repo_a: Path, s3_endpoint: str) -> None:
    params = yaml.safe_load((repo_a / "params.yaml").read_text())
    params["sets"]["training"]["filters"][1]["include"] = "T00001*"
    (repo_a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh([DVC, "repro"], repo_a, s3_endpoint).stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == [
        "augment@training",
        "fetch@training",
        "manifest@training",
    ]  # the copies follow their sources
    assert sorted(p.name for p in (repo_a / "data/training").iterdir()) == [
        f"T00001{i}.jpg" for i in range(10)
    ]
    assert status_clean(repo_a, s3_endpoint)
    diff = sh(["git", "diff", "--unified=0", "manifests/training.pinned"], repo_a, s3_endpoint).stdout
    removed = [ln for ln in diff.splitlines() if ln.startswith("-T")]
    added = [ln for ln in diff.splitlines() if ln.startswith("+T")]
    assert [ln[1:8] for ln in removed] == [f"T00000{i}" for i in range(10)]
    assert [ln[1:8] for ln in added] == [f"T00001{i}" for i in range(10)]
