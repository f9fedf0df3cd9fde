"""The descriptor track: HDF5 descriptor files, searched with faiss under the official isc2021 rules.

A descriptor file is the competition's HDF5 format: a float32 dataset ``vectors`` (one row per
image) and a dataset ``image_names`` (ASCII bytes), one file for the queries and one for the
references. Names are read as the official ``isc/io.py`` reads them: a leading folder and a ``.jpg`` or
``.png`` ending are dropped.

Matching follows ``scripts/compute_metrics.py --track2`` and ``isc/descriptor_matching.py`` of
facebookresearch/isc2021 (read there, written anew here):

- an exact faiss search (``IndexFlat``; squared L2 by default, inner product with ``metric="ip"``);
- the default is a range search whose result set is capped at ``max_results`` (500,000) pairs over all
  queries: queries are searched in batches of 32, 64, ... (doubling while below 20,000); whenever more
  than ``2 * max_results`` results are held, the radius shrinks to the ``max_results + 1``-th smallest
  distance held (L2; for inner product the ``max_results``-th largest similarity) and only results
  strictly inside it are kept, and later batches are searched with that radius; at the end, more than
  ``max_results`` results are cut to the ``max_results`` nearest. The official code cuts ties at that
  last boundary in no defined order (``argpartition``); here the first in (query, reference) file order
  are kept, so a run is reproducible;
- ``knn=k`` instead keeps each query's ``k`` nearest references (the official ``--knn``), no cap;
- the score of a pair is the negated distance for L2 and the similarity for inner product;
- descriptors wider than ``max_dim`` (256) or of different widths are refused.

The resulting predictions are scored by :func:`isc_kit.evaluate.matching.evaluate` with no cap, as the
official track-2 evaluation scores them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, Problem
from ..groundtruth import GroundTruth
from ..outputs import output_path
from .matching import Predictions, evaluate
from .result import EvalResult

logger = logging.getLogger(__name__)

#: The official track-2 defaults (``compute_metrics.py``: ``--max_results``, ``--max_dim``).
DEFAULT_MAX_RESULTS = 500_000
DEFAULT_MAX_DIM = 256
METRICS = ("l2", "ip")
_INITIAL_RADIUS = {"l2": 1e10, "ip": -1e10}  # filters nothing


def write_descriptors(path: str | Path, image_names: Sequence[str], vectors: np.ndarray) -> None:
    """Write ``vectors`` (``n x d``) and their ``image_names`` as a competition HDF5 file (atomically)."""
    import h5py

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(image_names):
        raise ConfigError(
            f"descriptors for {path}: expected {len(image_names)} rows of one vector each, got shape {vectors.shape}"
        )
    names = np.array([str(n).encode("ascii") for n in image_names], dtype=object)
    with output_path(path, make_parents=True) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("vectors", data=vectors)
        f.create_dataset("image_names", data=names, dtype=h5py.string_dtype("ascii"))


def _clean_name(name: str) -> str:
    name = name.rsplit("/", 1)[-1]
    return name[:-4] if name.endswith((".jpg", ".png")) else name


def read_descriptors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Image names and float32 ``vectors`` of a competition HDF5 file; :class:`InputFileError` if malformed."""
    import h5py

    path = Path(path)

    def bad(message: str) -> InputFileError:
        return InputFileError(
            str(path),
            [Problem(0, "", "", message)],
            hint="expected HDF5 datasets 'vectors' and 'image_names'",
        )

    if not path.is_file():
        raise bad("not a file")
    try:
        with h5py.File(path, "r") as f:
            for key in ("vectors", "image_names"):
                if key not in f:
                    raise bad(f"no dataset {key!r}")
            vectors = np.asarray(f["vectors"][()])
            raw = f["image_names"][()]
    except OSError as err:
        raise bad(f"not a readable HDF5 file ({err})") from err
    names = [_clean_name(n.decode("ascii") if isinstance(n, bytes) else str(n)) for n in np.ravel(raw)]
    if vectors.ndim != 2 or len(vectors) != len(names):
        raise bad(f"{len(names)} image names but vectors of shape {vectors.shape}")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise bad(f"vectors are {vectors.dtype}, not float32")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        first = int(rows[0])
        raise bad(
            f"{len(rows)} vector(s) hold NaN or infinite values (first: row {first}, {names[first]}); recompute them"
        )
    if len(set(names)) != len(names):
        seen: set[str] = set()
        twice = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise bad(f"image {twice} appears twice; keep one vector per image")
    logger.info("descriptors %s: %d x %d", path, *vectors.shape)
    return names, vectors


def _batches(n: int) -> Iterator[tuple[int, int]]:
    """Query batches of progressively larger sizes: 32, 64, ... (doubling while below 20,000)."""
    start, size = 0, 32
    while start < n:
        yield start, min(n, start + size)
        start += size
        if size < 20_000:
            size *= 2


def _shrink(held: list[list[np.ndarray]], target: int, metric: str) -> float:
    """The official radius reduction: keep only results strictly inside the new radius (in place)."""
    dist = np.concatenate([d for _, d, _ in held])
    if metric == "l2":
        radius = float(np.partition(dist, target)[target])
    else:
        radius = float(np.partition(dist, len(dist) - target)[len(dist) - target])
    for part in held:
        keep = part[1] < radius if metric == "l2" else part[1] > radius
        part[0], part[1], part[2] = part[0][keep], part[1][keep], part[2][keep]
    return radius


def _capped_range_search(
    xq: np.ndarray, xb: np.ndarray, max_results: int, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query indices, reference indices and distances of the capped result set (see the module doc)."""
    import faiss

    index = faiss.IndexFlat(xb.shape[1], faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
    index.add(xb)
    radius = _INITIAL_RADIUS[metric]
    held: list[list[np.ndarray]] = []
    total = 0
    for q0, q1 in _batches(len(xq)):
        lims, dist, ids = index.range_search(xq[q0:q1], radius)
        qi = np.repeat(np.arange(q0, q1, dtype=np.int64), np.diff(lims).astype(np.int64))
        held.append([qi, dist, ids.astype(np.int64)])
        total += len(dist)
        if total > 2 * max_results:
            radius = _shrink(held, max_results, metric)
            total = sum(len(p[1]) for p in held)
            logger.debug("more than %d results: radius now %g, %d held", 2 * max_results, radius, total)
    qi, ri, dist = (np.concatenate([p[i] for p in held]) for i in (0, 2, 1))
    if len(dist) > max_results:
        # the nearest max_results; ties at the boundary: first in (query, reference) order
        key = dist if metric == "l2" else -dist
        order = np.lexsort((ri, qi, key))[:max_results]
        order.sort()
        qi, ri, dist = qi[order], ri[order], dist[order]
    return qi, ri, dist


def _knn_search(xq: np.ndarray, xb: np.ndarray, k: int, metric: str):
    import faiss

    dist, ids = faiss.knn(xq, xb, k, faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
    qi = np.repeat(np.arange(len(xq), dtype=np.int64), k)
    ri, dist = ids.ravel().astype(np.int64), dist.ravel()
    found = ri >= 0  # fewer references than k
    return qi[found], ri[found], dist[found]


def search_descriptors(
    query_names: Sequence[str],
    query_vectors: np.ndarray,
    reference_names: Sequence[str],
    reference_vectors: np.ndarray,
    *,
    max_results: int = DEFAULT_MAX_RESULTS,
    knn: int | None = None,
    metric: str = "l2",
    max_dim: int | None = DEFAULT_MAX_DIM,
) -> Predictions:
    """Predictions (pairs and scores) of the official track-2 search over two descriptor sets."""
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if max_results < 1 or (knn is not None and knn < 1):
        raise ConfigError(f"max_results and knn must be at least 1, got {max_results} and {knn}")
    d = reference_vectors.shape[1]
    if max_dim is not None and d > max_dim:
        raise ConfigError(f"descriptors have {d} dimensions, more than the {max_dim} the track allows")
    if query_vectors.shape[1] != d:
        raise ConfigError(f"query descriptors have {query_vectors.shape[1]} dimensions, references {d}")
    xq = np.ascontiguousarray(query_vectors, dtype=np.float32)
    xb = np.ascontiguousarray(reference_vectors, dtype=np.float32)
    if knn is None:
        qi, ri, dist = _capped_range_search(xq, xb, max_results, metric)
    else:
        qi, ri, dist = _knn_search(xq, xb, knn, metric)
    scores = -dist.astype(np.float64) if metric == "l2" else dist.astype(np.float64)
    q_names = np.asarray(query_names, dtype=object)
    r_names = np.asarray(reference_names, dtype=object)
    logger.info("descriptor search: %d pairs from %d queries x %d references", len(qi), len(xq), len(xb))
    return Predictions(q_names[qi], r_names[ri], scores, None, "<descriptor search>")


@dataclass(frozen=True)
class DescriptorEvalResult:
    """The track-2 scores plus what was searched."""

    scores: EvalResult
    n_query_descriptors: int
    n_reference_descriptors: int
    dim: int

    def to_dict(self) -> dict[str, object]:
        return {
            **self.scores.to_dict(),
            "n_query_descriptors": self.n_query_descriptors,
            "n_reference_descriptors": self.n_reference_descriptors,
            "dim": self.dim,
        }

    def summary(self) -> str:
        head = (
            f"descriptor track: {self.n_query_descriptors} query and {self.n_reference_descriptors} "
            f"reference descriptors of {self.dim} dimensions"
        )
        return head + "\n" + self.scores.summary()


def _select(names: list[str], vectors: np.ndarray, ids: frozenset[str] | set[str] | None):
    if ids is None:
        return names, vectors
    keep = np.array([n in ids for n in names], dtype=bool)
    return [n for n, k in zip(names, keep, strict=True) if k], vectors[keep]


def evaluate_descriptors(
    gt: GroundTruth,
    queries: str | Path | tuple[Sequence[str], np.ndarray],
    references: str | Path | tuple[Sequence[str], np.ndarray],
    *,
    max_results: int = DEFAULT_MAX_RESULTS,
    knn: int | None = None,
    metric: str = "l2",
    max_dim: int | None = DEFAULT_MAX_DIM,
    query_ids: set[str] | frozenset[str] | None = None,
    reference_ids: set[str] | frozenset[str] | None = None,
) -> DescriptorEvalResult:
    """Search ``queries`` in ``references`` (HDF5 paths or ``(names, vectors)``) and score with µAP.

    ``query_ids`` / ``reference_ids`` (a selection) keep only those descriptors before the search.
    """
    q_names, q_vec = read_descriptors(queries) if isinstance(queries, (str, Path)) else queries
    r_names, r_vec = read_descriptors(references) if isinstance(references, (str, Path)) else references
    q_names, q_vec = _select(list(q_names), np.asarray(q_vec), query_ids)
    r_names, r_vec = _select(list(r_names), np.asarray(r_vec), reference_ids)
    for what, n in (("query", len(q_names)), ("reference", len(r_names))):
        if not n:
            raise ConfigError(f"no {what} descriptors to search (empty file or selection)")
    predictions = search_descriptors(
        q_names, q_vec, r_names, r_vec, max_results=max_results, knn=knn, metric=metric, max_dim=max_dim
    )
    scores = evaluate(gt, predictions, max_predictions=None)
    return DescriptorEvalResult(scores, len(q_names), len(r_names), int(r_vec.shape[1]))
