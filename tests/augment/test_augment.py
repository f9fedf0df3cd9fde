"""isc-kit augment: seeded AugLy copies, byte-identical across runs and worker counts; bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isc_kit.augment import AugmentParams, augment, augmented_id, draw, load_pairs
from isc_kit.errors import ConfigError, IscKitError
from isc_kit.manifest import Manifest
from isc_kit.pinned import load_pinned, write_pinned

PARAMS = {
    "copies": 2,
    "seed": 0,
    "per_copy": 2,
    "transforms": [
        {"name": "rotate", "degrees": [-20, 20]},
        {"name": "blur", "radius": [0.5, 2.0]},
        {"name": "encoding_quality", "quality": [20, 60]},
        "hflip",
    ],
}


def make_selection(tmp: Path, n: int = 6) -> tuple[Path, Path]:
    images = tmp / "data" / "training"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        arr = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
        path = images / f"T{i:06d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        data = path.read_bytes()
        rows.append((f"T{i:06d}", path.name, hashlib.md5(data).hexdigest(), len(data)))
    pinned = tmp / "training.pinned"
    write_pinned(
        Manifest.from_rows("training", "drivendata-competition-fb-isc-data", "all/training_images/", rows),
        pinned,
    )
    return pinned, images


def run(tmp: Path, out: str, params: dict, jobs: int) -> dict[str, bytes]:
    pinned, images = (tmp / "training.pinned", tmp / "data" / "training")
    folder = tmp / out
    augment(
        load_pinned(pinned),
        images,
        folder,
        tmp / f"{out}.csv",
        tmp / f"{out}.pinned",
        AugmentParams.from_dict(params),
        jobs=jobs,
    )
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    files["pairs"] = (tmp / f"{out}.csv").read_bytes()
    files["pinned"] = (tmp / f"{out}.pinned").read_bytes()
    return files


def test_same_seed_same_bytes_over_runs_and_workers(tmp_path: Path) -> None:
    make_selection(tmp_path)
    one = run(tmp_path, "a", PARAMS, jobs=1)
    again = run(tmp_path, "b", PARAMS, jobs=1)
    two = run(tmp_path, "c", PARAMS, jobs=2)
    assert len(one) == 6 * 2 + 2
    assert one == again == two
    other = run(tmp_path, "d", {**PARAMS, "seed": 1}, jobs=1)
    assert other["A00000000.jpg"] != one["A00000000.jpg"]
    pairs = load_pairs(tmp_path / "a.csv")
    assert pairs[0][:2] == ("A00000000", "T000000")
    assert "(" in pairs[0][2]
    manifest = load_pinned(tmp_path / "a.pinned")
    assert len(manifest) == 12
    assert manifest.md5(0) == hashlib.md5(one["A00000000.jpg"]).hexdigest()


def test_draw_depends_on_identity_only() -> None:
    p = AugmentParams.from_dict(PARAMS)
    assert draw(p, "T000005", 1) == draw(p, "T000005", 1)
    assert draw(p, "T000005", 1) != draw(p, "T000005", 0)
    assert augmented_id("T000123", 1) == "A00012301"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({**PARAMS, "transforms": [{"name": "twirl"}]}, "unknown transform 'twirl'; valid: blur"),
        ({**PARAMS, "transforms": [{"name": "blur", "radius": [0.5, 99]}]}, "out of range"),
        ({**PARAMS, "transforms": [{"name": "blur", "sigma": 1}]}, "no strength 'sigma'"),
        ({**PARAMS, "copies": -1}, "copies: -1 is not an integer"),
        ({**PARAMS, "colour": 1}, "unknown key(s) colour"),
    ],
)
def test_bad_params_one_line(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        AugmentParams.from_dict(raw)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_source_and_empty_selection_write_nothing(tmp_path: Path) -> None:
    pinned, images = make_selection(tmp_path)
    (images / "T000003.jpg").unlink()
    params = AugmentParams.from_dict(PARAMS)
    with pytest.raises(IscKitError, match=r"1 source image\(s\) missing, first .*T000003\.jpg"):
        augment(
            load_pinned(pinned), images, tmp_path / "out", tmp_path / "p.csv", tmp_path / "o.pinned", params
        )
    empty = load_pinned(pinned).take([])
    with pytest.raises(IscKitError, match="selection is empty"):
        augment(empty, images, tmp_path / "out", tmp_path / "p.csv", tmp_path / "o.pinned", params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "training.pinned"]


def test_cli_bad_transform_one_line(tmp_path: Path) -> None:
    pinned, images = make_selection(tmp_path)
    (tmp_path / "params.yaml").write_text("augment: {copies: 1, transforms: [{name: swirl}]}\n")
    cli = [sys.executable, "-m", "isc_kit", "augment", str(pinned), str(images), "out"]
    done = subprocess.run(
        [*cli, "--pairs", "p.csv", "--manifest", "o.pinned"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unknown transform 'swirl'" in lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "p.csv").exists()
    ok = subprocess.run(
        [*cli, "--pairs", "p.csv", "--manifest", "o.pinned", "--params", "/dev/null", "--copies", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr


def test_self_check_baseline_finds_most_copies(tmp_path: Path) -> None:
    """On the synthetic fixture's training images (distinct pictures), mild copies are found."""
    from isc_kit.augment import self_check
    from isc_kit.fixture import materialize

    root = materialize("tiny")
    sources = sorted((root / "all" / "training_images").glob("T*.jpg"))[:20]
    images = tmp_path / "src"
    images.mkdir()
    rows = []
    for p in sources:
        data = p.read_bytes()
        (images / p.name).write_bytes(data)
        rows.append((p.stem, p.name, hashlib.md5(data).hexdigest(), len(data)))
    pinned = Manifest.from_rows(
        "training", "drivendata-competition-fb-isc-data", "all/training_images/", rows
    )
    params = {"copies": 2, "seed": 0, "transforms": [{"name": "rotate", "degrees": [-10, 10]},
              {"name": "brightness", "factor": [0.8, 1.2]}, {"name": "encoding_quality", "quality": [30, 60]}]}  # fmt: skip
    augment(pinned, images, tmp_path / "aug", tmp_path / "p.csv", tmp_path / "a.pinned",
            AugmentParams.from_dict(params), jobs=1)  # fmt: skip
    scores = self_check(tmp_path / "p.csv", images, tmp_path / "aug", jobs=1)
    assert scores["copies"] == 40
    assert scores["recall_at_1"] >= 0.8, scores
    assert scores["muap"] >= 0.7, scores


def test_dask_gives_the_same_bytes(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    from isc_kit.augment import augment_on_dask

    make_selection(tmp_path)
    local = run(tmp_path, "a", PARAMS, jobs=1)
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster,
        Client(cluster) as client,
    ):
        result = augment_on_dask(
            client, load_pinned(tmp_path / "training.pinned"), tmp_path / "data" / "training", tmp_path / "d",
            tmp_path / "d.csv", tmp_path / "d.pinned", AugmentParams.from_dict(PARAMS), chunk_size=2,
        )  # fmt: skip
    assert result.n_copies == 12
    dask = {p.name: p.read_bytes() for p in sorted((tmp_path / "d").iterdir())}
    dask["pairs"] = (tmp_path / "d.csv").read_bytes()
    dask["pinned"] = (tmp_path / "d.pinned").read_bytes()
    assert dask == local


def test_runs_without_libmagic(tmp_path: Path) -> None:
    """AugLy imports python-magic at import time; without libmagic the image functions still run."""
    make_selection(tmp_path, n=1)
    code = (
        "import sys; sys.modules['magic'] = None\n"  # `import magic` raises ImportError, as without libmagic1
        "from isc_kit.augment import augment_image\n"
        f"data = open({str(tmp_path / 'data/training/T000000.jpg')!r}, 'rb').read()\n"
        "out = augment_image(data, [('rotate', {'degrees': 5.0})], 90)\n"
        "assert out[:2] == b'\\xff\\xd8'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
