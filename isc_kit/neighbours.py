"""Nearest neighbours in a descriptor file: exact faiss search, or an approximate index above a size.

A :class:`Neighbours` holds the vectors of one *searched* descriptor file (usually the references;
any competition HDF5 file, see :mod:`isc_kit.evaluate.descriptors`) plus, for looking up the vector
of an image by id, any number of *other* descriptor files (the queries, the training set). All of them
are validated on load, each problem one line naming the file: ids that are not in the given
manifests, widths that differ, NaN or infinite rows.

Search is exact (``faiss.IndexFlatL2`` / ``IndexFlatIP``, as the official track-2 matching) up to
``approximate_above`` vectors (default :data:`APPROXIMATE_ABOVE`); above it an inverted-file index
(``IVF<nlist>,Flat``, ``nlist`` about ``2 * sqrt(n)``, searched with ``nprobe`` lists) is trained once
and cached beside the searched file as ``.<name>.<sha256[:16]>.<metric>.ivf<nlist>.faiss``: the content
hash of the descriptor file is in the name, so a changed file never meets a stale index. The cache
is written atomically (:func:`isc_kit.outputs.write_output`); a read-only folder only costs a rebuild.
Building reports to a progress bar (a widget bar in Jupyter, see :mod:`isc_kit.progress`) and adds
the vectors in chunks; faiss releases the GIL meanwhile, so a thread can build while the kernel serves.

Scores are the track's: the negated squared L2 distance, or the inner product (higher is closer).
An image not in any file is described with the baseline's model
(:func:`isc_kit.baseline.global_descriptor` of :func:`~isc_kit.baseline.describe_image`) unless a
``describe`` callable (your model: image file -> vector) is given.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ConfigError, InputFileError
from .outputs import write_output
from .progress import default_progress

logger = logging.getLogger(__name__)

#: Searched files with more vectors than this get the approximate (IVF) index.
APPROXIMATE_ABOVE = 200_000
METRICS = ("l2", "ip")
_CHUNK = 65_536  # vectors added per progress step
ImageInput = str | os.PathLike[str] | bytes | BinaryIO


@dataclass(frozen=True)
class Hit:
    """One neighbour: its id, score (higher is closer) and 1-based rank."""

    image_id: str
    score: float
    rank: int


def read_checked(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """``(ids, float32 vectors)`` of a competition HDF5 file (:func:`~isc_kit.evaluate.descriptors.read_descriptors`,
    the one reader); a :class:`ConfigError` (one line) if not usable."""
    from .evaluate.descriptors import read_descriptors

    path = Path(path)
    where = f"descriptor file {path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file; write one with `isc-kit baseline --descriptors-out`")
    try:
        return read_descriptors(path)
    except InputFileError as err:
        raise ConfigError(f"{where}: {err.problems[0].message}") from None


def _check_ids(path: Path, ids: Sequence[str], manifests: Mapping[str, Any]) -> None:
    known = [set(m.ids) for m in manifests.values()]
    stray = [i for i in ids if not any(i in k for k in known)]
    if stray:
        raise ConfigError(
            f"descriptor file {path}: {len(stray)} of {len(ids)} ids are not in the "
            f"{'/'.join(manifests)} manifest(s) (first: {stray[0]}); describe the pinned selection again "
            "or pass the manifests it was made from"
        )


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _nlist(n: int) -> int:
    return max(16, min(65_536, int(2 * math.sqrt(n))))


class Neighbours:
    """k nearest neighbours of any image in the searched descriptor file (see the module doc).

    ``search``: the descriptor file searched (or ``(ids, vectors)``); ``lookup``: more files whose
    vectors can be queried by id. ``manifests`` (``{set: Manifest}``) makes every id be checked
    against them. ``approximate``: ``None`` decides by size (``approximate_above``), ``True``/``False``
    forces. ``nprobe``: inverted lists visited per query (approximate only; more is slower and closer
    to exact). ``cache=False`` never writes the index beside the file.
    """

    def __init__(
        self,
        search: str | os.PathLike[str] | tuple[Sequence[str], np.ndarray],
        *,
        lookup: Iterable[str | os.PathLike[str]] = (),
        manifests: Mapping[str, Any] | None = None,
        metric: str = "l2",
        approximate: bool | None = None,
        approximate_above: int = APPROXIMATE_ABOVE,
        nprobe: int | None = None,
        cache: bool = True,
        describe: Callable[[ImageInput], np.ndarray] | None = None,
        progress: Any = None,
        build: bool = True,
    ):
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.metric = metric
        self.describe_fn = describe
        self.path: Path | None = None
        if isinstance(search, tuple):
            ids, vectors = list(search[0]), np.ascontiguousarray(search[1], dtype=np.float32)
            if vectors.ndim != 2 or len(ids) != len(vectors):
                raise ConfigError(f"search vectors: {len(ids)} ids but vectors of shape {vectors.shape}")
            if not np.isfinite(vectors).all():
                raise ConfigError("search vectors hold NaN or infinite values; recompute them")
        else:
            self.path = Path(search)
            ids, vectors = read_checked(self.path)
            if manifests:
                _check_ids(self.path, ids, manifests)
        if not ids:
            raise ConfigError(f"descriptor file {self.path or '<memory>'}: no vectors to search")
        self.ids: list[str] = ids
        self.vectors = vectors
        self.dim = int(vectors.shape[1])
        self._row = {i: r for r, i in enumerate(ids)}
        self._extra: dict[str, np.ndarray] = {}
        for other in lookup:
            o_ids, o_vec = read_checked(other)
            if o_vec.shape[1] != self.dim:
                raise ConfigError(
                    f"descriptor file {other}: {o_vec.shape[1]} dimensions, but {self.path or 'the searched set'} "
                    f"has {self.dim}; describe both with the same model"
                )
            if manifests:
                _check_ids(Path(other), o_ids, manifests)
            self._extra.update(zip(o_ids, o_vec, strict=True))
        self.approximate = len(ids) > approximate_above if approximate is None else bool(approximate)
        self.nlist = _nlist(len(ids)) if self.approximate else 0
        self.nprobe = nprobe or max(8, self.nlist // 32)
        self.cache = cache
        self.cache_path: Path | None = None
        self.index: Any = None
        if build:
            self.build(progress=progress)

    # ------------------------------------------------------------------------------ the index

    @property
    def ready(self) -> bool:
        return self.index is not None

    def __len__(self) -> int:
        return len(self.ids)

    def _cache_file(self) -> Path | None:
        if self.path is None or not self.cache or not self.approximate:
            return None
        digest = content_hash(self.path)[:16]
        return self.path.parent / f".{self.path.name}.{digest}.{self.metric}.ivf{self.nlist}.faiss"

    def build(self, progress: Any = None) -> None:
        """Make (or load from the cache) the index; ``progress`` as elsewhere (None: a bar in Jupyter)."""
        import faiss

        faiss_metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if not self.approximate:
            flat = faiss.IndexFlat(self.dim, faiss_metric)
            flat.add(self.vectors)
            self.index = flat
            return
        index: Any
        self.cache_path = self._cache_file()
        if self.cache_path is not None and self.cache_path.is_file():
            try:
                index = faiss.deserialize_index(np.fromfile(self.cache_path, dtype=np.uint8))
            except RuntimeError as err:
                logger.warning("index cache %s unreadable (%s); building anew", self.cache_path, err)
            else:
                if index.ntotal == len(self.ids) and index.d == self.dim:
                    logger.info("index loaded from %s", self.cache_path)
                    index.nprobe = self.nprobe
                    self.index = index
                    return
        n = len(self.ids)
        steps = 1 + math.ceil(n / _CHUNK)
        with default_progress(progress, f"index {n:,} vectors", steps) as bar:
            bar.set_size(0)
            quantizer = faiss.IndexFlat(self.dim, faiss_metric)
            index = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist, faiss_metric)
            train_n = min(n, 40 * self.nlist)  # faiss's advice: 30-256 training points per list
            if train_n < n:
                rows = np.sort(np.random.default_rng(0).choice(n, train_n, replace=False))
                index.train(self.vectors[rows])
            else:
                index.train(self.vectors)
            bar.file_done()
            for start in range(0, n, _CHUNK):
                index.add(self.vectors[start : start + _CHUNK])
                bar.file_done()
        index.nprobe = self.nprobe
        self.index = index
        if self.cache_path is not None:
            try:
                write_output(self.cache_path, faiss.serialize_index(index).tobytes())
                logger.info("index cached in %s", self.cache_path)
            except OSError as err:
                logger.warning("cannot cache the index beside %s: %s", self.path, err)

    # ------------------------------------------------------------------------------ queries

    def has(self, image_id: str) -> bool:
        return image_id in self._row or image_id in self._extra

    def vector_of(self, image_id: str) -> np.ndarray:
        """The stored vector of ``image_id`` (searched file first, then the lookup files)."""
        row = self._row.get(image_id)
        if row is not None:
            return self.vectors[row]
        found = self._extra.get(image_id)
        if found is None:
            raise ConfigError(
                f"{image_id} has no descriptor in {self.path or 'the searched set'} or the lookup files; "
                "check the id, or pass image= a file to describe it"
            )
        return found

    def describe(self, image: ImageInput) -> np.ndarray:
        """A vector for an image file (a path, bytes or a binary file) with the user's or the baseline's model."""
        import io

        from PIL import UnidentifiedImageError

        source = io.BytesIO(image) if isinstance(image, bytes) else image
        try:
            if self.describe_fn is not None:
                vector = np.asarray(self.describe_fn(source), dtype=np.float32).ravel()
            else:
                from .baseline import describe_image, global_descriptor

                vector = global_descriptor(describe_image(source))  # type: ignore[arg-type]
        except (OSError, UnidentifiedImageError) as err:
            raise ConfigError(
                f"cannot describe image {image if not isinstance(image, bytes) else '<bytes>'}: {err}"
            ) from None
        if vector.shape != (self.dim,):
            raise ConfigError(
                f"the describe model gives {vector.size} floats but {self.path or 'the searched set'} holds "
                f"{self.dim}-d vectors; pass describe= the model that made the file, or vector="
            )
        return vector

    def as_vector(self, what: str | np.ndarray | ImageInput) -> np.ndarray:
        """A query vector from an id, a vector, or an image file (path, bytes, binary file)."""
        if (isinstance(what, np.ndarray) and what.dtype != np.uint8) or isinstance(what, list | tuple):
            vector = np.asarray(what, dtype=np.float32).ravel()
            if vector.shape != (self.dim,):
                raise ConfigError(f"query vector has {vector.size} floats; the descriptors have {self.dim}")
            if not np.isfinite(vector).all():
                raise ConfigError("query vector holds NaN or infinite values")
            return vector
        if isinstance(what, np.ndarray):  # uint8 pixels: an image array
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(what).save(buf, format="PNG")
            return self.describe(buf.getvalue())
        if isinstance(what, str) and self.has(what):
            return self.vector_of(what)
        if isinstance(what, str | os.PathLike) and Path(what).is_file():
            return self.describe(what)
        if isinstance(what, bytes) or hasattr(what, "read"):
            return self.describe(what)  # type: ignore[arg-type]
        return self.vector_of(str(what))  # raises: unknown id

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices (``-1``: none) and scores (higher is closer) of the ``k`` nearest, for each row."""
        if self.index is None:
            raise ConfigError("the index is still being built; wait for the progress bar to finish")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        xq = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        dist, rows = self.index.search(xq, min(k, len(self.ids)))
        return rows, (-dist if self.metric == "l2" else dist)

    def query(
        self, what: str | np.ndarray | ImageInput, k: int = 10, *, offset: int = 0, exclude_self: bool = True
    ) -> list[Hit]:
        """Hits ``offset+1 .. offset+k`` for an id, a vector or an image file, nearest first.

        When ``what`` is an id of the searched file, that image itself is left out (``exclude_self``).
        """
        skip = exclude_self and isinstance(what, str) and what in self._row
        rows, scores = self.search_vectors(self.as_vector(what), offset + k + int(skip))
        hits: list[Hit] = []
        for r, s in zip(rows[0], scores[0], strict=True):
            if r < 0 or (skip and self.ids[r] == what):
                continue
            hits.append(Hit(self.ids[r], float(s), len(hits) + 1))
        return hits[offset : offset + k]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of each row of ``exact`` (indices) that ``found`` also holds (recall@k)."""
    k = exact.shape[1]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact, strict=True)]))


__all__ = ["APPROXIMATE_ABOVE", "Hit", "Neighbours", "content_hash", "read_checked", "recall_at"]
