"""MD5 of many in-memory buffers at once: the multi-buffer kernels of ``isc_kit._md5x``, else hashlib.

The C extension hashes 16 (AVX-512) or 8 (AVX2) buffers at a time in SIMD lanes with the GIL
released. It is used only when it imports and its self-test passes at import (RFC 1321 vectors and
random lengths against hashlib, for every kernel this CPU runs); otherwise the reason is logged
once at debug level and hashlib does the work, so a wrong digest is never produced silently.

``ISC_KIT_MD5_BACKEND`` (read at each call) forces a backend: one of :func:`backends` or ``hashlib``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from isc_kit.errors import ConfigError

logger = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview
HASHLIB = "hashlib"
ENV = "ISC_KIT_MD5_BACKEND"

#: RFC 1321, appendix A.5 ("test suite").
RFC1321_VECTORS = {
    b"": "d41d8cd98f00b204e9800998ecf8427e",
    b"a": "0cc175b9c0f1b6a831c399e269772661",
    b"abc": "900150983cd24fb0d6963f7d28e17f72",
    b"message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    b"abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": "d174ab98d277d9f5a5611c2c9f419d9f",
    b"1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
}


def _hashlib_hex(buffers: Sequence[Buffer]) -> list[str]:
    out = []
    for i, buf in enumerate(buffers):
        try:
            out.append(hashlib.md5(buf, usedforsecurity=False).hexdigest())
        except BufferError as err:  # a strided memoryview: the same error type as the extension raises
            raise ValueError(f"md5_hex_many: buffer {i} is not C-contiguous; pass bytes(view)") from err
    return out


def _self_test_cases() -> list[tuple[list[bytes], list[str]]]:
    """Batches with their hashlib digests: RFC 1321's vectors, every length 0..129 (the 55/56/63/64-byte
    padding boundaries), random lengths, longest-first and shortest-first, and a batch smaller than a vector."""
    rng = random.Random(1321)
    bufs = [*RFC1321_VECTORS, *(rng.randbytes(n) for n in range(130))]
    bufs += [rng.randbytes(rng.randrange(4_000)) for _ in range(24)]
    return [
        (b, [hashlib.md5(x, usedforsecurity=False).hexdigest() for x in b])
        for b in (bufs, bufs[::-1], bufs[:5])
    ]


def _self_test(
    md5_many: Callable[..., list[bytes]], level: str, cases: list[tuple[list[bytes], list[str]]]
) -> str:
    """'' when ``level`` agrees with RFC 1321 and hashlib on ``cases``, else what disagreed."""
    for data, digest in RFC1321_VECTORS.items():
        if md5_many([data, data], _level=level)[0].hex() != digest:
            return f"md5 of {data!r} differs from RFC 1321's {digest}"
    for batch, want in cases:
        got = [d.hex() for d in md5_many(batch, _level=level)]
        if got != want:
            bad = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            return f"md5 of a {len(batch[bad])}-byte buffer is {got[bad]}, hashlib says {want[bad]}"
    return ""


def _load() -> tuple[Any, tuple[str, ...]]:
    """The extension and the kernels it may use, best first; (None, ()) after logging why not."""
    try:
        md5x = importlib.import_module("isc_kit._md5x")
    except ImportError as err:
        logger.debug("isc_kit._md5x is not available (%s); MD5 batches use hashlib", err)
        return None, ()
    levels = tuple(md5x.levels())
    cases = _self_test_cases()
    for level in levels:
        problem = _self_test(md5x.md5_many, level, cases)
        if problem:
            logger.debug(
                "isc_kit._md5x self-test failed for %s (%s); MD5 batches use hashlib", level, problem
            )
            return None, ()
    return md5x, levels


_MD5X, _LEVELS = _load()


def backends() -> tuple[str, ...]:
    """The multi-buffer kernels usable here, best first (empty when only hashlib is)."""
    return _LEVELS


def backend() -> str:
    """What :func:`md5_hex_many` uses: ``avx512x16``, ``avx2x8``, ``scalar`` or ``hashlib``."""
    forced = os.environ.get(ENV, "").strip()
    if not forced or forced == "auto":
        return _LEVELS[0] if _LEVELS else HASHLIB
    if forced != HASHLIB and forced not in _LEVELS:
        usable = ", ".join((*_LEVELS, HASHLIB))
        raise ConfigError(f"{ENV}={forced} is not usable on this machine; unset it or use one of: {usable}")
    return forced


def md5_hex_many(buffers: Sequence[Buffer]) -> list[str]:
    """MD5 hex digests of C-contiguous buffers (bytes, bytearray, memoryview), in order.

    Raises ValueError for a non-contiguous buffer, TypeError for an object without the buffer protocol.
    """
    name = backend()
    if name == HASHLIB or len(buffers) < 2:  # one buffer: hashlib's single stream is cheaper than a lane
        return _hashlib_hex(buffers)
    return [d.hex() for d in _MD5X.md5_many(buffers, _level=name)]
