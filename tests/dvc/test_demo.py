"""`isc-kit demo` on a fresh project copy: dvc repro against its own embedded S3, status clean, second run a no-op."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_pin import GIT_ID, make_repo

from isc_kit import fixture

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.dvc
@pytest.mark.slow
def test_demo_runs_then_is_a_noop(tmp_path: Path) -> None:
    project = make_repo(tmp_path / "p")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, project / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISC_KIT_")}
    env.update(GIT_ID)
    cmd = [sys.executable, "-m", "isc_kit", "demo", "--scale", "tiny", "--project", str(project)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "dvc status: clean" in first.stdout
    rows = {line.split()[0]: line.split() for line in first.stdout.splitlines() if line[:1].isalpha()}
    assert rows["training"][1] == "20", "tiny has 20 training images, all match T000*"
    assert rows["query"][-1] != "up to date"
    scores = json.loads((project / "metrics" / "eval.json").read_text())
    pairs = sum(1 for q, r in fixture.ground_truth("tiny") if r)  # every tiny query is selected
    assert scores["gt_pairs"] == pairs
    assert scores["muap"] > 10 * scores["muap_random"], scores  # the baseline clearly beats chance
    assert scores["descriptors"]["muap"] > 10 * scores["muap_random"], scores  # the descriptor track too
    assert f"µAP {scores['muap']:.3f}" in first.stdout
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Running stage" not in second.stderr
    assert all(rows_line.endswith("up to date") for rows_line in second.stdout.splitlines()[2:5])
    assert "dvc status: clean" in second.stdout
