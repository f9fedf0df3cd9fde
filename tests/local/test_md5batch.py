"""Multi-buffer MD5: every kernel this CPU runs, against RFC 1321's vectors and hashlib, and the hashlib fallback."""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
import sys
import textwrap
import types
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isc_kit import _md5x, md5batch
from isc_kit.errors import ConfigError

# RFC 1321 appendix A.5, written out here rather than imported from the code under test
RFC = [
    (b"", "d41d8cd98f00b204e9800998ecf8427e"),
    (b"a", "0cc175b9c0f1b6a831c399e269772661"),
    (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
    (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
]
ALL_LEVELS = ["avx512x16", "avx2x8", "scalar"]
FLAGS = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()


def _md5(data: bytes | bytearray | memoryview) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _many(buffers: list, level: str, **kwargs: int) -> list[str]:
    return [d.hex() for d in _md5x.md5_many(buffers, _level=level, **kwargs)]


@pytest.fixture(params=ALL_LEVELS)
def level(request: pytest.FixtureRequest) -> str:
    if request.param not in _md5x.levels():
        pytest.skip(f"this CPU does not run {request.param}")
    return request.param


def test_dispatch_offers_what_the_cpu_has() -> None:
    expected = [name for name, flag in (("avx512x16", "avx512f"), ("avx2x8", "avx2")) if flag in FLAGS]
    assert list(_md5x.levels()) == [*expected, "scalar"]
    assert md5batch.backends() == _md5x.levels()  # every kernel passed the import-time self-test
    assert md5batch.backend() == _md5x.levels()[0]


def test_rfc1321_vectors(level: str) -> None:
    data = [d for d, _ in RFC]
    assert _many(data, level) == [h for _, h in RFC]
    assert _many(data[::-1], level) == [h for _, h in RFC][::-1]


# 0: lanes run to the end; 160: the default; 10**6: every lane goes to scalar once nothing is waiting
@pytest.mark.parametrize("finish_scalar", [0, 160, 10**6])
def test_every_length_up_to_300(level: str, finish_scalar: int) -> None:
    rng = random.Random(300)
    bufs = [rng.randbytes(n) for n in range(301)]
    want = [_md5(b) for b in bufs]
    assert _many(bufs, level, _finish_scalar=finish_scalar) == want
    assert _many(bufs[::-1], level, _finish_scalar=finish_scalar) == want[::-1]
    # each boundary length alone beside long messages, so it runs in a lane next to busy ones
    for n in (55, 56, 63, 64, 119, 120, 127, 128):
        batch = [bufs[n], rng.randbytes(5000), bufs[n], rng.randbytes(70_000)]
        assert _many(batch, level, _finish_scalar=finish_scalar) == [_md5(b) for b in batch]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(0, 300_000) | st.integers(0, 200), min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_batches(level: str, lengths: list[int], seed: int) -> None:
    rng = random.Random(seed)
    bufs = [rng.randbytes(n) for n in lengths]
    assert _many(bufs, level) == [_md5(b) for b in bufs]


def test_large_buffer_among_small(level: str) -> None:
    rng = random.Random(4)
    bufs = [rng.randbytes(4 << 20), *(rng.randbytes(rng.randrange(200)) for _ in range(30)), b""]
    assert _many(bufs, level) == [_md5(b) for b in bufs]


def test_buffer_types(level: str) -> None:
    raw = bytes(range(256)) * 3
    words = array("I", range(100))
    bufs = [
        raw,
        bytearray(raw),
        memoryview(raw),
        memoryview(raw)[5:700],
        memoryview(bytearray(raw))[64:],
        words,
    ]
    want = [_md5(raw), _md5(raw), _md5(raw), _md5(raw[5:700]), _md5(raw[64:]), _md5(words.tobytes())]
    assert _many(bufs, level) == want


@pytest.mark.parametrize("backend", [*ALL_LEVELS, "hashlib"])
def test_non_contiguous_and_non_buffers_rejected(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    if backend != "hashlib" and backend not in _md5x.levels():
        pytest.skip(f"this CPU does not run {backend}")
    monkeypatch.setenv(md5batch.ENV, backend)
    strided = memoryview(b"abcdefgh")[::2]
    with pytest.raises(ValueError, match="buffer 1 is not C-contiguous"):
        md5batch.md5_hex_many([b"x", strided])
    with pytest.raises(ValueError, match="buffer 0 is not C-contiguous"):
        md5batch.md5_hex_many([strided])
    with pytest.raises(TypeError):
        md5batch.md5_hex_many([b"x", "text"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        md5batch.md5_hex_many([b"x", 3])  # type: ignore[list-item]


def test_unknown_level_rejected() -> None:
    with pytest.raises(ValueError, match="not available"):
        _md5x.md5_many([b"a"], _level="avx1024")


def test_threads_share_the_extension(level: str) -> None:
    rng = random.Random(8)
    batches = [[rng.randbytes(rng.randrange(100_000)) for _ in range(20)] for _ in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: _many(b, level), batches))
    assert results == [[_md5(x) for x in b] for b in batches]


@pytest.mark.parametrize("backend", [*ALL_LEVELS, "hashlib"])
def test_wrapper_forced_backend(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    if backend != "hashlib" and backend not in _md5x.levels():
        pytest.skip(f"this CPU does not run {backend}")
    monkeypatch.setenv(md5batch.ENV, backend)
    assert md5batch.backend() == backend
    data = [d for d, _ in RFC]
    assert md5batch.md5_hex_many(data) == [h for _, h in RFC]
    assert md5batch.md5_hex_many([bytearray(b"abc")]) == ["900150983cd24fb0d6963f7d28e17f72"]
    assert md5batch.md5_hex_many([]) == []


def test_wrapper_rejects_unusable_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(md5batch.ENV, "sse2x4")
    with pytest.raises(ConfigError, match="ISC_KIT_MD5_BACKEND=sse2x4 is not usable"):
        md5batch.backend()


def test_single_buffer_goes_to_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(md5batch, "_MD5X", None)  # would raise AttributeError if the extension were called
    assert md5batch.md5_hex_many([b"abc"]) == ["900150983cd24fb0d6963f7d28e17f72"]


def test_self_test_failure_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def wrong(buffers: list, _level: str) -> list[bytes]:
        digests = [hashlib.md5(b).digest() for b in buffers]
        return [d if len(b) != 56 else bytes(16) for b, d in zip(buffers, digests, strict=True)]

    fake = types.SimpleNamespace(levels=lambda: ("avx2x8", "scalar"), md5_many=wrong)
    monkeypatch.setattr(md5batch.importlib, "import_module", lambda name: fake)
    with caplog.at_level(logging.DEBUG, logger="isc_kit.md5batch"):
        assert md5batch._load() == (None, ())
    assert "self-test failed for avx2x8 (md5 of a 56-byte buffer" in caplog.text


def test_extension_missing_falls_back_to_hashlib() -> None:
    code = textwrap.dedent(
        """
        import logging, sys
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(message)s")
        sys.modules["isc_kit._md5x"] = None  # as if the build had failed
        from isc_kit import md5batch
        print(md5batch.backend(), md5batch.backends())
        print(md5batch.md5_hex_many([b"abc", b"", bytearray(b"message digest")]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "isc_kit._md5x is not available" in out
    assert "hashlib ()" in out
    assert (
        "['900150983cd24fb0d6963f7d28e17f72', 'd41d8cd98f00b204e9800998ecf8427e', "
        "'f96b697d7cb7938d525a2f31aaf161d0']" in out
    )
