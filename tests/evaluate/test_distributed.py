"""Baseline descriptors on a real Dask cluster (two worker processes) against the embedded S3.

Each worker fetches its chunks through isc_kit's verified engine (or reads a shared folder); the HDF5
file must hold exactly what the single-process baseline writes from a plain fetch of the same selection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from faultproxy import FaultMix, FaultProxy  # noqa: E402

from isc_kit.baseline import run_baseline  # noqa: E402
from isc_kit.cli.main import main  # noqa: E402
from isc_kit.distributed import ChunkFetchError, describe_on_dask  # noqa: E402
from isc_kit.errors import ChecksumMismatchError  # noqa: E402
from isc_kit.evaluate.descriptors import read_descriptors  # noqa: E402
from isc_kit.manifest import Manifest  # noqa: E402
from isc_kit.metadata import read_metadata  # noqa: E402
from isc_kit.pinned import write_pinned  # noqa: E402
from isc_kit.source import Source  # noqa: E402
from isc_kit.transfer import fetch  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def manifests(tiny_root: Path) -> dict[str, Manifest]:
    meta = tiny_root / "metadata"
    return {s: read_metadata(meta / f"{s}_images_metadata.csv", s) for s in ("query", "reference")}


@pytest.fixture(scope="module")
def single(
    manifests: dict[str, Manifest], s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The single-process run: a plain verified fetch, then the baseline's HDF5 output."""
    root = tmp_path_factory.mktemp("single")
    source = Source(endpoint_url=s3_endpoint)
    for name, m in manifests.items():
        assert fetch(m, root / name, source=source).ok
    run_baseline(
        root / "query", root / "reference", None, jobs=1, descriptors_out=(root / "q.h5", root / "r.h5")
    )
    return {
        "query": root / "query",
        "reference": root / "reference",
        "q.h5": root / "q.h5",
        "r.h5": root / "r.h5",
    }


def same_file(a: Path, b: Path) -> None:
    names_a, vec_a = read_descriptors(a)
    names_b, vec_b = read_descriptors(b)
    assert names_a == names_b
    assert np.array_equal(vec_a, vec_b)  # bit for bit


def test_workers_fetch_and_describe_like_one_process(
    client, manifests, single, s3_endpoint: str, tmp_path: Path
) -> None:
    source = Source(endpoint_url=s3_endpoint)  # given to the workers explicitly, not via their environment
    for name, h5 in (("query", "q.h5"), ("reference", "r.h5")):
        out = tmp_path / h5
        result = describe_on_dask(
            client,
            manifests[name],
            out,
            source=source,
            chunk_size=7,
            work_dir=str(tmp_path / "w"),
            keep_images=True,
        )
        assert (result.n_images, result.n_written, result.n_unreadable) == (len(manifests[name]),) * 2 + (0,)
        assert result.n_chunks == -(-len(manifests[name]) // 7)
        same_file(out, single[h5])
        # the images the workers fetched are byte for byte the single run's
        fetched = {p.name: p.read_bytes() for p in (tmp_path / "w" / "isc-kit" / name).glob("chunk-*/*.jpg")}
        assert fetched == {p.name: p.read_bytes() for p in single[name].glob("*.jpg")}
    assert client.run(lambda: __import__("os").environ.get("ISC_KIT_ENDPOINT_URL")) == dict.fromkeys(
        client.scheduler_info()["workers"]
    )  # the workers never had the endpoint in their environment


def test_a_shared_folder_is_read_and_checked(client, manifests, single, tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    describe_on_dask(client, manifests["reference"], out, shared_dir=single["reference"], chunk_size=5)
    same_file(out, single["r.h5"])
    # a file that differs from the manifest is refused, not described
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in single["reference"].glob("*.jpg"):
        (bad / p.name).write_bytes(p.read_bytes())
    victim = sorted(bad.glob("*.jpg"))[3]
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(ChecksumMismatchError, match=victim.name):
        describe_on_dask(client, manifests["reference"], tmp_path / "x.h5", shared_dir=bad, retries=0)
    assert not (tmp_path / "x.h5").exists()
    victim.unlink()
    with pytest.raises(ChunkFetchError, match=f"{victim.name}: cannot read"):
        describe_on_dask(client, manifests["reference"], tmp_path / "x.h5", shared_dir=bad, retries=0)


def test_failed_tasks_are_retried_by_dask(
    client, manifests, single, s3_endpoint: str, tmp_path: Path
) -> None:
    no_engine_retries = {"retries": 0, "mirrors": []}  # any fault fails the chunk's task
    mix = FaultMix(error500=0.3)
    with FaultProxy(s3_endpoint, mix, seed=1) as proxy, pytest.raises(ChunkFetchError, match="not fetched"):
        describe_on_dask(
            client, manifests["query"], tmp_path / "q0.h5", source=Source(endpoint_url=proxy.url),
            retries=0, fetch_options=no_engine_retries, chunk_size=4,
        )  # fmt: skip
    with FaultProxy(s3_endpoint, mix, seed=1) as proxy:
        describe_on_dask(
            client, manifests["query"], tmp_path / "q.h5", source=Source(endpoint_url=proxy.url),
            retries=25, fetch_options=no_engine_retries, chunk_size=4,
        )  # fmt: skip
        assert proxy.injected["error500"] > 0
    same_file(tmp_path / "q.h5", single["q.h5"])


def test_cli_dask(client, manifests, single, s3_endpoint: str, tmp_path: Path, capsys) -> None:
    pinned = []
    for name in ("query", "reference"):
        pinned.append(tmp_path / f"{name}.pinned")
        write_pinned(manifests[name], pinned[-1])
    argv = ["baseline", "--dask", client.scheduler.address, "--pinned", *map(str, pinned)]
    outs = [str(tmp_path / "q.h5"), str(tmp_path / "r.h5")]
    assert main([*argv, "--descriptors-out", *outs, "--endpoint-url", s3_endpoint, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["n_written"] for r in report] == [len(manifests["query"]), len(manifests["reference"])]
    same_file(Path(outs[0]), single["q.h5"])
    same_file(Path(outs[1]), single["r.h5"])
    assert main([*argv, "-o", str(tmp_path / "p.csv")]) == 2
    assert "--dask takes --pinned" in capsys.readouterr().err


def test_cli_progress_is_dasks_bar_on_stderr(client, capsys: pytest.CaptureFixture[str]) -> None:
    from isc_kit.cli.baseline import _stderr_progress

    futures = client.map(abs, range(-4, 0))
    thread = _stderr_progress(futures)
    assert client.gather(futures) == [4, 3, 2, 1]
    thread.join(timeout=60)
    captured = capsys.readouterr()
    assert "100% of chunks" in captured.err
    assert captured.out == ""


def test_a_lost_worker_s_task_is_rescheduled(
    client, manifests, single, s3_endpoint: str, tmp_path: Path
) -> None:
    import os
    import signal
    import time
    from concurrent.futures import ThreadPoolExecutor

    slow = FaultMix(delay=1.0, delay_seconds=0.4)  # every GET waits: a chunk of 4 takes ~1.6 s
    with FaultProxy(s3_endpoint, slow) as proxy, ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            describe_on_dask, client, manifests["query"], tmp_path / "q.h5", source=Source(endpoint_url=proxy.url),
            chunk_size=4, fetch_options={"jobs": 1}, retries=0,
        )  # fmt: skip
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and not running.done():
            busy = [w for w, keys in client.processing().items() if any("describe-query" in k for k in keys)]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim is not None, "no worker was ever seen describing"
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)  # the worker dies mid-task; its nanny starts a new one
        result = running.result(timeout=300)
    assert result.n_written == len(manifests["query"])
    same_file(tmp_path / "q.h5", single["q.h5"])
    client.wait_for_workers(2, timeout=60)
