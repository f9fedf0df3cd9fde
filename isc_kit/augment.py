"""Seeded augmented training copies with AugLy: a folder, a pairs CSV and a pinned manifest.

From a pinned training selection and its fetched folder, every source image gets ``copies`` augmented
copies. Copy ``c`` of source ``T000123`` is ``A00012301`` (``A`` + the source digits + two copy digits);
its transforms and their strengths are drawn from a ``random.Random`` seeded with the SHA-256 of
``(seed, source id, copy)``, so a copy does not depend on process order, worker count or machine. Each
copy is encoded as a JPEG with fixed Pillow parameters, so the same seed gives the same bytes.

Parameters (params.yaml ``augment:``)::

    sets: [training]     # the selections dvc.yaml's augment stage runs on
    copies: 2            # copies per source image (0..99)
    seed: 0
    quality: 90          # JPEG quality of the written copies (1..95)
    per_copy: 2          # transforms applied per copy, drawn from the list (default: all of them)
    transforms:          # AugLy image functions; a [low, high] strength is drawn uniformly
      - {name: rotate, degrees: [-20, 20]}
      - {name: blur, radius: [0.5, 2.0]}

Outputs: ``FOLDER/<augmented_id>.jpg``, a pairs CSV (``augmented_id,source_id,transforms``) and the
pinned manifest of the copies (MD5s, sizes) that ``isc-kit verify`` checks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .augment_transforms import (  # noqa: F401 - the step's names, importable from isc_kit.augment
    AUG_PREFIX,
    MAX_COPIES,
    PAIRS_COLUMNS,
    TRANSFORMS,
    AugmentError,
    AugmentParams,
    TransformSpec,
    augment_image,
    augmented_id,
    copy_rng,
    describe_transforms,
    draw,
)
from .placement import place_folder

if TYPE_CHECKING:
    from distributed import Client

    from .manifest import Manifest

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class AugmentResult:
    folder: str
    pairs: str
    manifest: str
    n_sources: int
    n_copies: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


Row = tuple[str, str, str, str, int]  # augmented_id, source_id, transforms, md5, size


def augment_source(params: AugmentParams, source_id: str, source_path: str, out_folder: str) -> list[Row]:
    """All copies of one source image, written into ``out_folder``; their rows."""
    data = Path(source_path).read_bytes()
    rows = []
    for copy in range(params.copies):
        chosen = draw(params, source_id, copy)
        jpeg = augment_image(data, chosen, params.quality)
        aug = augmented_id(source_id, copy)
        (Path(out_folder) / f"{aug}.jpg").write_bytes(jpeg)
        md5 = hashlib.md5(jpeg, usedforsecurity=False).hexdigest()
        rows.append((aug, source_id, describe_transforms(chosen), md5, len(jpeg)))
    return rows


def _job(args: tuple[AugmentParams, str, str, str]) -> list[Row]:
    return augment_source(*args)


def check_inputs(manifest: Manifest, images: str | os.PathLike[str], params: AugmentParams) -> list[str]:
    """The source paths, in manifest order; every problem is raised before anything is written."""
    if len(manifest) == 0:
        raise AugmentError(f"the {manifest.set_name} selection is empty: nothing to augment; widen it")
    folder = Path(images)
    if not folder.is_dir():
        raise AugmentError(
            f"{folder}: not a folder; fetch the selection first (isc-kit fetch PINNED {folder})"
        )
    for image_id in manifest.ids:
        if len(image_id) > 8:
            raise AugmentError(f"{image_id}: ids longer than 8 characters cannot take a copy number")
    paths = [str(folder / rel) for rel in manifest.relpaths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise AugmentError(
            f"{len(missing)} source image(s) missing, first {missing[0]}; "
            f"fetch them (isc-kit fetch PINNED {folder}) and run again"
        )
    return paths


def augment(
    manifest: Manifest,
    images: str | os.PathLike[str],
    out_folder: str | os.PathLike[str],
    pairs_csv: str | os.PathLike[str],
    pinned_out: str | os.PathLike[str],
    params: AugmentParams,
    *,
    jobs: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> AugmentResult:
    """Augmented copies of every image of ``manifest`` (found under ``images``), over ``jobs`` processes."""
    import time

    started = time.perf_counter()
    paths = check_inputs(manifest, images, params)
    out = Path(out_folder)
    tmp = out.with_name(f".{out.name}.isc-tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    work = [(params, i, p, str(tmp)) for i, p in zip(manifest.ids, paths, strict=True)]
    try:
        rows = _run(work, jobs, progress)
        _write_tables(rows, manifest, pairs_csv, pinned_out)
        if out.exists():
            shutil.rmtree(out)
        place_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - started
    logger.info("augmented %d images into %d copies in %.1f s", len(paths), len(rows), seconds)
    return AugmentResult(str(out), str(pairs_csv), str(pinned_out), len(paths), len(rows), seconds)


def _run(
    work: list[tuple[AugmentParams, str, str, str]], jobs: int | None, progress: Callable[[int], Any] | None
) -> list[Row]:
    jobs = jobs or os.cpu_count() or 1
    rows: list[Row] = []
    if jobs == 1 or len(work) < 2:
        results: Iterable[list[Row]] = map(_job, work)
        for r in results:
            rows.extend(r)
            if progress:
                progress(1)
        return rows
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(min(jobs, len(work))) as pool:
        for r in pool.imap_unordered(_job, work, chunksize=max(1, len(work) // (jobs * 8))):
            rows.extend(r)
            if progress:
                progress(1)
    return rows


def _write_tables(
    rows: list[Row], manifest: Manifest, pairs_csv: str | os.PathLike[str], pinned_out: str | os.PathLike[str]
) -> None:
    from .manifest import Manifest as _Manifest
    from .outputs import write_output
    from .pinned import write_pinned

    rows.sort(key=lambda r: r[0])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PAIRS_COLUMNS)
    writer.writerows(r[:3] for r in rows)
    write_output(pairs_csv, text.getvalue().encode("utf-8"), make_parents=True)
    pinned = _Manifest.from_rows(
        "augmented",
        manifest.bucket,
        AUG_PREFIX,
        ((a, f"{a}.jpg", md5, size) for a, _s, _t, md5, size in rows),
        selection=f"augment of {manifest.fingerprint()[:19]}",
    )
    write_pinned(pinned, pinned_out)


def load_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """The pairs CSV's rows ``(augmented_id, source_id, transforms)``."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if tuple(header or ()) != PAIRS_COLUMNS:
            raise AugmentError(f"{path}: not a pairs CSV (header must be {','.join(PAIRS_COLUMNS)})")
        return [(r[0], r[1], r[2]) for r in reader]


# ---------------------------------------------------------------------------------------------- Dask


def _dask_chunk(params: AugmentParams, items: list[tuple[str, str]], out_folder: str) -> list[Row]:
    rows: list[Row] = []
    for source_id, path in items:
        rows.extend(augment_source(params, source_id, path, out_folder))
    return rows


def augment_on_dask(
    client: Client,
    manifest: Manifest,
    shared_dir: str | os.PathLike[str],
    out_folder: str | os.PathLike[str],
    pairs_csv: str | os.PathLike[str],
    pinned_out: str | os.PathLike[str],
    params: AugmentParams,
    *,
    chunk_size: int = 1_000,
    retries: int = 3,
) -> AugmentResult:
    """:func:`augment` on a Dask cluster: chunks of consecutive rows, one task each, reading sources from
    ``shared_dir`` and writing copies into ``out_folder`` (both seen by every worker); the client writes
    the pairs CSV and the pinned manifest. Same seed -> the same bytes as :func:`augment`."""
    import time

    started = time.perf_counter()
    paths = check_inputs(manifest, shared_dir, params)
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    items = list(zip(manifest.ids, paths, strict=True))
    futures = [
        client.submit(_dask_chunk, params, items[i : i + chunk_size], str(out), retries=retries, pure=False)
        for i in range(0, len(items), chunk_size)
    ]
    rows: list[Row] = []
    for chunk_rows in client.gather(futures):
        rows.extend(chunk_rows)
    _write_tables(rows, manifest, pairs_csv, pinned_out)
    seconds = time.perf_counter() - started
    return AugmentResult(str(out), str(pairs_csv), str(pinned_out), len(paths), len(rows), seconds)


# ---------------------------------------------------------------------------------------------- self-check


def self_check(
    pairs_csv: str | os.PathLike[str],
    sources: str | os.PathLike[str],
    augmented: str | os.PathLike[str],
    *,
    top_k: int = 5,
    jobs: int | None = None,
) -> dict[str, float | int]:
    """The eval's baseline scored on "augmented copies as queries, their sources as references", with
    the pairs CSV as the (known) ground truth: recall@1, recall@``top_k`` and µAP over the ``top_k``
    predictions of every copy (the competition's definition: one list of all predictions ranked by
    score, precision summed at each true pair, divided by the number of copies)."""
    import numpy as np

    from .baseline import describe_all, search

    pairs = load_pairs(pairs_csv)
    if not pairs:
        raise AugmentError(f"{pairs_csv}: no pairs to score")
    source_ids = sorted({s for _a, s, _t in pairs})
    src_paths = [Path(sources) / f"{s}.jpg" for s in source_ids]
    aug_paths = [Path(augmented) / f"{a}.jpg" for a, _s, _t in pairs]
    missing = [p for p in (*src_paths, *aug_paths) if not p.is_file()]
    if missing:
        raise AugmentError(f"{len(missing)} image(s) of {pairs_csv} missing, first {missing[0]}")
    ref_desc, _ok_r = describe_all(src_paths, query=False, jobs=jobs)
    query_desc, _ok_q = describe_all(aug_paths, query=True, jobs=jobs)
    truth = [source_ids.index(s) for _a, s, _t in pairs]
    hits1 = hitsk = 0
    scores: list[float] = []
    labels: list[bool] = []
    for qi, refs, sims in search(query_desc, ref_desc, top_k=top_k):
        right = refs == truth[qi]
        hits1 += bool(right[:1].any())
        hitsk += bool(right.any())
        scores.extend(float(s) for s in sims)
        labels.extend(bool(r) for r in right)
    order = np.argsort(-np.asarray(scores), kind="stable")
    ranked = np.asarray(labels)[order]
    precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    muap = float(precision[ranked].sum() / len(pairs))
    n = len(pairs)
    return {"copies": n, "recall_at_1": hits1 / n, f"recall_at_{top_k}": hitsk / n, "muap": muap}
