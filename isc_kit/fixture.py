"""A deterministic synthetic mini-ISC: real JPEGs, edited-copy queries, publisher-format CSVs.

Every image is a pure function of ``(scale, seed, set, number)``: its random generator is seeded
from a BLAKE2 digest of those values, so the same call gives the same bytes (and MD5) on every
machine with the same Pillow build. About ``match_fraction`` of the queries (phase 1 and phase 2)
are edited copies of a reference; the rest are distractors. :func:`materialize` writes the tree
in the bucket's key layout plus ``metadata/`` (metadata CSVs and ground truth), cached on disk.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import math
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
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from .catalog import DEFAULT_BUCKET, get_set
from .errors import ConfigError

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes, so old caches are not reused.
FORMAT_VERSION = 2
CACHE_ENV = "ISC_KIT_CACHE_DIR"
#: Order in which sets are generated and yielded.
SET_ORDER = ("reference", "query", "training", "phase2")
QUERY_SETS = ("query", "phase2")
GROUND_TRUTH_NAMES = {"query": "public_ground_truth.csv", "phase2": "public_ground_truth_phase2.csv"}
METADATA_HEADER = "image_id,s3_uri,md5_checksum\n"
GROUND_TRUTH_HEADER = "query_id,reference_id\n"
_CHUNK = 16  # images per worker task
_TILE = 1024  # side of the shared grain tile: the largest image side


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
        if not 32 <= self.min_side <= self.max_side <= _TILE:
            raise ConfigError(f"scale {self.name!r}: need 32 <= min_side <= max_side <= {_TILE}")
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


# --------------------------------------------------------------------------- drawing


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _field(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A smooth or patterned background, drawn small and scaled up (cheap, and JPEG-friendly)."""
    kind = rng.choice(["linear", "radial", "stripes", "checker", "clouds"])
    sw, sh = max(8, w // 4), max(8, h // 4)
    x = np.linspace(0.0, 1.0, sw, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, sh, dtype=np.float32)[:, None]
    c = rng.integers(0, 256, (3, 3)).astype(np.float32)
    if kind == "clouds":
        g = rng.integers(2, 9)
        small = rng.integers(0, 256, (g, g + int(rng.integers(0, 3)), 3), dtype=np.uint8)
        return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    if kind == "checker":
        cells = int(rng.integers(3, 14))
        grid = (np.add.outer(np.arange(cells), np.arange(cells)) % 2).astype(bool)
        arr = np.where(grid[..., None], c[0], c[1]).astype(np.uint8)
        return Image.fromarray(arr).resize((w, h), Image.Resampling.NEAREST)
    a = rng.uniform(0, 2 * math.pi)
    if kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / 1.2
    else:
        t = x * math.cos(a) + y * math.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        if kind == "stripes":
            t = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(2, 14) * t + rng.uniform(0, 6))
    t = np.clip(t, 0, 1)[..., None]
    arr = np.where(t < 0.5, c[0] + (c[1] - c[0]) * 2 * t, c[1] + (c[2] - c[1]) * (2 * t - 1))
    return Image.fromarray(arr.astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)


def _scene(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Sky, sun, mountain ridges, ground and a few houses or trees."""
    img = Image.new("RGB", (w, h))
    sky = _color(rng)
    horizon = int(h * rng.uniform(0.45, 0.75))
    top = tuple(int(v * 0.5) for v in sky)
    for i in range(0, horizon, 4):
        f = i / max(horizon, 1)
        ImageDraw.Draw(img).rectangle(
            (0, i, w, i + 4), fill=tuple(int(a + (b - a) * f) for a, b in zip(top, sky, strict=True))
        )
    d = ImageDraw.Draw(img)
    r = int(min(w, h) * rng.uniform(0.04, 0.12))
    sx, sy = int(rng.uniform(0, w)), int(rng.uniform(0, horizon * 0.7))
    d.ellipse((sx - r, sy - r, sx + r, sy + r), fill=_color(rng))
    for layer in range(int(rng.integers(1, 4))):
        xs = np.linspace(-0.1 * w, 1.1 * w, int(rng.integers(4, 12)))
        ys = horizon - rng.uniform(0.05, 0.45, xs.size) * h / (layer + 1)
        d.polygon(
            [(float(a), float(b)) for a, b in zip(xs, ys, strict=True)] + [(1.1 * w, h), (-0.1 * w, h)],
            fill=_color(rng),
        )
    d.rectangle((0, horizon, w, h), fill=_color(rng))
    for _ in range(int(rng.integers(2, 9))):
        bx, by = int(rng.uniform(0, w)), int(rng.uniform(horizon, h))
        s = int(rng.uniform(0.03, 0.12) * min(w, h)) + 2
        if rng.random() < 0.5:  # a house
            d.rectangle((bx - s, by - s, bx + s, by + s), fill=_color(rng))
            d.polygon([(bx - s * 1.3, by - s), (bx, by - 2.2 * s), (bx + s * 1.3, by - s)], fill=_color(rng))
        else:  # a tree
            d.rectangle((bx - s // 5, by - s, bx + s // 5, by + s), fill=(90, 60, 30))
            d.polygon([(bx - s, by - s // 2), (bx, by - 3 * s), (bx + s, by - s // 2)], fill=_color(rng))
    return img


def _shapes(img: Image.Image, rng: np.random.Generator, count: int) -> None:
    """Random polygons, ellipses, rectangles and thick lines, in place."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    m = min(w, h)
    for _ in range(count):
        kind = rng.integers(0, 4)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        s = rng.uniform(0.05, 0.3) * m
        fill = _color(rng)
        outline = _color(rng) if rng.random() < 0.4 else None
        if kind == 0:
            k = int(rng.integers(3, 9))
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = s * rng.uniform(0.4, 1.0, k)
            pts = [
                (float(cx + r * math.cos(a)), float(cy + r * math.sin(a)))
                for a, r in zip(ang, rad, strict=True)
            ]
            d.polygon(pts, fill=fill, outline=outline)
        elif kind == 1:
            d.ellipse((cx - s, cy - s * rng.uniform(0.3, 1), cx + s, cy + s), fill=fill, outline=outline)
        elif kind == 2:
            d.rectangle(
                (cx - s, cy - s * rng.uniform(0.2, 1), cx + s, cy + s * 0.5), fill=fill, outline=outline
            )
        else:
            x2, y2 = rng.uniform(0, w), rng.uniform(0, h)
            d.line((cx, cy, x2, y2), fill=fill, width=int(rng.integers(2, max(3, m // 30))))


@lru_cache(maxsize=1)
def _grain_tile() -> Image.Image:
    """Film-grain-like noise centred on 128 (fine uniform noise over a mottle), shared by all images.

    Built once per process from a fixed seed; images take random windows of it, which is much
    cheaper than drawing fresh noise for every picture.
    """
    rng = _rng(0, "grain-tile")
    n = _TILE
    fine = rng.integers(-10, 11, (n, n), dtype=np.int16)
    coarse = Image.fromarray(rng.integers(0, 256, (n // 6, n // 6), dtype=np.uint8))
    mottle = np.asarray(coarse.resize((n, n), Image.Resampling.BILINEAR), np.int16) - 128
    return Image.fromarray(np.clip(128 + fine + mottle // 4, 0, 255).astype(np.uint8))


def _texture(img: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """Add luminance grain from a random window of the shared tile; ``strength`` scales the JPEG size."""
    if strength <= 0:
        return img
    w, h = img.size
    x0, y0 = int(rng.integers(0, _TILE - w + 1)), int(rng.integers(0, _TILE - h + 1))
    amp = strength * rng.uniform(0.5, 1.5)
    noise = _grain_tile().crop((x0, y0, x0 + w, y0 + h))
    if rng.random() < 0.5:
        noise = noise.transpose(Image.Transpose.ROTATE_180)
    noise = noise.point(_lut(128 + amp * (np.arange(256, dtype=np.float32) - 128)))
    return ImageChops.add(img, Image.merge("RGB", (noise, noise, noise)), offset=-128)


def _lut(values: np.ndarray) -> list[int]:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8).tolist()


def _compose(rng: np.random.Generator, w: int, h: int, grain: float) -> Image.Image:
    """One fresh synthetic picture of ``w`` x ``h`` pixels."""
    img = _scene(rng, w, h) if rng.random() < 0.25 else _field(rng, w, h)
    _shapes(img, rng, int(rng.integers(2, 16)))
    return _texture(img, rng, grain)


def _size(rng: np.random.Generator, scale: Scale) -> tuple[int, int]:
    w = int(rng.integers(scale.min_side, scale.max_side + 1))
    h = int(np.clip(w * rng.choice([0.5625, 0.667, 0.75, 1.0, 1.333, 1.5]), scale.min_side, scale.max_side))
    return (w, h) if rng.random() < 0.6 else (h, w)


def _original(seed: int, set_name: str, number: int, scale: Scale) -> Image.Image:
    rng = _rng(seed, set_name, number, "original")
    return _compose(rng, *_size(rng, scale), scale.grain)


# --------------------------------------------------------------------------- query edits

_WORDS = ("hello", "isc 2021", "copy", "lol", "wow", "#meme", "2021", "summer", "ok", "fb", "look!", "nice")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _overlay(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Caption text, or an emoji-like face / star, over part of the picture."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    m = min(w, h)
    if rng.random() < 0.5:
        size = int(m * rng.uniform(0.08, 0.18)) + 6
        text = str(rng.choice(_WORDS))
        xy = (float(rng.uniform(0, w * 0.5)), float(rng.uniform(0, h * 0.8)))
        d.text(
            xy,
            text,
            fill=_color(rng),
            font=_font(size),
            stroke_width=max(1, size // 12),
            stroke_fill=(0, 0, 0),
        )
        return img
    r = m * rng.uniform(0.07, 0.16)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    if rng.random() < 0.6:  # a smiley
        d.ellipse(
            (cx - r, cy - r, cx + r, cy + r), fill=(255, 204, 0), outline=(0, 0, 0), width=max(1, int(r / 12))
        )
        e = r / 6
        for ex in (cx - r / 3, cx + r / 3):
            d.ellipse((ex - e, cy - r / 3 - e, ex + e, cy - r / 3 + e), fill=(0, 0, 0))
        d.arc(
            (cx - r / 2, cy - r / 3, cx + r / 2, cy + r / 2),
            20,
            160,
            fill=(0, 0, 0),
            width=max(1, int(r / 10)),
        )
    else:  # a star
        pts = [
            (float(cx + (r if i % 2 == 0 else r / 2.5) * math.cos(math.pi * i / 5 - math.pi / 2)),
             float(cy + (r if i % 2 == 0 else r / 2.5) * math.sin(math.pi * i / 5 - math.pi / 2)))
            for i in range(10)
        ]  # fmt: skip
        d.polygon(pts, fill=_color(rng), outline=(0, 0, 0))
    return img


def _edit(img: Image.Image, rng: np.random.Generator, scale: Scale) -> Image.Image:
    """One to three edits of a reference picture, then a resize (the chosen edits vary per query)."""
    edits = ["crop", "rotate", "colour", "overlay", "blur", "paste"]
    chosen = set(rng.choice(edits, size=int(rng.integers(1, 4)), replace=False).tolist())
    w, h = img.size
    if "crop" in chosen:
        cw, ch = int(w * rng.uniform(0.6, 0.95)), int(h * rng.uniform(0.6, 0.95))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = img.crop((x0, y0, x0 + cw, y0 + ch))
    if "rotate" in chosen:
        angle = float(rng.choice([-1, 1]) * rng.uniform(5, 25))
        img = img.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=_color(rng))
    if "colour" in chosen:
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.65, 1.4))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
        img = ImageEnhance.Color(img).enhance(0.0 if rng.random() < 0.25 else rng.uniform(0.3, 1.8))
    if "overlay" in chosen:
        for _ in range(int(rng.integers(1, 3))):
            img = _overlay(img, rng)
    if "blur" in chosen:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.5) * min(img.size) / 512))
    if "paste" in chosen:
        bw, bh = _size(rng, scale)
        background = _compose(rng, bw, bh, scale.grain)
        f = rng.uniform(0.55, 0.85) * min(bw / img.width, bh / img.height)
        inner = img.resize(
            (max(8, int(img.width * f)), max(8, int(img.height * f))), Image.Resampling.BILINEAR
        )
        background.paste(
            inner, (int(rng.integers(0, bw - inner.width + 1)), int(rng.integers(0, bh - inner.height + 1)))
        )
        img = background
    f = rng.uniform(0.6, 1.1)
    lo, hi = scale.min_side * 0.75, scale.max_side
    f = min(max(f, lo / min(img.size)), hi / max(img.size))
    return img.resize(
        (max(16, round(img.width * f)), max(16, round(img.height * f))), Image.Resampling.BILINEAR
    )


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
        img = _edit(_original(seed, "reference", ref, scale), rng, scale)
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
    """``<scale>-s<seed>-v<FORMAT_VERSION>``; a custom scale that reuses a known name gets a digest too."""
    scale = _as_scale(scale)
    name = scale.name
    if SCALES.get(scale.name) != scale:
        name += "-" + hashlib.blake2b(repr(astuple(scale)).encode(), digest_size=4).hexdigest()
    return f"{name}-s{seed}-v{FORMAT_VERSION}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temp_prefix(name: str) -> str:
    return f".{name}.tmp-{socket.gethostname()}-"


def _remove_dead_temps(root: Path, name: str) -> None:
    """Delete temp trees of ``name`` left by runs on this host whose process is gone (killed, crashed)."""
    prefix = _temp_prefix(name)
    for tmp in root.glob(f"{glob.escape(prefix)}*"):
        pid = tmp.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
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
    ``metadata/public_ground_truth{,_phase2}.csv``. The tree is built in a temp folder and renamed
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
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(final.name)}{os.getpid()}-", dir=root))
    try:
        _write_tree(tmp, scale, seed, workers)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("fixture %s ready in %.1f s", final.name, time.perf_counter() - started)
    return final
