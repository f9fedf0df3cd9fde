"""An empty selection is an error by default (issue 12 item 14): it says what each step kept and how
to widen it; ``--allow-empty`` / ``allow_empty: true`` make it a deliberate empty set."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from isc_kit.cli.main import main
from isc_kit.errors import ConfigError, EmptySelectionError
from isc_kit.pipeline import read_params, set_spec

BUCKET = "drivendata-competition-fb-isc-data"


def _training_csv(folder: Path, n: int = 1000) -> Path:
    """The demo's shape: T000000-T000999."""
    path = folder / "training.csv"
    rows = "".join(f"T{i:06d},s3://{BUCKET}/all/training_images/T{i:06d}.jpg,{i:032x}\n" for i in range(n))
    path.write_text("image_id,s3_uri,md5_checksum\n" + rows)
    return path


def _ls(*argv: str) -> list[str]:
    return ["-q", "ls", "training", *argv]


def test_ls_of_a_typo_selection_is_an_error_naming_each_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _training_csv(tmp_path)
    code = main(_ls("--metadata", str(meta), "--exclude", "*", "--include", "T001*"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    line = err[0]
    assert "keeps no training images" in line
    assert "1,000 training images in the input (T000000..T000999)" in line
    assert "--include 'T001*' kept 0" in line
    assert "--allow-empty" in line


def test_allow_empty_makes_it_a_deliberate_empty_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _training_csv(tmp_path)
    argv = _ls("--metadata", str(meta), "--exclude", "*", "--include", "T001*", "--allow-empty", "--json")
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0


def test_manifest_writes_nothing_for_an_empty_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _training_csv(tmp_path)
    out = tmp_path / "t.pinned"
    out.write_text("the previous pinned manifest\n")
    argv = ["-q", "manifest", "training", "--metadata", str(meta), "--ids", "T005000:T005999", "-o", str(out)]
    assert main(argv) == 2
    assert "--ids T005000:T005999 kept 0" in capsys.readouterr().err
    assert out.read_text() == "the previous pinned manifest\n"  # untouched
    assert main([*argv, "--allow-empty"]) == 0
    assert "# count: 0" in out.read_text()


def test_sample_zero_and_each_step_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = _training_csv(tmp_path)
    assert main(_ls("--metadata", str(meta), "--include", "T0000*", "--sample", "0")) == 2
    line = capsys.readouterr().err
    assert "--include 'T0000*' kept 1,000" in line  # nothing was excluded before the include
    assert "--sample 0 kept 0" in line


def test_library_select_raises_unless_allowed(tmp_path: Path) -> None:
    from isc_kit.metadata import read_metadata
    from isc_kit.select import Selection, select

    m = read_metadata(_training_csv(tmp_path, 10), "training")
    with pytest.raises(EmptySelectionError) as info:
        select(m, Selection(ranges=("T000100:T000200",)))
    assert isinstance(info.value, ConfigError)
    assert len(select(m, Selection(ranges=("T000100:T000200",), allow_empty=True))) == 0
    assert len(select(m, Selection(ranges=("T000100:T000200",)), allow_empty=True)) == 0


def test_unknown_ids_in_an_id_file_are_counted_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _training_csv(tmp_path, 10)
    ids = tmp_path / "ids.txt"
    ids.write_text("T000001\nT000002\nT000500\nT000777\n")
    caplog.set_level(logging.WARNING, logger="isc_kit")
    from isc_kit.metadata import read_metadata
    from isc_kit.select import Selection, select

    got = select(read_metadata(meta, "training"), Selection(id_file=str(ids)))
    assert got.ids == ["T000001", "T000002"]
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == [
        f"{ids}: 2 of 4 ids are not in the training input (e.g. T000500, T000777); they are left out"
    ]


def test_params_allow_empty_is_read_and_passed_to_manifest(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        f"source:\n  bucket: {BUCKET}\nsets:\n  training:\n    metadata: t.csv\n    allow_empty: true\n"
        "  query:\n    metadata: q.csv\n"
    )
    p = read_params(params)
    assert p.sets["training"].allow_empty is True
    assert p.sets["query"].allow_empty is False
    assert set_spec(p, "training").selection.allow_empty is True
    assert "--allow-empty" in set_spec(p, "training").command()
    assert "--allow-empty" not in set_spec(p, "query").command()
    params.write_text(
        f"source:\n  bucket: {BUCKET}\nsets:\n  training:\n    metadata: t.csv\n    allow_empty: 'yes'\n"
    )
    with pytest.raises(ConfigError, match="allow_empty must be true or false"):
        read_params(params)


def test_pipeline_manifest_stage_stops_on_an_empty_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's mistake (training T000* -> T001*): the stage fails, the old pinned file (and so the
    fetched folder) stays; with allow_empty: true the empty manifest is written on purpose."""
    meta = _training_csv(tmp_path)
    params = tmp_path / "params.yaml"
    body = f"source:\n  bucket: {BUCKET}\nsets:\n  training:\n    metadata: {meta}\n"
    body += '    filters: [{exclude: "*"}, {include: "T001*"}]\n'
    params.write_text(body)
    out = tmp_path / "training.pinned"
    out.write_text("previous selection\n")
    argv = ["-q", "stage", "manifest", "training", "-o", str(out), "--params", str(params)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--include 'T001*' kept 0" in err
    assert str(meta) in err
    assert out.read_text() == "previous selection\n"
    params.write_text(body + "    allow_empty: true\n")
    assert main(argv) == 0
    assert "# count: 0" in out.read_text()
