"""A dependency-light copy-detection baseline (Pillow and numpy only).

Each image is described by small grayscale thumbnails of a few regions (the whole picture,
its four corners and centre at 3/4 size, and, for queries, centre views turned by ±10° and ±20°),
each made zero-mean and unit-length so brightness and contrast changes cancel out. A
query/reference score is the best cosine similarity over all region pairs, so a crop of a
reference meets the matching reference region and a reference pasted into a bigger picture
meets the matching query region. (Centring scores on each query's background similarity
was tried and lowered µAP on the demo fixture, so raw cosines are kept.) Search is brute force in bounded blocks: fine for subsets of up to some
tens of thousands of references.

For the descriptor track (one vector per image, compared by L2) an image's vector is its whole-picture and
centre regions side by side (128 floats, unit length): :func:`global_descriptor`. On the demo fixture that
scored about as well as four regions (256 floats, the track's maximum) at half the size.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .catalog import SETS
from .errors import ConfigError
from .evaluate import write_predictions

logger = logging.getLogger(__name__)

SIDE = 8  # thumbnail side: descriptors are SIDE * SIDE floats per region
_BASE_REGIONS = (
    (0.0, 0.0, 1.0, 1.0),
    (0.0, 0.0, 0.75, 0.75),
    (0.25, 0.0, 1.0, 0.75),
    (0.0, 0.25, 0.75, 1.0),
    (0.25, 0.25, 1.0, 1.0),
    (0.125, 0.125, 0.875, 0.875),
)
GLOBAL_REGIONS = (0, 5)  # whole picture and centre: the descriptor-track vector
GLOBAL_DIM = len(GLOBAL_REGIONS) * SIDE * SIDE
_QUERY_ANGLES = (-20.0, -10.0, 10.0, 20.0)  # extra centre views of queries, for rotated copies
_BLOCK_FLOATS = 16_000_000  # similarity values computed at once (64 MB)
_INLINE_BELOW = 64  # fewer files than this are described without a process pool


def _thumb(img: Image.Image, box: tuple[float, float, float, float]) -> np.ndarray:
    w, h = img.size
    x0, y0, x1, y1 = box
    small = img.resize((SIDE, SIDE), Image.Resampling.BOX, box=(x0 * w, y0 * h, x1 * w, y1 * h))
    v = np.asarray(small, dtype=np.float32).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else v


def describe_image(path: str | Path | BinaryIO, *, query: bool = False) -> np.ndarray:
    """Region descriptors of one image (a path or a binary file): ``(regions, SIDE*SIDE)`` float32, unit rows."""
    with Image.open(path) as im:
        im.draft("L", (8 * SIDE, 8 * SIDE))  # JPEG: decode at reduced size, much faster
        img = im.convert("L")
    if min(img.size) > 16 * SIDE:
        img.thumbnail((16 * SIDE, 16 * SIDE), Image.Resampling.BOX)
    rows = [_thumb(img, box) for box in _BASE_REGIONS]
    if query:
        for angle in _QUERY_ANGLES:
            turned = img.rotate(angle, Image.Resampling.BILINEAR)
            rows.append(_thumb(turned, (0.2, 0.2, 0.8, 0.8)))
    return np.stack(rows)


def global_descriptor(regions: np.ndarray) -> np.ndarray:
    """The descriptor-track vector(s) of region descriptors ``(..., regions, SIDE*SIDE)``: ``(..., GLOBAL_DIM)``."""
    picked = regions[..., GLOBAL_REGIONS, :]
    flat = picked.reshape(*picked.shape[:-2], GLOBAL_DIM)
    return (flat / np.sqrt(len(GLOBAL_REGIONS))).astype(np.float32)


def n_regions(query: bool) -> int:
    return len(_BASE_REGIONS) + (len(_QUERY_ANGLES) if query else 0)


def _describe_or_none(args: tuple[str, bool]) -> np.ndarray | None:
    path, query = args
    try:
        return describe_image(path, query=query)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        logger.warning("skipping %s: %s", path, err)
        return None


def list_images(folder: str | Path, set_names: Sequence[str]) -> tuple[list[str], list[Path]]:
    """Ids and paths of ``<id>.jpg`` files in ``folder`` whose id belongs to one of ``set_names``."""
    patterns = [re.compile(SETS[s].id_pattern) for s in set_names]
    ids, paths, skipped = [], [], 0
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg") or not p.is_file():
            continue
        if any(pat.match(p.stem) for pat in patterns):
            ids.append(p.stem)
            paths.append(p)
        else:
            skipped += 1
    if skipped:
        logger.warning(
            "%s: skipped %d JPEG(s) whose name is not a %s id", folder, skipped, "/".join(set_names)
        )
    return ids, paths


def describe_all(
    paths: Sequence[Path],
    *,
    query: bool,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``(n, regions, dim)`` for ``paths`` and a mask of those that could be read.

    Uses a process pool of ``jobs`` workers (default: CPU count) unless there are few files;
    results stream into one preallocated array, so memory is that array plus a few chunks.
    """
    out = np.zeros((len(paths), n_regions(query), SIDE * SIDE), dtype=np.float32)
    ok = np.zeros(len(paths), dtype=bool)
    jobs = jobs or os.cpu_count() or 1
    tasks = [(str(p), query) for p in paths]
    if jobs == 1 or len(paths) < _INLINE_BELOW:
        results: Iterator[np.ndarray | None] = map(_describe_or_none, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(_describe_or_none, tasks, chunksize=32)
    try:
        for i, desc in enumerate(results):
            if desc is not None:
                out[i] = desc
                ok[i] = True
            if progress is not None:
                progress(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out, ok


def search(
    query_desc: np.ndarray, reference_desc: np.ndarray, *, top_k: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each query index: its ``top_k`` reference indices and scores, best first.

    Similarity is the maximum cosine over region pairs, computed in blocks of about
    ``_BLOCK_FLOATS`` values while a running top ``top_k`` is kept.
    """
    nq, kq, d = query_desc.shape
    nr, kr, _ = reference_desc.shape
    keep = min(nr, top_k)
    refs = reference_desc.reshape(nr * kr, d)
    r_block = max(1, min(nr, _BLOCK_FLOATS // (kq * kr)))
    q_block = max(1, min(nq, _BLOCK_FLOATS // (kq * kr * r_block)))
    for q0 in range(0, nq, q_block):
        q = query_desc[q0 : q0 + q_block]
        b = len(q)
        best_s = np.full((b, 0), -np.inf, dtype=np.float32)
        best_i = np.zeros((b, 0), dtype=np.int64)
        for r0 in range(0, nr, r_block):
            r1 = min(nr, r0 + r_block)
            sims = q.reshape(b * kq, d) @ refs[r0 * kr : r1 * kr].T
            sims = sims.reshape(b, kq, r1 - r0, kr).max(axis=(1, 3))
            cand_s = np.concatenate([best_s, sims], axis=1)
            cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(r0, r1), (b, r1 - r0))], axis=1)
            if cand_s.shape[1] > keep:
                part = np.argpartition(-cand_s, keep - 1, axis=1)[:, :keep]
                cand_s = np.take_along_axis(cand_s, part, axis=1)
                cand_i = np.take_along_axis(cand_i, part, axis=1)
            best_s, best_i = cand_s, cand_i
        order = np.argsort(-best_s, axis=1, kind="stable")
        best_s = np.take_along_axis(best_s, order, axis=1)
        best_i = np.take_along_axis(best_i, order, axis=1)
        for j in range(b):
            yield q0 + j, best_i[j], best_s[j]


@dataclass(frozen=True)
class BaselineResult:
    """What a baseline run read and wrote."""

    output: str | None
    n_queries: int
    n_references: int
    n_predictions: int
    n_unreadable: int
    seconds: float
    descriptors: tuple[str, str] | None = None  # query and reference HDF5 files written

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _check_folders(query_dir: str | Path, reference_dir: str | Path, top_k: int, outputs: tuple) -> None:
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if all(o is None for o in outputs):
        raise ConfigError("nothing to write: give a predictions output and/or descriptor outputs")
    for folder in (query_dir, reference_dir):
        if not Path(folder).is_dir():
            raise ConfigError(f"{folder} is not a folder; expected a folder of <id>.jpg images")


def run_baseline(
    query_dir: str | Path,
    reference_dir: str | Path,
    output: str | Path | None,
    *,
    top_k: int = 10,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    descriptors_out: tuple[str | Path, str | Path] | None = None,
) -> BaselineResult:
    """Describe both folders; write each query's ``top_k`` references to the predictions CSV ``output``
    and/or the descriptor-track vectors to ``descriptors_out`` (query and reference HDF5 files)."""
    _check_folders(query_dir, reference_dir, top_k, (output, descriptors_out))
    started = time.perf_counter()
    q_ids, q_paths = list_images(query_dir, ("query", "phase2"))
    r_ids, r_paths = list_images(reference_dir, ("reference",))
    logger.info("baseline: %d queries against %d references, top %d each", len(q_ids), len(r_ids), top_k)
    q_desc, q_ok = describe_all(q_paths, query=True, jobs=jobs, progress=progress)
    r_desc, r_ok = describe_all(r_paths, query=False, jobs=jobs, progress=progress)
    q_idx, r_idx = np.flatnonzero(q_ok), np.flatnonzero(r_ok)
    for what, folder, idx in (("query", query_dir, q_idx), ("reference", reference_dir, r_idx)):
        if not len(idx):
            raise ConfigError(f"no readable {what} images (<id>.jpg) in {folder}")
    if descriptors_out is not None:
        from .evaluate.descriptors import write_descriptors

        for path, ids, desc, idx in (
            (descriptors_out[0], q_ids, q_desc, q_idx),
            (descriptors_out[1], r_ids, r_desc, r_idx),
        ):
            write_descriptors(path, [ids[i] for i in idx], global_descriptor(desc[idx]))

    def rows() -> Iterator[tuple[str, str, float]]:
        for qi, refs, scores in search(q_desc[q_idx], r_desc[r_idx], top_k=top_k):
            for ri, s in zip(refs, scores, strict=True):
                yield q_ids[q_idx[qi]], r_ids[r_idx[ri]], float(s)

    n = write_predictions(output, rows()) if output is not None else 0
    result = BaselineResult(
        output=None if output is None else str(output),
        n_queries=len(q_idx),
        n_references=len(r_idx),
        n_predictions=n,
        n_unreadable=int((~q_ok).sum() + (~r_ok).sum()),
        seconds=round(time.perf_counter() - started, 3),
        descriptors=None if descriptors_out is None else (str(descriptors_out[0]), str(descriptors_out[1])),
    )
    logger.info("baseline wrote %d predictions to %s in %.1f s", n, output, result.seconds)
    return result
