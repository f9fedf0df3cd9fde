"""Synthetic pictures and ISC-style edits for the fixture: pure functions of a random generator.

:func:`compose` draws an original (a field or a scene, shapes, film grain); :func:`edit` turns a
picture into a query the way ISC did (crop, rotation, colour change, text or emoji overlay, blur,
paste into another picture), then resizes it.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont

TILE = 1024  # side of the shared grain tile: the largest image side


class SizeSpec(Protocol):
    """What the drawing needs of a fixture scale (read-only)."""

    @property
    def min_side(self) -> int: ...
    @property
    def max_side(self) -> int: ...
    @property
    def grain(self) -> float: ...


def random_size(rng: np.random.Generator, scale: SizeSpec) -> tuple[int, int]:
    w = int(rng.integers(scale.min_side, scale.max_side + 1))
    h = int(np.clip(w * rng.choice([0.5625, 0.667, 0.75, 1.0, 1.333, 1.5]), scale.min_side, scale.max_side))
    return (w, h) if rng.random() < 0.6 else (h, w)


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


def _texture(img: Image.Image, rng: np.random.Generator, strength: float, tile: Image.Image) -> Image.Image:
    """Add luminance grain from a random window of the shared tile; ``strength`` scales the JPEG size."""
    if strength <= 0:
        return img
    w, h = img.size
    x0, y0 = int(rng.integers(0, TILE - w + 1)), int(rng.integers(0, TILE - h + 1))
    amp = strength * rng.uniform(0.5, 1.5)
    noise = tile.crop((x0, y0, x0 + w, y0 + h))
    if rng.random() < 0.5:
        noise = noise.transpose(Image.Transpose.ROTATE_180)
    noise = noise.point(_lut(128 + amp * (np.arange(256, dtype=np.float32) - 128)))
    return ImageChops.add(img, Image.merge("RGB", (noise, noise, noise)), offset=-128)


def _lut(values: np.ndarray) -> list[int]:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8).tolist()


def compose(rng: np.random.Generator, w: int, h: int, grain: float, tile: Image.Image) -> Image.Image:
    """One fresh synthetic picture of ``w`` x ``h`` pixels."""
    img = _scene(rng, w, h) if rng.random() < 0.25 else _field(rng, w, h)
    _shapes(img, rng, int(rng.integers(2, 16)))
    return _texture(img, rng, grain, tile)


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


def edit(img: Image.Image, rng: np.random.Generator, scale: SizeSpec, tile: Image.Image) -> Image.Image:
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
        bw, bh = random_size(rng, scale)
        background = compose(rng, bw, bh, scale.grain, tile)
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
