"""Every numeric option is validated: a bad value is one error line naming the option, exit 2, nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest

from isc_kit.cli.main import main
from isc_kit.errors import ConfigError

CASES = [
    (["fetch", "m.pinned", "dest", "--retries", "-1"], "--retries", "0 or more"),
    (["fetch", "m.pinned", "dest", "--jobs", "0"], "--jobs", "1 or more"),
    (["fetch", "m.pinned", "dest", "--jobs", "many"], "--jobs", "not a whole number"),
    (["verify", "m.pinned", "dest", "--hash-jobs", "0"], "--hash-jobs", "1 or more"),
    (["verify", "m.pinned", "dest", "--repair", "--retries", "-3"], "--retries", "0 or more"),
    (["ls", "query", "--metadata", "q.csv", "--sample", "-1"], "--sample", "0 or more"),
    (["ls", "query", "--metadata", "q.csv", "--head", "-5"], "--head", "0 or more"),
    (
        ["manifest", "query", "--metadata", "q.csv", "-o", "o", "--gt-queries", "-2"],
        "--gt-queries",
        "0 or more",
    ),
    (
        ["manifest", "query", "--metadata", "q.csv", "-o", "o", "--gt-distractors", "-1"],
        "--gt-distractors",
        "0",
    ),
    (["s3", "serve", "--port", "70000"], "--port", "65535"),
    (["s3", "serve", "--port", "-1"], "--port", "65535"),
    (["s3", "serve", "--seed", "-1"], "--seed", "0 or more"),
    (["pin", "m.pinned", "data", "--shard", "0"], "--shard", "1 or more"),
    (["pin", "m.pinned", "data", "--jobs", "0"], "--jobs", "1 or more"),
    (["share", "m.pinned", "--jobs", "0"], "--jobs", "1 or more"),
    (["baseline", "q", "r", "-o", "p.csv", "--top-k", "0"], "--top-k", "1 or more"),
    (["baseline", "q", "r", "-o", "p.csv", "--jobs", "0"], "--jobs", "1 or more"),
    (
        ["eval", "p.csv", "--ground-truth", "gt.csv", "--max-predictions", "-1"],
        "--max-predictions",
        "0 or more",
    ),
    (["stage", "fetch", "query", "dest", "--metrics", "m.json", "--jobs", "0"], "--jobs", "1 or more"),
]


@pytest.mark.parametrize(
    ("argv", "option", "words"), CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES]
)
def test_bad_numeric_option_is_one_line_exit_2(
    argv: list[str], option: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("isc-kit ")
    assert option in lines[0]
    assert words in lines[0]
    assert "--help" in lines[0]  # where to read more
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_good_values_still_parse() -> None:
    from isc_kit.cli._parser import build_parser

    args = build_parser("fetch").parse_args(["fetch", "m", "d", "--jobs", "4", "--retries", "0"])
    assert (args.jobs, args.retries) == (4, 0)
    args = build_parser("s3").parse_args(["s3", "serve", "--port", "0"])
    assert args.port == 0


def test_library_rejects_bad_counts() -> None:
    from isc_kit.select import ground_truth_subset, sample_mask

    with pytest.raises(ConfigError, match="0 or more"):
        ground_truth_subset([], ["Q00000"], ["R000000"], queries=-1)
    with pytest.raises(ConfigError, match="0 or more"):
        ground_truth_subset([], ["Q00000"], ["R000000"], queries=1, distractors=-1)
    with pytest.raises(ConfigError, match="0 or more"):
        sample_mask(["Q00000"], -1, 0)


def test_share_rejects_zero_jobs() -> None:
    from isc_kit.share import share

    with pytest.raises(ConfigError, match="1 or more"):
        share(None, "data/x", None, jobs=0)  # type: ignore[arg-type]  # refused before anything is read


@pytest.mark.parametrize(("key", "value"), [("queries", "-1"), ("distractors", "2.5"), ("seed", "true")])
def test_params_ground_truth_counts_are_checked(tmp_path: Path, key: str, value: str) -> None:
    from isc_kit.pipeline import read_params

    params = tmp_path / "params.yaml"
    params.write_text(
        "source:\n  bucket: drivendata-competition-fb-isc-data\n"
        f"ground_truth:\n  file: gt.csv\n  {'queries: 5' if key != 'queries' else 'distractors: 0'}\n  {key}: {value}\n"
        "sets:\n  query:\n    metadata: q.csv\n    ground_truth: true\n"
    )
    with pytest.raises(ConfigError, match=f"ground_truth.{key} must be a whole number"):
        read_params(params)
