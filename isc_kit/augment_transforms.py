"""The transforms of ``isc-kit augment``: their names and strength ranges, the params that choose them,
the seeded draw per (source, copy), and AugLy applied to one image."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, IscKitError

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


PAIRS_COLUMNS = ("augmented_id", "source_id", "transforms")
MAX_COPIES = 99
AUG_PREFIX = "augmented/training/"

#: Transform name -> {strength parameter: (lowest allowed, highest allowed)}. Names are AugLy's
#: ``augly.image.functional`` functions; parameters without a range (hflip, grayscale) take none.
TRANSFORMS: dict[str, dict[str, tuple[float, float]]] = {
    "blur": {"radius": (0.0, 20.0)},
    "brightness": {"factor": (0.05, 5.0)},
    "contrast": {"factor": (0.05, 5.0)},
    "saturation": {"factor": (0.0, 5.0)},
    "sharpen": {"factor": (0.0, 10.0)},
    "rotate": {"degrees": (-180.0, 180.0)},
    "scale": {"factor": (0.05, 4.0)},
    "pixelization": {"ratio": (0.05, 1.0)},
    "encoding_quality": {"quality": (1.0, 95.0)},
    "opacity": {"level": (0.0, 1.0)},
    "crop": {"x1": (0.0, 0.5), "y1": (0.0, 0.5), "x2": (0.5, 1.0), "y2": (0.5, 1.0)},
    "hflip": {},
    "vflip": {},
    "grayscale": {},
}
_INT_PARAMS = {("encoding_quality", "quality")}


class AugmentError(IscKitError):
    """The selection, the folder or the augment parameters cannot produce the copies."""

    exit_code = 2


@dataclass(frozen=True)
class TransformSpec:
    name: str
    ranges: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class AugmentParams:
    copies: int = 2
    seed: int = 0
    quality: int = 90
    per_copy: int | None = None
    transforms: tuple[TransformSpec, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "params.yaml augment") -> AugmentParams:
        """Validated parameters; every problem is one :class:`ConfigError` line naming the key."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with copies, seed, transforms")
        unknown = set(raw) - {"sets", "copies", "seed", "quality", "per_copy", "transforms"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                "valid: sets, copies, seed, quality, per_copy, transforms"
            )
        copies = _int(raw.get("copies", 2), f"{where}.copies", 0, MAX_COPIES)
        seed = _int(raw.get("seed", 0), f"{where}.seed", 0, 2**63)
        quality = _int(raw.get("quality", 90), f"{where}.quality", 1, 95)
        specs = tuple(_spec(t, f"{where}.transforms[{i}]") for i, t in enumerate(raw.get("transforms") or ()))
        if copies and not specs:
            raise ConfigError(f"{where}.transforms: empty; list at least one of {', '.join(TRANSFORMS)}")
        per_copy = raw.get("per_copy")
        if per_copy is not None:
            per_copy = _int(per_copy, f"{where}.per_copy", 1, max(1, len(specs)))
        return cls(copies, seed, quality, per_copy, specs)


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: {value!r} is not an integer in {low}..{high}")
    return value


def _spec(raw: Any, where: str) -> TransformSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{where}: expected {{name: TRANSFORM, PARAM: [low, high]}}")
    name = raw["name"]
    if name not in TRANSFORMS:
        raise ConfigError(f"{where}: unknown transform {name!r}; valid: {', '.join(sorted(TRANSFORMS))}")
    allowed = TRANSFORMS[name]
    ranges = []
    for key, value in raw.items():
        if key == "name":
            continue
        if key not in allowed:
            valid = ", ".join(allowed) or "none"
            raise ConfigError(f"{where}: {name} has no strength {key!r}; valid: {valid}")
        lo_ok, hi_ok = allowed[key]
        pair = value if isinstance(value, list | tuple) else [value, value]
        if len(pair) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair):
            raise ConfigError(f"{where}.{key}: expected a number or [low, high], got {value!r}")
        lo, hi = float(pair[0]), float(pair[1])
        if not lo_ok <= lo <= hi <= hi_ok:
            raise ConfigError(
                f"{where}.{key}: [{lo:g}, {hi:g}] is out of range; {name} {key} must lie in "
                f"[{lo_ok:g}, {hi_ok:g}] with low <= high"
            )
        ranges.append((key, lo, hi))
    return TransformSpec(name, tuple(ranges))


# ---------------------------------------------------------------------------------------------- drawing


def augmented_id(source_id: str, copy: int) -> str:
    """``T000123``, copy 1 -> ``A00012301``."""
    return f"A{source_id[1:]}{copy:02d}"


def copy_rng(seed: int, source_id: str, copy: int) -> random.Random:
    """The generator of one (source, copy): from its identity only, never from process order."""
    digest = hashlib.sha256(f"isc-kit augment v1|{seed}|{source_id}|{copy}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def draw(params: AugmentParams, source_id: str, copy: int) -> list[tuple[str, dict[str, float]]]:
    """The transforms (in order) and strengths of one copy."""
    rng = copy_rng(params.seed, source_id, copy)
    specs = list(params.transforms)
    if params.per_copy is not None and params.per_copy < len(specs):
        specs = rng.sample(specs, params.per_copy)
    chosen = []
    for spec in specs:
        kwargs: dict[str, float] = {}
        for key, lo, hi in spec.ranges:
            value = round(rng.uniform(lo, hi), 3)
            kwargs[key] = round(value) if (spec.name, key) in _INT_PARAMS else value
        chosen.append((spec.name, kwargs))
    return chosen


def describe_transforms(chosen: Sequence[tuple[str, dict[str, float]]]) -> str:
    """``rotate(degrees=-5.2);blur(radius=1.1)``: the pairs CSV's ``transforms`` field."""
    return ";".join(f"{n}({','.join(f'{k}={v:g}' for k, v in kw.items())})" for n, kw in chosen)


def _augly() -> Any:
    """``augly.image.functional``. AugLy imports python-magic (libmagic) at import time only for its
    audio/video file checks; without libmagic1 a stub stands in, so the image functions still work."""
    try:
        import magic  # noqa: F401
    except ImportError:

        def _unavailable(*_args: Any, **_kwargs: Any) -> Any:
            raise OSError("libmagic is not installed (bash scripts/system-deps.sh installs libmagic1)")

        stub = types.ModuleType("magic")
        stub.from_file = _unavailable  # type: ignore[attr-defined]
        sys.modules["magic"] = stub
        logger.debug("libmagic not found: AugLy's image functions run without it")
    try:
        import augly.image.functional as functional
    except ImportError as err:
        raise AugmentError(
            f"AugLy is not installed ({err}); install it with: pip install 'isc-kit[augment]'"
        ) from None
    return functional


def augment_image(data: bytes, chosen: Sequence[tuple[str, dict[str, float]]], quality: int) -> bytes:
    """One copy's JPEG bytes (fixed encoder parameters: same input and draw -> same bytes)."""
    from PIL import Image

    functional = _augly()
    with Image.open(io.BytesIO(data)) as img:
        image = img.convert("RGB")
    for name, kwargs in chosen:
        image = getattr(functional, name)(image, **kwargs)
        if image.mode != "RGB":
            image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling=2)
    return out.getvalue()
