"""PinnedImages: a map-style dataset over a pinned selection, verified on first read, picklable for workers."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
import shutil
from pathlib import Path

import pytest
from PIL import Image

from isc_kit import PinnedImages
from isc_kit.errors import ChecksumMismatchError, ConfigError, IscKitError
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.pinned import load_pinned, write_pinned

_DATASET: PinnedImages | None = None


def _init_worker(dataset: PinnedImages) -> None:  # runs in a spawned worker: the dataset arrived pickled
    global _DATASET
    _DATASET = dataset


def _load(index: int) -> tuple[str, tuple[int, int], str, int]:
    assert _DATASET is not None
    image_id, image = _DATASET[index]
    return image_id, image.size, image.mode, _DATASET.n_verified


@pytest.fixture
def tree(tiny_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A pinned manifest of the tiny reference set and a private copy of its files (a fetch destination)."""
    manifest = read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference")
    pinned = tmp_path / "reference.pinned"
    write_pinned(manifest, pinned)
    root = tmp_path / "data"
    shutil.copytree(tiny_root / manifest.prefix, root)
    return pinned, root


def test_iterates_every_image_in_manifest_order(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    manifest = load_pinned(pinned)
    data = PinnedImages(pinned, root)
    assert len(data) == 40
    seen = []
    for i in range(len(data)):
        image_id, image = data[i]
        assert isinstance(image, Image.Image)
        with Image.open(root / f"{image_id}.jpg") as direct:
            assert image.size == direct.size
        seen.append(image_id)
    assert seen == manifest.ids
    assert data.n_verified == 40
    assert data[-1][0] == "R000039"
    with pytest.raises(IndexError):
        data[40]


def test_a_file_whose_md5_differs_from_the_manifest_is_refused(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    target = root / "R000007.jpg"
    body = bytearray(target.read_bytes())
    expected = hashlib.md5(body).hexdigest()
    body[len(body) // 2] ^= 0xFF
    target.write_bytes(bytes(body))
    data = PinnedImages(pinned, root)
    with pytest.raises(ChecksumMismatchError) as info:
        data[7]
    message = str(info.value)
    assert message.startswith(f"md5 of {target} is {hashlib.md5(body).hexdigest()}, manifest says {expected}")
    assert "--repair" in message
    assert isinstance(info.value, ValueError)
    assert data[8][0] == "R000008"  # the others still read
    assert data.n_verified == 1


def test_a_missing_file_says_to_fetch(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    (root / "R000003.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"R000003\.jpg: not found; fetch the selection first"
    ) as info:
        PinnedImages(pinned, root)[3]
    assert isinstance(info.value, IscKitError)


def test_mode_and_transform(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    data = PinnedImages(load_pinned(pinned), root, mode="L", transform=lambda im: im.size[0] * im.size[1])
    _, pixels = data[0]
    with Image.open(root / "R000000.jpg") as direct:
        assert pixels == direct.size[0] * direct.size[1]
    assert PinnedImages(pinned, root, mode="L")[0][1].mode == "L"


def test_unknown_md5_is_refused_unless_allowed(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    manifest = load_pinned(pinned)
    table = manifest.table.copy()
    table.loc[5, "md5"] = None
    unknown = Manifest.from_pandas(manifest.set_name, manifest.bucket, manifest.prefix, table)
    with pytest.raises(ConfigError, match=r"1 of 40 reference entries have no known MD5 \(first: R000005\)"):
        PinnedImages(unknown, root)
    assert PinnedImages(unknown, root, require_md5=False)[5][0] == "R000005"


def test_pickle_round_trip_into_spawned_worker_processes(tree: tuple[Path, Path]) -> None:
    pinned, root = tree
    data = PinnedImages(pinned, root, mode="RGB")
    assert len(pickle.dumps(data)) < 10_000  # fixed-width arrays, not 40 Python objects per column
    with multiprocessing.get_context("spawn").Pool(2, initializer=_init_worker, initargs=(data,)) as pool:
        out = pool.map(_load, range(len(data)), chunksize=5)
    assert [o[0] for o in out] == load_pinned(pinned).ids
    assert {o[2] for o in out} == {"RGB"}
    assert all(1 <= o[3] <= 40 for o in out)  # each worker verified what it read, in its own copy
    for image_id, size, _, _ in out[:3]:
        with Image.open(root / f"{image_id}.jpg") as direct:
            assert size == direct.size
    assert data.n_verified == 0  # the parent read nothing


@pytest.mark.parametrize(
    "values",
    [
        ["R000001", "R000002", "R000003"],  # one width: the data buffer is reinterpreted
        ["R000001.jpg", "R1.jpg", "R000003.jpg"],  # mixed widths
        ["0123456789abcdef0123456789abcdef", None],  # a null (unknown md5) becomes b""
    ],
)
def test_fixed_width_equals_a_plain_conversion(values: list[str | None]) -> None:
    from isc_kit.columns import StrColumn

    column = StrColumn.from_strings(v or "" for v in values)
    expected = [(v or "").encode() for v in values]
    assert column.fixed_width().tolist() == expected
    assert column.take(range(1, len(values))).fixed_width().tolist() == expected[1:]
