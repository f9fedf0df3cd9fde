"""The synthetic mini-ISC: determinism, real JPEGs, ground truth, the cached tree, killed runs."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isc_kit import fixture
from isc_kit.errors import ConfigError
from isc_kit.fixture import Scale

TINY = fixture.get_scale("tiny")
# Many small images, half of the queries matched: enough pairs for a statistical check.
SIM = Scale("sim", 60, 60, 0, 0, match_fraction=0.5, min_side=96, max_side=160, quality=85)
# Hundreds of very small images, to run the process pool and the kill test quickly.
SMALL = Scale("small", 150, 30, 0, 20, min_side=32, max_side=64, quality=75)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("ISC_KIT_CACHE_DIR", str(root))
    return root


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- determinism and images


def test_render_is_deterministic_and_distinct() -> None:
    a = fixture.render("reference", 7, TINY)
    assert a == fixture.render("reference", 7, "tiny", seed=0)
    assert _md5(a) == _md5(fixture.render("reference", 7, TINY))
    assert a != fixture.render("reference", 8, TINY)
    assert a != fixture.render("reference", 7, TINY, seed=1)
    assert fixture.render("query", 3, TINY) != fixture.render("training", 3, TINY)


def test_render_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = "import hashlib, sys; from isc_kit import fixture as f; " + "; ".join(
        f"print(hashlib.md5(f.render({s!r}, {n}, 'tiny', 3)).hexdigest())"
        for s, n in [("reference", 0), ("query", 19), ("phase2", 50_009)]
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = [
        _md5(fixture.render(s, n, TINY, 3)) for s, n in [("reference", 0), ("query", 19), ("phase2", 50_009)]
    ]
    assert out.stdout.split() == expected


def test_iter_images_yields_every_id_in_order_as_varied_jpegs() -> None:
    items = list(fixture.iter_images(TINY))
    assert [s for s, _, _ in items] == ["reference"] * 40 + ["query"] * 20 + ["training"] * 20 + [
        "phase2"
    ] * 10
    ids = [i for _, i, _ in items]
    assert [ids[0], ids[39], ids[40], ids[59], ids[60], ids[-1]] == [
        "R000000", "R000039", "Q00000", "Q00019", "T000000", "Q50009",
    ]  # fmt: skip
    sizes, dims, colours = [], set(), set()
    for _, _, data in items:
        assert data[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(data)) as im:
            assert (im.format, im.mode) == ("JPEG", "RGB")
            im.load()
            dims.add(im.size)
            colours.add(tuple(np.asarray(im.resize((1, 1), Image.Resampling.BOX)).ravel() // 32))
        sizes.append(len(data))
    assert len(dims) > 60  # varied resolution
    assert len(colours) > 30  # and content
    assert 8_000 < sum(sizes) / len(sizes) < 30_000, sum(sizes) / len(sizes)
    assert min(w for w, _ in dims) < 180 < max(w for w, _ in dims)


@pytest.mark.parametrize("other_thread", [False, True], ids=["fork", "spawn"])
def test_pool_gives_the_same_bytes_as_serial_rendering(other_thread: bool) -> None:
    if not other_thread and threading.active_count() > 1:
        pytest.skip("other tests left threads running in this process, so the pool never forks here")
    serial = list(fixture.iter_images(SMALL, sets=["phase2", "reference"], workers=1))
    assert (len(serial), serial[0][1], serial[-1][1]) == (170, "R000000", "Q50019")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    if other_thread:  # a running thread makes the pool spawn its workers instead of forking
        thread.start()
    try:
        forks = sys.platform.startswith("linux") and not other_thread
        assert fixture._mp_context().get_start_method() == ("fork" if forks else "spawn")
        pooled = list(fixture.iter_images(SMALL, sets=["reference", "phase2"], workers=2))
    finally:
        stop.set()
    assert pooled == serial


def test_a_query_edit_is_not_just_a_copy() -> None:
    for q, r in fixture.ground_truth(SIM):
        if r:
            assert fixture.render("query", int(q[1:]), SIM) != fixture.render("reference", int(r[1:]), SIM)


# ---------------------------------------------------------------- ground truth


def test_ground_truth_has_about_a_fifth_matches_with_valid_ids() -> None:
    rows = fixture.ground_truth(TINY)
    assert [q for q, _ in rows] == [f"Q{n:05d}" for n in range(20)]
    refs = [r for _, r in rows if r]
    assert len(refs) == 4  # 20% of 20
    assert all(re.fullmatch(r"R0000[0-3]\d", r) for r in refs)
    phase2 = fixture.ground_truth(TINY, set_name="phase2")
    assert [q for q, _ in phase2] == [f"Q{n:05d}" for n in range(50_000, 50_010)]
    assert sum(1 for _, r in phase2 if r) == 2
    big = Scale("big", 5_000, 2_000, 0, 0)
    assert sum(1 for _, r in fixture.ground_truth(big, seed=4) if r) == 400
    half = Scale("half", 10, 30, 0, 0, match_fraction=0.5)
    assert sum(1 for _, r in fixture.ground_truth(half) if r) == 15
    assert fixture.ground_truth(TINY, seed=1) != rows
    with pytest.raises(ConfigError, match="ground truth"):
        fixture.ground_truth(TINY, set_name="reference")


def _thumb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32)
    return ((a - a.mean()) / (a.std() + 1e-6)).ravel()


def _colour_histogram(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("RGB").resize((64, 64))) // 64
    h = np.bincount((a[..., 0] * 16 + a[..., 1] * 4 + a[..., 2]).ravel(), minlength=64)
    return h / h.sum()


@pytest.mark.parametrize("describe", [_thumb, _colour_histogram])
def test_matched_queries_resemble_their_reference(describe) -> None:
    refs = np.stack([describe(fixture.render("reference", n, SIM)) for n in range(SIM.references)])
    pairs = [(int(q[1:]), int(r[1:])) for q, r in fixture.ground_truth(SIM) if r]
    assert len(pairs) == 30
    own, other, beats = [], [], 0
    for q, r in pairs:
        d = np.abs(refs - describe(fixture.render("query", q, SIM))).sum(axis=1)
        own.append(d[r] / np.median(d))
        other.append(d[(r + 1) % len(d)] / np.median(d))  # control: some other reference
        beats += d[r] < np.median(d)
    # Measured with Pillow 13: own ratio ~0.6, control ~1.0, 80-95% beat the median.
    assert np.mean(own) < 0.8 < np.mean(other)
    assert beats >= 0.7 * len(pairs)


# ---------------------------------------------------------------- the cached tree


def test_materialize_writes_the_bucket_layout_and_publisher_csvs(cache: Path) -> None:
    root = fixture.materialize("tiny")
    assert root == cache / f"tiny-s0-v{fixture.FORMAT_VERSION}.{fixture.TREE_VERSION}"
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    expected_images = (
        {f"all/reference_images/R{n:06d}.jpg" for n in range(40)}
        | {f"all/query_images/Q{n:05d}.jpg" for n in range(20)}
        | {f"all/training_images/T{n:06d}.jpg" for n in range(20)}
        | {f"all/query_images_phase2/Q{n:05d}.jpg" for n in range(50_000, 50_010)}
    )
    metadata = {
        "reference": "metadata/reference_images_metadata.csv",
        "query": "metadata/query_images_metadata.csv",
        "training": "metadata/training_images_metadata.csv",
        "phase2": "metadata/query_images_phase2_metadata.csv",
    }
    gt_files = {"metadata/public_ground_truth.csv", "metadata/final_ground_truth.csv"}
    assert files == expected_images | set(metadata.values()) | gt_files
    listed = 0
    for set_name, name in metadata.items():
        raw = (root / name).read_bytes()
        assert b"\r" not in raw
        assert raw.endswith(b"\n")
        lines = raw.decode().splitlines()
        assert lines[0] == "image_id,s3_uri,md5_checksum"
        ids = [line.split(",")[0] for line in lines[1:]]
        assert ids == sorted(ids)
        assert len(ids) == TINY.count(set_name)
        for line in lines[1:]:
            image_id, uri, md5 = line.split(",")
            key = fixture.key_for(set_name, image_id)
            assert uri == f"s3://drivendata-competition-fb-isc-data/{key}"
            assert md5 == hashlib.md5((root / key).read_bytes()).hexdigest()
            listed += 1
    assert listed == len(expected_images)
    gt = (root / "metadata/public_ground_truth.csv").read_text().splitlines()
    assert gt[0] == "query_id,reference_id"
    assert len(gt) == 21
    for line in gt[1:]:
        q, r = line.split(",")
        assert (root / "all/query_images" / f"{q}.jpg").is_file()
        assert r == "" or (root / "all/reference_images" / f"{r}.jpg").is_file()
    assert sum(1 for line in gt[1:] if not line.endswith(",")) == 4
    assert (root / "metadata/final_ground_truth.csv").read_text().startswith("query_id,reference_id\nQ50000,")


def test_materialize_is_idempotent(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fixture.materialize(TINY, cache_dir=tmp_path / "explicit")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    def boom(*args, **kwargs):
        raise AssertionError("a cached fixture was generated again")

    monkeypatch.setattr(fixture, "iter_images", boom)
    assert fixture.materialize(TINY, cache_dir=tmp_path / "explicit") == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert not cache.exists()  # the explicit argument wins over ISC_KIT_CACHE_DIR


def test_cache_names_tell_scales_and_seeds_apart(cache: Path) -> None:
    assert fixture.cache_name("demo", 3) == f"demo-s3-v{fixture.FORMAT_VERSION}.{fixture.TREE_VERSION}"
    custom = Scale("tiny", 5, 0, 0, 0)  # same name, other content: must not reuse tiny's cache
    assert fixture.cache_name(custom) != fixture.cache_name("tiny")
    assert fixture.default_cache_dir() == cache


def test_a_killed_run_leaves_no_cache_and_is_redone(cache: Path) -> None:
    # A child that renders slowly, so it is surely killed halfway.
    code = textwrap.dedent(f"""
        import time
        from isc_kit import fixture
        render = fixture.render
        def slow(*args, **kwargs):
            time.sleep(0.02)
            return render(*args, **kwargs)
        fixture.render = slow
        fixture.materialize(fixture.Scale(**{asdict(SMALL)!r}), workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    final = cache / fixture.cache_name(SMALL)
    try:
        deadline = time.monotonic() + 60
        while not any(cache.glob(".*.tmp-*/all/reference_images/R00001*.jpg")):
            assert proc.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    leftovers = list(cache.glob(".*.tmp-*"))
    assert len(leftovers) == 1
    assert not final.exists()
    # A temp tree of a live process (ours) must be left alone: it may be another run in progress.
    live = cache / f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}-other"
    live.mkdir()

    root = fixture.materialize(SMALL)
    assert root == final
    assert len(list(root.glob("all/*/*.jpg"))) == SMALL.total
    assert not leftovers[0].exists()
    assert live.is_dir()


# ---------------------------------------------------------------- API edges


def test_scales_and_errors() -> None:
    assert set(fixture.SCALES) == {"tiny", "demo", "bench"}
    demo = fixture.get_scale("demo")
    assert (demo.references, demo.queries, demo.training, demo.phase2) == (1_000, 250, 1_000, 50)
    assert fixture.get_scale("bench").references == 10_000
    with pytest.raises(ConfigError, match="tiny, demo, bench"):
        fixture.get_scale("huge")
    with pytest.raises(ConfigError, match="match_fraction"):
        Scale("x", 1, 1, 0, 0, match_fraction=1.5)
    with pytest.raises(ConfigError, match="query count"):
        Scale("x", 1, 60_000, 0, 0)
    with pytest.raises(ConfigError, match=r"Q00000\.\.Q00019"):
        fixture.render("query", 20, TINY)
    with pytest.raises(ConfigError, match="no training images"):
        fixture.render("training", 0, fixture.get_scale("bench"))
    assert fixture.key_for("query", "Q00000") == "all/query_images/Q00000.jpg"
    assert fixture.key_for("phase2", "Q50001") == "all/query_images_phase2/Q50001.jpg"
    with pytest.raises(ConfigError):
        fixture.key_for("reference", "Q00000")
