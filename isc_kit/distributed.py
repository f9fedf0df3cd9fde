"""Baseline descriptors for a pinned selection on a Dask cluster (``dask.distributed``).

The selection is split into chunks of consecutive manifest rows, one Dask task each. A task gets its
chunk's images either through isc_kit's verified fetch (:func:`isc_kit.fetch`, MD5-checked, into a
folder of its own under the worker's local directory) or, with ``shared_dir``, straight from a folder
every worker sees (each file's MD5 checked against the manifest as it is read); then it computes the
baseline's descriptor-track vectors (:func:`isc_kit.baseline.global_descriptor`). The client writes the
chunks into the HDF5 file at their manifest offsets as they complete. Dask retries a task that raised
(``retries``) and reschedules one whose worker died. Progress: pass ``progress=distributed.progress``
(a widget in a notebook) or watch the Dask dashboard.

Workers get everything through the task's arguments (the manifest chunk and the :class:`Source`, a
plain dataclass with the endpoint in it), never through their environment.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .baseline import GLOBAL_DIM, describe_image, global_descriptor
from .errors import ChecksumMismatchError, ConfigError, IscKitError
from .outputs import output_path
from .source import Source

if TYPE_CHECKING:
    from distributed import Client

    from .manifest import Manifest

logger = logging.getLogger(__name__)

DEFAULT_CHUNK = 1_000
DEFAULT_RETRIES = 3
_COPY_ROWS = 65_536


class ChunkFetchError(IscKitError, OSError):
    """Some images of a chunk could not be fetched or read (the task fails; Dask may retry it)."""

    exit_code = 4


@dataclass(frozen=True)
class DaskDescribeResult:
    """What one selection's run wrote."""

    output: str
    set_name: str
    n_images: int
    n_written: int
    n_unreadable: int
    n_chunks: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _describe_bytes(data: bytes, name: str) -> np.ndarray | None:
    try:
        return global_descriptor(describe_image(io.BytesIO(data)))
    except (OSError, ValueError) as err:
        logger.warning("skipping %s: %s", name, err)
        return None


def _read_verified(folder: Path, relpath: str, md5: Any, image_id: str) -> bytes:
    try:
        data = (folder / relpath).read_bytes()
    except OSError as err:
        raise ChunkFetchError(
            f"{folder / relpath}: cannot read ({err.strerror}); a shared folder must hold the pinned images "
            "(isc-kit fetch PINNED FOLDER), or leave the folders out to fetch on the workers"
        ) from err
    if isinstance(md5, str):
        actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if actual != md5:
            raise ChecksumMismatchError(
                f"{folder / relpath}", md5, actual, action=f"{image_id} was not described"
            )
    return data


def _chunk_folder(work_dir: str | None, chunk: Manifest, start: int) -> Path:
    if work_dir is None:
        from distributed import get_worker

        work_dir = get_worker().local_directory
    return Path(work_dir) / "isc-kit" / chunk.set_name / f"chunk-{start:09d}-{chunk.fingerprint()[7:19]}"


def describe_chunk(
    chunk: Manifest,
    start: int,
    *,
    source: Source | None = None,
    shared_dir: str | None = None,
    work_dir: str | None = None,
    keep_images: bool = False,
    fetch_options: dict[str, Any] | None = None,
) -> tuple[int, np.ndarray, np.ndarray]:
    """One task: ``(start, vectors (n, GLOBAL_DIM), readable mask)`` for the rows of ``chunk``."""
    folder = Path(shared_dir) if shared_dir is not None else _chunk_folder(work_dir, chunk, start)
    if shared_dir is None:
        from .transfer import fetch

        result = fetch(chunk, folder, source=source, **(fetch_options or {}))
        if not result.ok:
            first = "; ".join(f"{rel}: {why}" for rel, why in result.failed[:3])
            raise ChunkFetchError(
                f"chunk at row {start}: {len(result.failed)} image(s) not fetched ({first})"
            )
    vectors = np.zeros((len(chunk), GLOBAL_DIM), dtype=np.float32)
    ok = np.zeros(len(chunk), dtype=bool)
    for i, (image_id, relpath, md5) in enumerate(zip(chunk.ids, chunk.relpaths, chunk.md5s, strict=True)):
        check = (md5 or None) if shared_dir is not None else None  # fetched files were verified a moment ago
        vec = _describe_bytes(_read_verified(folder, relpath, check, image_id), image_id)
        if vec is not None:
            vectors[i], ok[i] = vec, True
    if shared_dir is None and not keep_images:
        shutil.rmtree(folder, ignore_errors=True)
    return start, vectors, ok


def _chunks(manifest: Manifest, chunk_size: int) -> list[tuple[int, Manifest]]:
    """Consecutive row ranges as manifests of their own (O(chunk) each: a million rows stay cheap)."""
    n = len(manifest)
    return [
        (start, manifest.take(range(start, min(start + chunk_size, n)))) for start in range(0, n, chunk_size)
    ]


def _write_in_order(futures: list, n: int, output: Path, ids: list[str]) -> tuple[int, int]:
    """Chunks into ``output`` at their offsets as they complete; unreadable rows are left out."""
    import h5py
    from distributed import as_completed

    output.parent.mkdir(parents=True, exist_ok=True)
    parts = output.with_name(f".{output.name}.parts")
    ok_all = np.zeros(n, dtype=bool)
    try:
        with h5py.File(parts, "w") as f:
            vectors = f.create_dataset("vectors", shape=(n, GLOBAL_DIM), dtype=np.float32)
            for future in as_completed(futures):
                start, chunk_vectors, ok = future.result()
                vectors[start : start + len(ok)] = chunk_vectors
                ok_all[start : start + len(ok)] = ok
                future.release()
        kept = np.flatnonzero(ok_all)
        with output_path(output) as final, h5py.File(parts, "r") as src, h5py.File(final, "w") as dst:
            out = dst.create_dataset("vectors", shape=(len(kept), GLOBAL_DIM), dtype=np.float32)
            for b0 in range(0, len(kept), _COPY_ROWS):  # in blocks: never all vectors in memory
                rows = kept[b0 : b0 + _COPY_ROWS]
                out[b0 : b0 + len(rows)] = src["vectors"][rows[0] : rows[-1] + 1][rows - rows[0]]
            names = np.array([ids[i].encode("ascii") for i in kept], dtype=object)
            dst.create_dataset("image_names", data=names, dtype=h5py.string_dtype("ascii"))
    finally:
        parts.unlink(missing_ok=True)
    return len(kept), n - len(kept)


def describe_on_dask(
    client: Client,
    manifest: Manifest,
    output: str | Path,
    *,
    source: Source | None = None,
    shared_dir: str | Path | None = None,
    work_dir: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    retries: int = DEFAULT_RETRIES,
    keep_images: bool = False,
    fetch_options: dict[str, Any] | None = None,
    progress: Callable[[list], Any] | None = None,
) -> DaskDescribeResult:
    """Baseline descriptor-track vectors of every image of ``manifest``, computed on ``client``'s cluster,
    written in manifest order to the HDF5 file ``output`` (see the module docstring).

    ``source`` (with its endpoint) goes to the workers as is; ``fetch_options`` are passed to
    :func:`isc_kit.fetch` (``jobs``, ``retries``, ``mirrors``...). ``progress`` is called once with the
    list of chunk futures, e.g. ``distributed.progress``.
    """
    if chunk_size < 1 or retries < 0:
        raise ConfigError(f"chunk_size must be >= 1 and retries >= 0, got {chunk_size} and {retries}")
    if len(manifest) == 0:
        raise ConfigError(f"the {manifest.set_name} manifest is empty: nothing to describe")
    if shared_dir is not None and not Path(shared_dir).is_dir():
        raise ConfigError(f"{shared_dir} is not a folder; give the folder the pinned images are in")
    started = time.perf_counter()
    chunks = _chunks(manifest, chunk_size)
    logger.info(
        "describing %d %s images in %d chunks on %s", len(manifest), manifest.set_name, len(chunks), client
    )
    options = {
        "source": source,
        "shared_dir": None if shared_dir is None else str(shared_dir),
        "work_dir": work_dir,
        "keep_images": keep_images,
        "fetch_options": fetch_options,
    }
    run = uuid.uuid4().hex[:12]
    futures = [
        client.submit(
            describe_chunk,
            chunk,
            start,
            **options,
            retries=retries,
            key=f"describe-{manifest.set_name}-{run}-{start}",
        )
        for start, chunk in chunks
    ]
    if progress is not None:
        progress(futures)
    try:
        written, unreadable = _write_in_order(futures, len(manifest), Path(output), list(manifest.ids))
    except BaseException:
        client.cancel(futures)
        raise
    result = DaskDescribeResult(
        output=str(output),
        set_name=manifest.set_name,
        n_images=len(manifest),
        n_written=written,
        n_unreadable=unreadable,
        n_chunks=len(chunks),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("wrote %d descriptors to %s in %.1f s", written, output, result.seconds)
    return result
