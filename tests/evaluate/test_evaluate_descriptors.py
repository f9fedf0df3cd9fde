"""The descriptor track: HDF5 files, and the official track-2 search and scores computed independently.

The oracle restates the rules of ``scripts/compute_metrics.py --track2`` / ``isc/descriptor_matching.py``
(facebookresearch/isc2021) in plain Python over exact integer distances: queries in batches of 32, 64, ...
(doubling while below 20,000); more than 2N held results shrink the radius to the (N+1)-th smallest
held distance, keeping those strictly below it; at the end the N nearest (ties: (query, reference)
order, which the official code leaves open); score = -distance. Integer-valued vectors make float32
distances exact, so ties are real ties for faiss too.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from _official import agree, official

from isc_kit.cli.main import main
from isc_kit.errors import ConfigError, InputFileError
from isc_kit.evaluate.descriptors import (
    evaluate_descriptors,
    read_descriptors,
    search_descriptors,
    write_descriptors,
)
from isc_kit.groundtruth import GroundTruth


def oracle_search(xq: np.ndarray, xb: np.ndarray, n: int, metric: str = "l2") -> list[tuple[int, int, int]]:
    """``(value, query, reference)`` of the official capped range search (value: L2² or inner product)."""
    xq, xb = xq.astype(np.int64), xb.astype(np.int64)
    if metric == "l2":
        values = (xq**2).sum(1)[:, None] + (xb**2).sum(1)[None, :] - 2 * xq @ xb.T
    else:
        values = xq @ xb.T
    inside = (lambda v, rad: v < rad) if metric == "l2" else (lambda v, rad: v > rad)
    radius: float = 1e10 if metric == "l2" else -1e10
    held: list[tuple[int, int, int]] = []
    start, size = 0, 32
    while start < len(xq):
        for qi in range(start, min(len(xq), start + size)):
            row = values[qi].tolist()
            held.extend((v, qi, ri) for ri, v in enumerate(row) if inside(v, radius))
        if len(held) > 2 * n:
            ordered = sorted(v for v, _, _ in held)
            radius = ordered[n] if metric == "l2" else ordered[len(ordered) - n]
            held = [h for h in held if inside(h[0], radius)]
        start += size
        if size < 20_000:
            size *= 2
    if len(held) > n:
        held = sorted(held, key=lambda h: (h[0] if metric == "l2" else -h[0], h[1], h[2]))[:n]
    return held


def random_set(seed: int, nq: int, nb: int, dim: int, high: int):
    """Integer-valued descriptors in [0, high); about a third of the queries copy a reference (plus noise)."""
    rng = np.random.default_rng(seed)
    xb = rng.integers(0, high, size=(nb, dim)).astype(np.float32)
    xq = rng.integers(0, high, size=(nq, dim)).astype(np.float32)
    q_names = [f"Q{i:05d}" for i in range(nq)]
    r_names = [f"R{i:06d}" for i in range(nb)]
    pairs = set()
    for qi in range(0, nq, 3):
        ri = int(rng.integers(nb))
        xq[qi] = np.clip(xb[ri] + rng.integers(-1, 2, size=dim), 0, high - 1)
        pairs.add((q_names[qi], r_names[ri]))
    gt = GroundTruth.from_pairs(pairs, distractors=q_names)
    return gt, (q_names, xq), (r_names, xb)


def check_against_oracle(gt, queries, references, n: int, metric: str = "l2") -> int:
    (q_names, xq), (r_names, xb) = queries, references
    held = oracle_search(xq, xb, n, metric)
    sign = -1.0 if metric == "l2" else 1.0
    rows = [(q_names[qi], r_names[ri], sign * v) for v, qi, ri in held]
    predictions = search_descriptors(q_names, xq, r_names, xb, max_results=n, metric=metric)
    got = sorted(zip(predictions.query_ids, predictions.reference_ids, predictions.scores, strict=True))
    assert got == sorted(rows)  # the very same pairs and scores
    result = evaluate_descriptors(gt, queries, references, max_results=n, metric=metric)
    agree(result.scores, official(gt.pairs, rows, limit=None))
    return len(rows)


@pytest.mark.slow
def test_more_than_a_million_candidates_with_heavy_ties() -> None:
    # 1,100 x 1,000 = 1.1 M candidate pairs, distances 0..8 only: the radius shrinks onto a tie
    gt, queries, references = random_set(0, 1100, 1000, 8, 2)
    kept = check_against_oracle(gt, queries, references, 500_000)
    assert kept < 500_000  # the official rule drops the whole tied boundary distance


@pytest.mark.slow
def test_600000_candidates_cut_to_500000() -> None:
    # 600,000 candidates (< 2N: no shrinking), ties at the final cut
    gt, queries, references = random_set(1, 600, 1000, 16, 4)
    assert check_against_oracle(gt, queries, references, 500_000) == 500_000


def test_small_cap_many_batches() -> None:
    # 2,000 queries run in batches 32, 64, ..., 1024; a cap of 3,000 shrinks the radius many times
    gt, queries, references = random_set(2, 2000, 60, 12, 3)
    check_against_oracle(gt, queries, references, 3_000)


def test_inner_product() -> None:
    gt, queries, references = random_set(3, 400, 50, 8, 3)
    check_against_oracle(gt, queries, references, 2_000, metric="ip")


def test_knn_keeps_each_querys_k_nearest() -> None:
    _, (qn, xq), (rn, xb) = random_set(4, 50, 40, 8, 5)
    p = search_descriptors(qn, xq, rn, xb, knn=5)
    assert len(p) == 50 * 5
    d = ((xq[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
    for qi, q in enumerate(qn):
        mine = sorted(-p.scores[p.query_ids == q])
        assert mine == sorted(np.sort(d[qi])[:5].tolist())  # the 5 smallest distances (ties either way)


def test_hdf5_roundtrip_and_name_cleaning(tmp_path: Path) -> None:
    path = tmp_path / "q.h5"
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4)
    write_descriptors(path, ["Q00001", "Q00002", "Q00003"], vectors)
    with h5py.File(path) as f:
        assert f["vectors"].dtype == np.float32
        assert [n.decode() for n in f["image_names"][()]] == ["Q00001", "Q00002", "Q00003"]
    names, read = read_descriptors(path)
    assert names == ["Q00001", "Q00002", "Q00003"]
    assert read.dtype == np.float32
    assert (read == vectors).all()
    # files written by other tools: paths and .jpg endings are dropped, as the official reader does
    with h5py.File(path, "w") as f:
        f["vectors"] = np.zeros((2, 4), dtype=np.float32)
        f["image_names"] = np.array([b"images/Q00001.jpg", b"Q00002.png"])
    assert read_descriptors(path)[0] == ["Q00001", "Q00002"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"vectors": np.zeros((2, 4), np.float32)}, "no dataset 'image_names'"),
        ({"vectors": np.zeros((3, 4), np.float32), "image_names": np.array([b"Q1", b"Q2"])}, "2 image names"),
        ({"vectors": np.zeros((2, 4), np.int32), "image_names": np.array([b"Q1", b"Q2"])}, "not float32"),
        ({"vectors": np.full((2, 4), np.nan, np.float32), "image_names": np.array([b"Q1", b"Q2"])}, "NaN"),
        ({"vectors": np.zeros((2, 4), np.float32), "image_names": np.array([b"Q1", b"Q1"])}, "twice"),
    ],
)
def test_bad_hdf5_files(tmp_path: Path, content: dict, fragment: str) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        for key, value in content.items():
            f[key] = value
    with pytest.raises(InputFileError, match=fragment):
        read_descriptors(path)


def test_not_hdf5_and_too_wide(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_text("query_id,reference_id,score\n")
    with pytest.raises(InputFileError, match="not a readable HDF5 file"):
        read_descriptors(path)
    with pytest.raises(ConfigError, match="257 dimensions, more than the 256"):
        search_descriptors(["Q1"], np.zeros((1, 257)), ["R1"], np.zeros((1, 257)))
    with pytest.raises(ConfigError, match="query descriptors have 3 dimensions, references 4"):
        search_descriptors(["Q1"], np.zeros((1, 3)), ["R1"], np.zeros((1, 4)))


def test_cli_descriptor_track(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, (qn, xq), (rn, xb) = random_set(5, 90, 30, 8, 4)
    write_descriptors(tmp_path / "q.h5", qn, xq)
    write_descriptors(tmp_path / "r.h5", rn, xb)
    gt_file = tmp_path / "gt.csv"
    gt_file.write_text(
        "query_id,reference_id\n"
        + "".join(f"{q},{r}\n" for q, r in sorted(gt.pairs))
        + "".join(f"{q},\n" for q in sorted(gt.distractors))
    )
    argv = ["eval", "--descriptors", str(tmp_path / "q.h5"), str(tmp_path / "r.h5"), "--ground-truth"]
    assert main([*argv, str(gt_file), "--max-results", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    held = oracle_search(xq, xb, 500)
    expected = official(gt.pairs, [(qn[qi], rn[ri], -float(v)) for v, qi, ri in held], limit=None)
    assert out["muap"] == pytest.approx(expected["muap"])
    assert (out["n_predictions"], out["dim"]) == (len(held), 8)
    assert main([*argv, str(gt_file), str(tmp_path / "q.h5")]) == 2  # a predictions file and descriptors
    assert "not both" in capsys.readouterr().err


def test_cli_bad_descriptor_file_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gt.csv").write_text("query_id,reference_id\nQ00001,R000001\n")
    (tmp_path / "q.h5").write_bytes(b"\x89HDF not really")
    write_descriptors(tmp_path / "r.h5", ["R000001"], np.ones((1, 300)))
    argv = ["eval", "--descriptors", str(tmp_path / "q.h5"), str(tmp_path / "r.h5")]
    assert main([*argv, "--ground-truth", str(tmp_path / "gt.csv")]) == 3
    err = capsys.readouterr().err
    assert f"{tmp_path / 'q.h5'}: file: not a readable HDF5 file" in err
    assert "Traceback" not in err
    write_descriptors(tmp_path / "q.h5", ["Q00001"], np.ones((1, 300)))
    assert main([*argv, "--ground-truth", str(tmp_path / "gt.csv")]) == 2
    assert "300 dimensions, more than the 256" in capsys.readouterr().err


def test_a_selection_keeps_only_its_descriptors() -> None:
    gt, (qn, xq), (rn, xb) = random_set(6, 60, 20, 8, 4)
    keep_q, keep_r = set(qn[:30]), set(rn[:10])
    result = evaluate_descriptors(gt, (qn, xq), (rn, xb), query_ids=keep_q, reference_ids=keep_r)
    assert (result.n_query_descriptors, result.n_reference_descriptors) == (30, 10)
    expected = evaluate_descriptors(gt, (qn[:30], xq[:30]), (rn[:10], xb[:10]))
    assert result.scores.muap == expected.scores.muap
    with pytest.raises(ConfigError, match="no reference descriptors"):
        evaluate_descriptors(gt, (qn, xq), (rn, xb), reference_ids=set())
