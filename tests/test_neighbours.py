"""isc_kit.neighbours: exact search against numpy, the cached approximate index, queries by id / vector /
image, and bad descriptor files refused in one line with nothing written."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from isc_kit.errors import ConfigError
from isc_kit.evaluate.descriptors import write_descriptors
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.neighbours import Neighbours, recall_at


def rids(n: int) -> list[str]:
    return [f"R{i:06d}" for i in range(n)]


@pytest.fixture
def refs(tmp_path: Path) -> tuple[Path, np.ndarray]:
    x = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    path = tmp_path / "refs.h5"
    write_descriptors(path, rids(300), x)
    return path, x


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_exact_search_equals_brute_force_and_pages(refs, metric):
    path, x = refs
    nb = Neighbours(path, metric=metric)
    assert not nb.approximate
    q = np.random.default_rng(2).normal(size=16).astype(np.float32)
    score = -((x - q) ** 2).sum(axis=1) if metric == "l2" else x @ q
    expected = [f"R{i:06d}" for i in np.argsort(-score, kind="stable")[:10]]
    hits = nb.query(q, 10)
    assert [h.image_id for h in hits] == expected
    assert [h.rank for h in hits] == list(range(1, 11))
    assert np.allclose([h.score for h in hits], np.sort(score)[::-1][:10], rtol=1e-4)
    page2 = nb.query(q, 5, offset=5)
    assert [h.image_id for h in page2] == expected[5:]
    assert page2[0].rank == 6


def test_query_by_id_leaves_the_image_itself_out(refs):
    path, x = refs
    nb = Neighbours(path)
    hits = nb.query("R000007", 3)
    assert "R000007" not in [h.image_id for h in hits]
    assert [h.image_id for h in hits] == [h.image_id for h in nb.query(x[7], 4)][1:]


def test_approximate_index_is_cached_beside_the_file_by_content_hash(tmp_path: Path, caplog):
    centres = np.random.default_rng(3).normal(size=(40, 32)).astype(np.float32) * 4
    rng = np.random.default_rng(4)
    x = (centres[rng.integers(0, 40, 6000)] + rng.normal(size=(6000, 32))).astype(np.float32)
    path = tmp_path / "refs.h5"
    write_descriptors(path, rids(6000), x)
    nb = Neighbours(path, approximate_above=1000, progress=False)
    assert nb.approximate
    assert nb.cache_path is not None
    assert nb.cache_path.parent == tmp_path
    assert nb.cache_path.is_file()
    digest = nb.cache_path.name.split(".")[3]
    assert len(digest) == 16
    exact = Neighbours(path, approximate=False)
    queries = x[:200] + 0.1
    found, _ = nb.search_vectors(queries, 10)
    truth, _ = exact.search_vectors(queries, 10)
    assert recall_at(found, truth) > 0.9  # clustered data: the IVF index is close to exact
    with caplog.at_level(logging.INFO, logger="isc_kit.neighbours"):
        again = Neighbours(path, approximate_above=1000, progress=False)
    assert "index loaded from" in caplog.text
    assert np.array_equal(again.search_vectors(queries, 10)[0], found)
    write_descriptors(path, rids(6000), x[::-1].copy())  # new content: a new cache file, not the stale one
    changed = Neighbours(path, approximate_above=1000, progress=False)
    assert changed.cache_path != nb.cache_path
    assert sorted(p.name for p in tmp_path.glob(".refs.h5.*.faiss")) == sorted(
        [nb.cache_path.name, changed.cache_path.name]
    )


def test_query_by_image_file_uses_the_baseline_model(tiny_root: Path, tmp_path: Path):
    from isc_kit.baseline import run_baseline

    q_h5, r_h5 = tmp_path / "q.h5", tmp_path / "r.h5"
    run_baseline(
        tiny_root / "all/query_images", tiny_root / "all/reference_images", None, descriptors_out=(q_h5, r_h5)
    )
    nb = Neighbours(r_h5, lookup=[q_h5])
    image = tiny_root / "all/query_images/Q00003.jpg"
    assert np.allclose(nb.as_vector(str(image)), nb.vector_of("Q00003"), atol=1e-5)
    assert [h.image_id for h in nb.query(image, 5)] == [h.image_id for h in nb.query("Q00003", 5)]
    pixels = np.zeros((64, 64), dtype=np.uint8)
    pixels[:32] = 255
    assert len(nb.query(pixels, 4)) == 4  # an array not in any set


def _one_line(err: pytest.ExceptionInfo[ConfigError], *words: str) -> None:
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text, text


def test_bad_descriptor_files_are_one_line_and_nothing_is_written(tmp_path: Path, tiny_root: Path):
    refs_manifest: Manifest = read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference")
    good = tmp_path / "good.h5"
    write_descriptors(good, refs_manifest.ids[:10], np.ones((10, 8), dtype=np.float32))
    stray = tmp_path / "stray.h5"
    write_descriptors(stray, ["R999999", *refs_manifest.ids[:3]], np.ones((4, 8), dtype=np.float32))
    with pytest.raises(ConfigError) as err:
        Neighbours(stray, manifests={"reference": refs_manifest}, approximate=True)
    _one_line(err, "stray.h5", "1 of 4 ids", "R999999", "reference manifest")
    wide = tmp_path / "wide.h5"
    write_descriptors(wide, ["Q00000"], np.ones((1, 9), dtype=np.float32))
    with pytest.raises(ConfigError) as err:
        Neighbours(good, lookup=[wide])
    _one_line(err, "wide.h5", "9 dimensions", "has 8")
    nan = tmp_path / "nan.h5"
    v = np.ones((5, 8), dtype=np.float32)
    v[3, 2] = np.nan
    write_descriptors(nan, rids(5), v)
    with pytest.raises(ConfigError) as err:
        Neighbours(nan, approximate=True)
    _one_line(err, "nan.h5", "NaN", "row 3", "R000003")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError) as err:
        Neighbours(tmp_path / "junk.h5")
    _one_line(err, "junk.h5", "not a readable HDF5 file")
    with pytest.raises(ConfigError) as err:
        Neighbours(tmp_path / "absent.h5")
    _one_line(err, "absent.h5", "no such file")
    nb = Neighbours(good)
    with pytest.raises(ConfigError) as err:
        nb.query(np.ones(5, dtype=np.float32))
    _one_line(err, "5 floats", "8")
    with pytest.raises(ConfigError) as err:
        nb.query(tiny_root / "all/query_images/Q00000.jpg")  # the baseline gives 128 floats, the file has 8
    _one_line(err, "128 floats", "8-d", "describe=")
    with pytest.raises(ConfigError) as err:
        nb.query("Q12345")
    _one_line(err, "Q12345", "no descriptor")
    assert not list(tmp_path.glob(".*.faiss"))  # no index cache from any refused file
