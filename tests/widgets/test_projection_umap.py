"""The embedding map's UMAP projection (the ``umap`` extra, which `make test` installs): it runs, keeps
clusters apart, is seeded, fits on a sample past its limit, and is only chosen when asked for."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from isc_kit.errors import ConfigError
from isc_kit.widgets import EmbeddingMap, _projection
from isc_kit.widgets._projection import normalise, project

pytest.importorskip("umap", reason="the umap extra is not installed")


def clusters(n_per: int = 60, k: int = 3, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` tight Gaussian blobs in ``dim`` dimensions, far apart; their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return (centres[labels] + rng.normal(scale=0.3, size=(len(labels), dim))).astype(np.float32), labels


def test_umap_keeps_clusters_apart_and_is_not_pca() -> None:
    x, labels = clusters()
    xy, used = project(x, "umap", seed=0)
    assert used == "umap"
    assert xy.shape == (len(x), 2)
    assert xy.dtype == np.float32
    assert np.isfinite(xy).all()
    # every point's nearest neighbour on the map is one of its own cluster
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).all()
    # not a linear map of the input: differs from the PCA drawing in the same frame
    pca, _ = project(x, "pca")
    assert not np.allclose(normalise(xy), normalise(pca), atol=0.05)


def test_umap_is_seeded() -> None:
    x, _ = clusters(seed=1)
    a, _ = project(x, "umap", seed=3)
    b, _ = project(x, "umap", seed=3)
    c, _ = project(x, "umap", seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_auto_takes_umap_up_to_its_limit_and_pca_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = clusters(n_per=20)
    monkeypatch.setattr(_projection, "UMAP_AUTO_LIMIT", len(x))
    assert project(x, "auto")[1] == "umap"
    monkeypatch.setattr(_projection, "UMAP_AUTO_LIMIT", len(x) - 1)
    xy, used = project(x, "auto")
    assert used == "pca"
    np.testing.assert_array_equal(xy, project(x, "pca")[0])
    assert project(x)[1] == "pca"  # the default: the same map whatever is installed


def test_past_the_fit_limit_umap_fits_a_seeded_sample_and_transforms_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import umap

    fitted: list[int] = []
    original = umap.UMAP.fit

    def spy(self, x, *args, **kwargs):  # records how many rows UMAP was fitted on
        fitted.append(len(x))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(umap.UMAP, "fit", spy)
    monkeypatch.setattr(_projection, "UMAP_FIT_LIMIT", 90)
    x, labels = clusters(n_per=60)  # 180 rows
    xy, used = project(x, "umap", seed=0)
    assert used == "umap"
    assert fitted == [90]
    assert xy.shape == (180, 2)
    assert np.isfinite(xy).all()
    centroid = np.stack([xy[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.linalg.norm(xy[:, None, :] - centroid[None], axis=2).argmin(axis=1)
    assert (nearest == labels).mean() > 0.95  # the transformed rows land by their own cluster


def test_too_few_points_for_umap_is_pca() -> None:
    x, _ = clusters(n_per=3)  # 9 points: no 15-neighbour graph
    assert project(x, "umap")[1] == "pca"


def test_without_umap_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` raises ImportError
    x, _ = clusters(n_per=10)
    with pytest.raises(ConfigError, match=r"pip install 'isc-kit\[umap\]'") as err:
        project(x, "umap")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"isc-kit\[umap\]"):
        EmbeddingMap(([f"Q{i:05d}" for i in range(len(x))], x), method="umap")
    assert project(x, "auto")[1] == "pca"


def test_the_map_says_umap_and_selects_a_cluster() -> None:
    x, labels = clusters()
    ids = [f"R{i:06d}" for i in range(len(x))]
    emap = EmbeddingMap((ids, x), method="umap")
    assert emap.method == "umap"
    assert "UMAP" in emap._head.value
    # a box around one cluster on the drawn map selects exactly that cluster
    own = emap.xy[labels == 0]
    (x0, y0), (x1, y1) = own.min(axis=0) - 0.01, own.max(axis=0) + 0.01
    assert set(emap.select_box(x0, y0, x1, y1)) == {i for i, lab in zip(ids, labels, strict=True) if lab == 0}
