"""The embedding map's numbers: projection to 2-D (PCA, or UMAP), the frame, the stratified drawn sample,
the density of all points, and which points a box or lasso holds (see :mod:`.embedding_map`)."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ._map_canvas import DENSITY_BINS

METHODS = ("auto", "pca", "umap")
UMAP_AUTO_LIMIT = 200_000
UMAP_FIT_LIMIT = 50_000
UMAP_MIN_POINTS = 16  # UMAP's 15 nearest neighbours, and the point itself
MIN_PER_CLASS = 500
_CHUNK = 100_000

logger = logging.getLogger(__name__)


def project(vectors: np.ndarray, method: str = "pca", *, seed: int = 0) -> tuple[np.ndarray, str]:
    """``(n x 2 float32 coordinates, method used)``: PCA (numpy) or UMAP (see :mod:`.embedding_map`).

    Fewer than :data:`UMAP_MIN_POINTS` points have no neighbourhood graph to speak of: PCA, and it says so.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    n = len(vectors)
    if method in ("auto", "umap"):
        try:
            with warnings.catch_warnings():  # umap warns (ImportWarning) when TensorFlow is absent: not ours
                warnings.simplefilter("ignore", ImportWarning)
                import umap  # type: ignore[import-not-found]
        except ImportError:
            if method == "umap":
                raise ConfigError(
                    "method='umap' needs umap-learn: pip install 'isc-kit[umap]' (or use method='pca')"
                ) from None
        else:
            if n < UMAP_MIN_POINTS:
                logger.info("%d points are too few for UMAP (at least %d): PCA", n, UMAP_MIN_POINTS)
            elif method == "umap" or n <= UMAP_AUTO_LIMIT:
                return _umap(umap, vectors, seed), "umap"
    return _pca(vectors), "pca"


def _pca(x: np.ndarray) -> np.ndarray:
    n, d = x.shape
    if n < 2:
        return np.zeros((n, 2), dtype=np.float32)
    total = np.zeros(d)
    cov = np.zeros((d, d))
    for s in range(0, n, _CHUNK):
        c = x[s : s + _CHUNK].astype(np.float64)
        total += c.sum(axis=0)
        cov += c.T @ c
    mean = total / n
    cov = cov / n - np.outer(mean, mean)
    _vals, vecs = np.linalg.eigh(cov)
    w = vecs[:, ::-1][:, :2]
    w = w * np.sign(w[np.argmax(np.abs(w), axis=0), [0, 1]])  # a fixed sign: the same map every run
    out = np.empty((n, 2), dtype=np.float32)
    for s in range(0, n, _CHUNK):
        out[s : s + _CHUNK] = (x[s : s + _CHUNK] - mean) @ w
    return out


def _umap(umap: Any, x: np.ndarray, seed: int) -> np.ndarray:
    reducer = umap.UMAP(n_components=2, random_state=seed, n_jobs=1)
    if len(x) <= UMAP_FIT_LIMIT:
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)
    rows = np.sort(np.random.default_rng(seed).choice(len(x), UMAP_FIT_LIMIT, replace=False))
    reducer.fit(x[rows])
    out = np.empty((len(x), 2), dtype=np.float32)
    for s in range(0, len(x), _CHUNK):
        out[s : s + _CHUNK] = reducer.transform(x[s : s + _CHUNK])
    return out


def normalise(xy: np.ndarray) -> np.ndarray:
    """Coordinates scaled into [0.02, 0.98] on both axes (the drawing's frame)."""
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (0.02 + 0.96 * (xy - lo) / span).astype(np.float32)


def stratified_sample(codes: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Sorted row indices, seeded: at most ``max_points``; each class gets ``min(its size, MIN_PER_CLASS)``
    first, and the rest of the budget goes to the classes in proportion to what they have left."""
    n = len(codes)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(codes, return_counts=True)
    floor = np.minimum(counts, MIN_PER_CLASS)  # every class this strong (or whole) first
    if floor.sum() >= max_points:  # many classes: share the budget evenly instead
        want = np.maximum(1, np.floor(floor * max_points / floor.sum())).astype(np.int64)
    else:  # the rest of the budget in proportion to what each class has left
        rest = counts - floor
        extra = np.floor((max_points - floor.sum()) * rest / max(rest.sum(), 1)).astype(np.int64)
        want = floor + np.minimum(extra, rest)
    picked = [
        rng.choice(np.flatnonzero(codes == c), k, replace=False) for c, k in zip(classes, want, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def density(xy: np.ndarray, bins: int = DENSITY_BINS) -> bytes:
    """A ``bins x bins`` histogram of all points (x major), log-scaled to bytes (0 = empty)."""
    h, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[0, 1], [0, 1]])
    if not h.any():
        return bytes(bins * bins)
    scaled = np.log1p(h) / math.log1p(h.max()) * 255
    return np.where(h > 0, np.maximum(scaled, 1), 0).astype(np.uint8).tobytes()


def inside(xy: np.ndarray, polygon: Sequence[Sequence[float]], mode: str = "lasso") -> np.ndarray:
    """Boolean mask of the rows of ``xy`` inside ``polygon`` (a box: its bounding box)."""
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        return np.zeros(len(xy), dtype=bool)
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    box = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    if mode == "box":
        return box
    from matplotlib.path import Path as Polygon

    mask = np.zeros(len(xy), dtype=bool)
    rows = np.flatnonzero(box)
    mask[rows] = Polygon(poly).contains_points(xy[rows])
    return mask
