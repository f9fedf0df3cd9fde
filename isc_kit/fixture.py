"""A deterministic synthetic mini-ISC: real JPEGs, edited-copy queries, publisher-format CSVs.

Every image is a pure function of ``(scale, seed, set, number)``: its random generator is seeded
from a BLAKE2 digest of those values, so the same call gives the same bytes (and MD5) on every
machine with the same Pillow build. About ``match_fraction`` of the queries (phase 1 and phase 2)
are edited copies of a reference; the rest are distractors. As in the real challenge, some Phase-2
copies also carry a transform no Phase-1 query has (a mirror image). :func:`materialize` writes the
tree in the bucket's key layout plus ``metadata/`` (metadata CSVs and each phase's ground truth under
the publisher's file name), cached on disk.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import astuple, dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

from ._proc import pid_alive
from .catalog import DEFAULT_BUCKET, PHASES, get_set
from .errors import ConfigError
from .fixture_images import TILE, compose, edit, random_size

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes, so old caches are not reused (it seeds every image).
FORMAT_VERSION = 2
#: Bump when the cached tree changes without re-seeding every image (a new or renamed file, one set's images).
TREE_VERSION = 2
CACHE_ENV = "ISC_KIT_CACHE_DIR"
#: Order in which sets are generated and yielded.
SET_ORDER = ("reference", "query", "training", "phase2")
QUERY_SETS = tuple(p.query_set for p in PHASES.values())
#: Query set -> the publisher's ground-truth file name (``public_ground_truth.csv``, ``final_ground_truth.csv``).
GROUND_TRUTH_NAMES = {p.query_set: p.ground_truth_name for p in PHASES.values()}
#: Share of the matched Phase-2 queries that are also mirrored: a transform Phase 1 never shows.
PHASE2_UNSEEN_SHARE = 0.3
METADATA_HEADER = "image_id,s3_uri,md5_checksum\n"
GROUND_TRUTH_HEADER = "query_id,reference_id\n"
_CHUNK = 16  # images per worker task


@dataclass(frozen=True)
class Scale:
    """How many images of each set, and how they look (side range, JPEG quality, grain)."""

    name: str
    references: int
    queries: int
    training: int
    phase2: int
    match_fraction: float = 0.2
    min_side: int = 256
    max_side: int = 1024
    quality: int = 90
    grain: float = 1.4  # texture strength: the main knob of the JPEG size

    def __post_init__(self) -> None:
        for set_name in SET_ORDER:
            n, cap = self.count(set_name), get_set(set_name).count
            if not 0 <= n <= cap:
                raise ConfigError(f"scale {self.name!r}: {set_name} count {n} is outside 0..{cap}")
        if not 0.0 <= self.match_fraction <= 1.0:
            raise ConfigError(f"scale {self.name!r}: match_fraction {self.match_fraction} is outside 0..1")
        if not 32 <= self.min_side <= self.max_side <= TILE:
            raise ConfigError(f"scale {self.name!r}: need 32 <= min_side <= max_side <= {TILE}")
        if not 30 <= self.quality <= 100 or self.grain < 0:
            raise ConfigError(f"scale {self.name!r}: quality must be in 30..100 and grain >= 0")

    def count(self, set_name: str) -> int:
        """Number of images of ``set_name`` at this scale."""
        get_set(set_name)
        return {
            "reference": self.references,
            "query": self.queries,
            "training": self.training,
            "phase2": self.phase2,
        }[set_name]

    @property
    def total(self) -> int:
        return sum(self.count(s) for s in SET_ORDER)


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("tiny", 40, 20, 20, 10, min_side=128, max_side=256, quality=85),
        Scale("demo", 1_000, 250, 1_000, 50),
        Scale("bench", 10_000, 1_000, 0, 0, grain=1.6),
    )
}


def get_scale(name: str) -> Scale:
    """The predefined scale called ``name``."""
    try:
        return SCALES[name]
    except KeyError:
        raise ConfigError(f"unknown fixture scale {name!r}; choose one of {', '.join(SCALES)}") from None


def _as_scale(scale: Scale | str) -> Scale:
    return scale if isinstance(scale, Scale) else get_scale(scale)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded from a stable digest of ``(seed, *parts)`` (never Python's ``hash``)."""
    text = "/".join(str(p) for p in ("isc_kit.fixture", FORMAT_VERSION, seed, *parts))
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


@lru_cache(maxsize=1)
def _grain_tile() -> Image.Image:
    """Film-grain-like noise centred on 128 (fine uniform noise over a mottle), shared by all images.

    Built once per process from a fixed seed; images take random windows of it, which is much
    cheaper than drawing fresh noise for every picture.
    """
    rng = _rng(0, "grain-tile")
    n = TILE
    fine = rng.integers(-10, 11, (n, n), dtype=np.int16)
    coarse = Image.fromarray(rng.integers(0, 256, (n // 6, n // 6), dtype=np.uint8))
    mottle = np.asarray(coarse.resize((n, n), Image.Resampling.BILINEAR), np.int16) - 128
    return Image.fromarray(np.clip(128 + fine + mottle // 4, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- the plan


@lru_cache(maxsize=32)
def _matches(scale: Scale, seed: int, set_name: str) -> dict[int, int]:
    """Query number -> reference number for the matched queries of a query set."""
    n = scale.count(set_name)
    k = round(n * scale.match_fraction) if scale.references else 0
    rng = _rng(seed, set_name, "matches")
    chosen = np.sort(rng.choice(n, size=k, replace=False))
    refs = rng.integers(0, scale.references, size=k)
    first = get_set(set_name).first
    return {first + int(q): int(r) for q, r in zip(chosen, refs, strict=True)}


def ground_truth(scale: Scale | str, seed: int = 0, set_name: str = "query") -> list[tuple[str, str]]:
    """``(query_id, reference_id or "")`` for every query of ``set_name``, sorted by query id."""
    scale = _as_scale(scale)
    if set_name not in QUERY_SETS:
        raise ConfigError(f"ground truth exists for {' and '.join(QUERY_SETS)}, not {set_name!r}")
    iset, refs = get_set(set_name), get_set("reference")
    matches = _matches(scale, seed, set_name)
    rows = []
    for number in range(iset.first, iset.first + scale.count(set_name)):
        ref = matches.get(number)
        rows.append((iset.format_id(number), "" if ref is None else refs.format_id(ref)))
    return rows


def _original(seed: int, set_name: str, number: int, scale: Scale) -> Image.Image:
    rng = _rng(seed, set_name, number, "original")
    return compose(rng, *random_size(rng, scale), scale.grain, _grain_tile())


# --------------------------------------------------------------------------- public rendering


def _check_number(set_name: str, number: int, scale: Scale) -> None:
    iset = get_set(set_name)
    n = scale.count(set_name)
    if not iset.first <= number < iset.first + n:
        raise ConfigError(
            f"{set_name} number {number} is not in scale {scale.name!r} "
            f"({iset.format_id(iset.first)}..{iset.format_id(iset.first + n - 1)})"
            if n
            else f"scale {scale.name!r} has no {set_name} images"
        )


def render(set_name: str, number: int, scale: Scale | str, seed: int = 0) -> bytes:
    """The JPEG bytes of image ``number`` of ``set_name`` (ids start at the set's first number)."""
    scale = _as_scale(scale)
    _check_number(set_name, number, scale)
    quality = scale.quality
    ref = _matches(scale, seed, set_name).get(number) if set_name in QUERY_SETS else None
    if ref is None:
        img = _original(seed, set_name, number, scale)
    else:
        rng = _rng(seed, set_name, number, "edit")
        original = _original(seed, "reference", ref, scale)
        if set_name == "phase2" and _rng(seed, set_name, number, "unseen").random() < PHASE2_UNSEEN_SHARE:
            original = original.transpose(
                Image.Transpose.FLIP_LEFT_RIGHT
            )  # own stream: other bytes unchanged
        img = edit(original, rng, scale, _grain_tile())
        quality = int(rng.integers(max(30, quality - 20), quality + 1))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling="4:2:0")
    return buf.getvalue()


def key_for(set_name: str, image_id: str) -> str:
    """The bucket key of an image, e.g. ``all/query_images/Q00000.jpg``."""
    iset = get_set(set_name)
    iset.parse_id(image_id)
    return f"{iset.prefix}{image_id}.jpg"


def _render_chunk(
    scale: Scale, seed: int, set_name: str, start: int, stop: int
) -> list[tuple[str, str, bytes]]:
    fmt = get_set(set_name).format_id
    return [(set_name, fmt(n), render(set_name, n, scale, seed)) for n in range(start, stop)]


def _sets_arg(sets: Iterable[str] | None) -> list[str]:
    if sets is None:
        return list(SET_ORDER)
    wanted = list(sets)
    for name in wanted:
        get_set(name)
    return [s for s in SET_ORDER if s in wanted]


def _mp_context() -> multiprocessing.context.BaseContext:
    """``fork`` on Linux while single-threaded (fast, and scripts need no ``__main__`` guard), else ``spawn``.

    Forking a process that runs other threads (an embedded S3 server, say) can deadlock the child.
    """
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def iter_images(
    scale: Scale | str, seed: int = 0, sets: Iterable[str] | None = None, *, workers: int | None = None
) -> Iterator[tuple[str, str, bytes]]:
    """``(set_name, image_id, jpeg)`` for every image, set by set in id order.

    Rendering runs in ``workers`` processes (default: the usable CPUs) with a bounded number of
    tasks in flight, so memory stays flat however large the scale. When other threads are running,
    the workers are spawned, so a calling script needs the usual ``if __name__ == "__main__"`` guard.
    """
    scale = _as_scale(scale)
    jobs = []
    for name in _sets_arg(sets):
        first = get_set(name).first
        end = first + scale.count(name)
        jobs += [(name, a, min(a + _CHUNK, end)) for a in range(first, end, _CHUNK)]
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs)))
    if workers == 1 or sum(b - a for _, a, b in jobs) < 100:  # a pool costs more than it saves
        for job in jobs:
            yield from _render_chunk(scale, seed, *job)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_mp_context())
    try:
        todo = iter(jobs)
        pending: deque[Future[list[tuple[str, str, bytes]]]] = deque(
            pool.submit(_render_chunk, scale, seed, *job) for job in islice(todo, 2 * workers)
        )
        while pending:
            chunk = pending.popleft().result()
            for job in islice(todo, 1):
                pending.append(pool.submit(_render_chunk, scale, seed, *job))
            yield from chunk
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- the cached tree


def default_cache_dir() -> Path:
    """``$ISC_KIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/isc_kit/fixture`` (``~/.cache/...``); read now."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "isc_kit" / "fixture"


def cache_name(scale: Scale | str, seed: int = 0) -> str:
    """``<scale>-s<seed>-v<FORMAT_VERSION>.<TREE_VERSION>``; a custom scale that reuses a known name gets a digest too."""
    scale = _as_scale(scale)
    name = scale.name
    if SCALES.get(scale.name) != scale:
        name += "-" + hashlib.blake2b(repr(astuple(scale)).encode(), digest_size=4).hexdigest()
    return f"{name}-s{seed}-v{FORMAT_VERSION}.{TREE_VERSION}"


def _temp_prefix(name: str) -> str:
    return f".{name}.tmp-{socket.gethostname()}-"


def _remove_dead_temps(root: Path, name: str) -> None:
    """Delete temp trees of ``name`` left by runs on this host whose process is gone (killed, crashed)."""
    prefix = _temp_prefix(name)
    for tmp in root.glob(f"{glob.escape(prefix)}*"):
        pid = tmp.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            logger.debug("removing %s, left by a run that did not finish", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _write_tree(root: Path, scale: Scale, seed: int, workers: int | None) -> None:
    meta = root / "metadata"
    meta.mkdir()
    csvs = {}
    for set_name in SET_ORDER:
        iset = get_set(set_name)
        (root / iset.prefix).mkdir(parents=True, exist_ok=True)
        csvs[set_name] = open(meta / iset.metadata_name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        csvs[set_name].write(METADATA_HEADER)
    try:
        for set_name, image_id, data in iter_images(scale, seed, workers=workers):
            key = key_for(set_name, image_id)
            (root / key).write_bytes(data)
            csvs[set_name].write(f"{image_id},s3://{DEFAULT_BUCKET}/{key},{hashlib.md5(data).hexdigest()}\n")
    finally:
        for f in csvs.values():
            f.close()
    for set_name, file_name in GROUND_TRUTH_NAMES.items():
        rows = "".join(f"{q},{r}\n" for q, r in ground_truth(scale, seed, set_name))
        (meta / file_name).write_text(GROUND_TRUTH_HEADER + rows, encoding="utf-8", newline="\n")


def materialize(
    scale: Scale | str,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
) -> Path:
    """The folder holding the whole fixture, generating it on first use.

    Layout: ``all/<set prefix>/<id>.jpg`` (the bucket keys), ``metadata/<set metadata csv>`` and
    ``metadata/public_ground_truth.csv`` (Phase 1), ``metadata/final_ground_truth.csv`` (Phase 2). The tree is built in a temp folder and renamed
    into place, so a folder with the final name is always complete.
    """
    scale = _as_scale(scale)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / cache_name(scale, seed)
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    _remove_dead_temps(root, final.name)
    started = time.perf_counter()
    logger.info("generating the %s fixture (%d images, seed %d) in %s", scale.name, scale.total, seed, final)
    from .placement import place_folder

    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(final.name)}{os.getpid()}-", dir=root))
    try:
        _write_tree(tmp, scale, seed, workers)
        if not place_folder(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("fixture %s ready in %.1f s", final.name, time.perf_counter() - started)
    return final
