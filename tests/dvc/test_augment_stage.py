"""The real dvc.yaml's augment@training stage under real DVC: re-runs when the seed changes, not otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_pin import DVC, GIT_ID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "augment"))
from test_augment import make_selection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.dvc]


def sh(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(DVC).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_augment_stage_reruns_only_on_its_params(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    pinned, _images = make_selection(repo, n=4)
    (repo / "manifests").mkdir()
    pinned.rename(repo / "manifests" / "training.pinned")
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["augment"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"augment": stage}}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = {"augment": params["augment"], "unrelated": {"value": 1}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    sh(["git", "init", "-q"], repo)
    sh([DVC, "init", "-q"], repo)

    first = sh([DVC, "repro"], repo)
    assert "Running stage 'augment@training'" in first
    pairs = (repo / "augmented" / "training.pairs.csv").read_text().splitlines()
    assert pairs[0] == "augmented_id,source_id,transforms"
    assert len(pairs) == 1 + 4 * params["augment"]["copies"]
    before = (repo / "augmented" / "training.pinned").read_bytes()

    params["unrelated"]["value"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert "Running stage" not in sh([DVC, "repro"], repo)
    assert json.loads(sh([DVC, "status", "--json"], repo)) == {}

    params["augment"]["seed"] = 7
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert "augment@training" in sh([DVC, "status", "--json"], repo)
    assert "Running stage 'augment@training'" in sh([DVC, "repro"], repo)
    assert (repo / "augmented" / "training.pinned").read_bytes() != before

    params["augment"]["seed"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    sh([DVC, "repro"], repo)
    assert (repo / "augmented" / "training.pinned").read_bytes() == before
