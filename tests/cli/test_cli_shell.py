"""The CLI shell: --version, typo hints, hidden internals, examples in --help, completion, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from isc_kit.cli._parser import COMMANDS, HIDDEN, PUBLIC

BIN = Path(sys.executable).parent


def isc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isc_kit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    run = isc("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == "isc-kit 0.1.0"


@pytest.mark.parametrize(("typo", "meant"), [("fech", "fetch"), ("verfy", "verify"), ("catlog", "catalog")])
def test_a_typo_suggests_the_command(typo: str, meant: str) -> None:
    run = isc(typo, "x")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"isc-kit: error: unknown command {typo!r}; did you mean `{meant}`? (see isc-kit --help)"
    ]


def test_stage_is_hidden_from_help_but_still_runs() -> None:
    top = isc("--help").stdout
    assert "stage" not in top
    for name in PUBLIC:
        assert f"    {name} " in top
    run = isc("stage", "--help")
    assert run.returncode == 0
    assert "dvc.yaml" in run.stdout


@pytest.mark.parametrize("name", [c for c in COMMANDS if c not in HIDDEN])
def test_every_command_help_has_an_example(name: str) -> None:
    run = isc(name, "--help")
    assert run.returncode == 0, run.stderr
    examples = run.stdout.split("examples:\n", 1)[1]
    assert examples.lstrip().startswith("isc-kit ") or "isc-kit " in examples.splitlines()[0]


def test_s3_serve_help_describes_the_scales() -> None:
    out = isc("s3", "serve", "--help").stdout
    assert "demo   250 queries, 1,000 references, 1,000 training" in out
    assert "tiny   20 queries, 40 references" in out


def test_a_bad_metadata_file_is_one_line_and_minus_v_lists_the_problems(tmp_path: Path) -> None:
    from isc_kit.fixture import materialize

    csv = materialize("tiny") / "metadata/query_images_metadata.csv"  # a query CSV given for references
    run = isc("ls", "reference", "--metadata", str(csv))
    assert run.returncode == 3
    assert len(run.stderr.splitlines()) == 1, run.stderr
    line = run.stderr.strip()
    assert line.startswith("isc-kit ls: error: ")
    assert "line 2, column image_id: not a reference id" in line
    assert "(+39 more problems)" in line
    assert line.endswith("(-v lists the first 20)")
    verbose = isc("-v", "ls", "reference", "--metadata", str(csv)).stderr
    assert "40 problem(s), first 20 shown:" in verbose
    assert "line 11, column s3_uri" in verbose


def _candidates(words: str, cword: int) -> list[str]:
    run = isc(env={"ISC_KIT_COMPLETE": "1", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_completion_candidates() -> None:
    assert _candidates("isc-kit fe", 1) == ["fetch"]
    assert "stage" not in _candidates("isc-kit ", 1)
    assert _candidates("isc-kit fetch --re", 2) == ["--region", "--retries", "--require-md5", "--rehash"]
    assert _candidates("isc-kit s3 ", 2) == ["serve"]
    assert _candidates("isc-kit s3 serve --scale d", 4) == ["demo"]
    assert _candidates("isc-kit fetch --region ", 3) == ["us-west", "eu", "asia", "auto"]
    assert _candidates("isc-kit completion ", 2) == ["bash", "zsh"]


def test_bash_completion_script_works_in_bash() -> None:
    script = isc("completion", "bash").stdout
    assert "complete -o default -F _isc_kit_complete isc-kit" in script
    probe = (
        'eval "$SCRIPT"; COMP_WORDS=(isc-kit ver); COMP_CWORD=1; _isc_kit_complete; echo "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "SCRIPT": script, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert run.stdout.strip() == "verify", run.stderr


def test_start_up_imports_only_the_command_it_runs() -> None:
    code = (
        "import sys; from isc_kit.cli.main import main; main(['catalog', '--json']); "
        "print(sorted(m for m in sys.modules if m.startswith('isc_kit.cli.')), file=sys.stderr)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = eval(run.stderr.strip().splitlines()[-1])  # our own repr of a list of names
    commands = [m for m in loaded if not m.rsplit(".", 1)[1].startswith("_")]  # helpers are shared
    assert commands == ["isc_kit.cli.catalog", "isc_kit.cli.main"]
