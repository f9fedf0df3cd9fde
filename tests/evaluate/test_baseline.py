"""The Pillow+numpy baseline ranks edited copies above unrelated pictures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from isc_kit.baseline import describe_all, describe_image, run_baseline, search
from isc_kit.errors import ConfigError


def picture(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A smooth random field with a few shapes: structure at several scales, like a photo."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(field).resize(size, Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        r = int(rng.integers(8, 30))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), fill=color)
        else:
            d.rectangle((x - r, y - r, x + r, y + r), fill=color)
    return img


def save(img: Image.Image, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img.save(folder / f"{name}.jpg", quality=90)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    refs, queries = tmp_path / "refs", tmp_path / "queries"
    for i in range(8):
        save(picture(100 + i), refs, f"R{i:06d}")
    original = picture(100 + 3)  # R000003
    save(original.crop((20, 10, 150, 110)).resize((140, 108)), queries, "Q00000")  # crop
    save(original.rotate(15, Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0)), queries, "Q00001")
    save(
        ImageEnhance.Brightness(picture(100 + 5)).enhance(1.3).convert("L").convert("RGB"), queries, "Q00002"
    )
    save(picture(999), queries, "Q00003")  # unrelated: a distractor
    (queries / "notes.txt").write_text("not an image")
    (queries / "holiday.jpg").write_bytes(b"not an id")
    return queries, refs


def read_rows(path: Path) -> list[tuple[str, str, float]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["query_id", "reference_id", "score"]
        return [(q, r, float(s)) for q, r, s in reader]


def test_descriptors_are_unit_rows(folders: tuple[Path, Path]) -> None:
    queries, refs = folders
    d = describe_image(refs / "R000000.jpg")
    assert d.shape == (6, 64)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert describe_image(queries / "Q00000.jpg", query=True).shape == (10, 64)


def test_edited_copies_rank_first(folders: tuple[Path, Path], tmp_path: Path) -> None:
    queries, refs = folders
    out = tmp_path / "pred.csv"
    result = run_baseline(queries, refs, out, top_k=3, jobs=1)
    assert (result.n_queries, result.n_references, result.n_predictions) == (4, 8, 12)
    rows = read_rows(out)
    best = {}
    for q, r, s in rows:
        if q not in best or s > best[q][1]:
            best[q] = (r, s)
    assert best["Q00000"][0] == "R000003"  # crop
    assert best["Q00001"][0] == "R000003"  # rotation
    assert best["Q00002"][0] == "R000005"  # brightness + greyscale
    # the distractor's best match scores below every true copy's
    assert best["Q00003"][1] < min(best[q][1] for q in ("Q00000", "Q00001", "Q00002"))


def test_process_pool_gives_the_same_descriptors(folders: tuple[Path, Path]) -> None:
    _, refs = folders
    paths = sorted(refs.glob("*.jpg")) * 10  # enough files to use the pool
    pooled, ok = describe_all(paths, query=False, jobs=2)
    assert ok.all()
    assert np.array_equal(pooled[3], describe_image(paths[3]))


def test_unreadable_images_are_skipped(folders: tuple[Path, Path], tmp_path: Path) -> None:
    queries, refs = folders
    (refs / "R000777.jpg").write_bytes(b"\xff\xd8 broken")
    result = run_baseline(queries, refs, tmp_path / "p.csv", top_k=1, jobs=1)
    assert result.n_unreadable == 1
    assert result.n_references == 8


def test_search_blocks_agree_with_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 3, 4)).astype(np.float32)
    r = rng.normal(size=(7, 2, 4)).astype(np.float32)
    full = np.einsum("iad,jbd->iajb", q, r).max(axis=(1, 3))
    monkeypatch.setattr("isc_kit.baseline._BLOCK_FLOATS", 12)  # forces 2-reference blocks, 1 query each
    for qi, idx, scores in search(q, r, top_k=3):
        expected = np.argsort(-full[qi])[:3]
        assert list(idx) == list(expected)
        assert np.allclose(scores, full[qi, expected])


def test_bad_arguments(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    queries, refs = folders
    with pytest.raises(ConfigError, match="top_k"):
        run_baseline(queries, refs, tmp_path / "p.csv", top_k=0)
    with pytest.raises(ConfigError, match="not a folder"):
        run_baseline(tmp_path / "missing", refs, tmp_path / "p.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no readable reference images"):
        run_baseline(queries, tmp_path / "empty", tmp_path / "p.csv")


def test_descriptors_out_writes_the_track_format(folders: tuple[Path, Path], tmp_path: Path) -> None:
    from isc_kit.evaluate.descriptors import read_descriptors, search_descriptors

    queries, refs = folders
    (refs / "R000777.jpg").write_bytes(b"\xff\xd8 broken")  # unreadable: left out of the file
    q_h5, r_h5 = tmp_path / "q.h5", tmp_path / "r.h5"
    result = run_baseline(queries, refs, None, jobs=1, descriptors_out=(q_h5, r_h5))
    assert (result.output, result.n_predictions, result.descriptors) == (None, 0, (str(q_h5), str(r_h5)))
    q_names, q_vec = read_descriptors(q_h5)
    r_names, r_vec = read_descriptors(r_h5)
    assert q_names == ["Q00000", "Q00001", "Q00002", "Q00003"]
    assert r_names == [f"R{i:06d}" for i in range(8)]
    assert q_vec.shape == (4, 128)
    assert np.allclose(np.linalg.norm(r_vec, axis=1), 1.0, atol=1e-5)
    # the vector is the whole-picture and centre regions of the baseline's own descriptor
    regions = describe_image(refs / "R000002.jpg")
    assert np.allclose(r_vec[2], np.concatenate([regions[0], regions[5]]) / np.sqrt(2), atol=1e-6)
    # nearest reference (L2) of the crop query is its original
    p = search_descriptors(q_names, q_vec, r_names, r_vec, knn=1)
    assert dict(zip(p.query_ids, p.reference_ids, strict=True))["Q00000"] == "R000003"


def test_nothing_to_write_is_an_error(folders: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="nothing to write"):
        run_baseline(*folders, None)
