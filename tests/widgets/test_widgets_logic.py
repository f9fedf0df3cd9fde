"""Pure widget logic without a frontend: paging, the pattern box, thumbnails, captions, sampling."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from isc_kit.errors import ConfigError
from isc_kit.metadata import read_metadata
from isc_kit.widgets.imagesource import LocalImages, entries
from isc_kit.widgets.paging import page_view, parse_pattern
from isc_kit.widgets.thumbnails import ThumbnailCache, detail_caption, human_bytes, make_thumbnail

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The documented sample key function, in plain Python (independent of numpy)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def expected_sample(ids: list[str], n: int, seed: int) -> list[str]:
    s = splitmix64(seed & MASK)
    keyed = sorted(ids, key=lambda i: splitmix64(s ^ ((ord(i[0]) << 40) | int(i[1:]))))
    return sorted(keyed[:n])


# ---------------------------------------------------------------------------------------------- paging


@pytest.mark.parametrize(
    ("page", "size", "total", "expected_page", "start", "stop", "pages"),
    [
        (0, 24, 100, 0, 0, 24, 5),
        (4, 24, 100, 4, 96, 100, 5),
        (9, 24, 100, 4, 96, 100, 5),  # clamped to the last page
        (-1, 24, 100, 4, 96, 100, 5),  # -1 = last
        (-9, 24, 100, 0, 0, 24, 5),
        (3, 12, 0, 0, 0, 0, 1),  # empty selection: page 1 of 1
        (1, 10, 20, 1, 10, 20, 2),
    ],
)
def test_page_view_clamps_and_slices(page, size, total, expected_page, start, stop, pages):
    view = page_view(page, size, total)
    assert (view.page, view.start, view.stop, view.pages) == (expected_page, start, stop, pages)


def test_page_view_label_and_items():
    ids = [f"Q{i:05d}" for i in range(30)]
    view = page_view(1, 12, len(ids))
    assert view.items(ids) == ids[12:24]
    assert view.label() == "page 2 / 3 · images 13–24 of 30"
    assert page_view(0, 12, 0).label() == "page 1 / 1 · no images"
    with pytest.raises(ConfigError, match="page size"):
        page_view(0, 0, 10)


@pytest.mark.parametrize(
    ("text", "filters"),
    [
        ("", ()),
        ("Q00*", (("exclude", "*"), ("include", "Q00*"))),
        ("Q00* Q01*", (("exclude", "*"), ("include", "Q00*"), ("include", "Q01*"))),
        ('--exclude "*" --include "Q01*"', (("exclude", "*"), ("include", "Q01*"))),
        ("--exclude=Q0001*", (("exclude", "Q0001*"),)),
    ],
)
def test_parse_pattern(text, filters):
    assert parse_pattern(text) == filters


@pytest.mark.parametrize(
    ("text", "message"),
    [("--include", "needs a glob"), ("--foo x", "not --include or --exclude"), ('"Q00*', "close the quote")],
)
def test_parse_pattern_errors_say_how_to_fix(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_pattern(text)


# ---------------------------------------------------------------------------------------------- thumbnails


def _jpeg(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_make_thumbnail_keeps_aspect_and_bounds():
    thumb = Image.open(io.BytesIO(make_thumbnail(_jpeg(640, 320), 160)))
    assert thumb.format == "JPEG"
    assert thumb.size == (160, 80)
    with pytest.raises(ValueError, match="not a readable image"):
        make_thumbnail(b"not an image")


def test_thumbnail_cache_makes_once_then_reads_from_disk(tiny_root: Path, tmp_path: Path):
    manifest = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    images = LocalImages(tiny_root, layout="bucket")
    items = entries(manifest, ["Q00003", "Q00001"])
    cache = ThumbnailCache(tmp_path)
    first = cache.load(images, manifest, items)
    assert [t.image_id for t in first] == ["Q00003", "Q00001"]
    assert cache.made == 2
    assert len(list(tmp_path.rglob("*.jpg"))) == 2
    again = ThumbnailCache(tmp_path)
    second = again.load(images, manifest, items)
    assert again.made == 0
    assert [t.data for t in second] == [t.data for t in first]
    original = Image.open(tiny_root / "all/query_images/Q00003.jpg")
    thumb = Image.open(io.BytesIO(first[0].data))
    assert max(thumb.size) == min(160, max(original.size))


def test_thumbnail_token_changes_when_the_file_changes(tmp_path: Path, tiny_root: Path):
    manifest = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "Q00000.jpg").write_bytes(_jpeg(100, 50))
    images = LocalImages(dest)
    cache = ThumbnailCache(tmp_path / "cache")
    (entry,) = entries(manifest, ["Q00000"])
    a = cache.load(images, manifest, [entry])[0]
    (dest / "Q00000.jpg").write_bytes(_jpeg(50, 100))
    b = cache.load(images, manifest, [entry])[0]
    assert Image.open(io.BytesIO(a.data)).size == (100, 50)
    assert Image.open(io.BytesIO(b.data)).size == (50, 100)


def test_local_state_verified_missing_corrupt(tmp_path: Path, tiny_root: Path):
    manifest = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    src = tiny_root / "all/query_images"
    for name in ("Q00000.jpg", "Q00001.jpg"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    (tmp_path / "Q00001.jpg").write_bytes(b"damaged")
    images = LocalImages(tmp_path)
    e0, e1, e2 = entries(manifest, ["Q00000", "Q00001", "Q00002"])
    assert e0.md5 == hashlib.md5((src / "Q00000.jpg").read_bytes()).hexdigest()
    assert [images.state(manifest, e) for e in (e0, e1, e2)] == ["verified", "corrupt", "missing"]


def test_captions():
    assert human_bytes(23_400) == "23.4 KB"
    assert human_bytes(999) == "999 B"
    assert (
        detail_caption("Q00012", 23_400, (256, 192), "verified") == "Q00012 · 23.4 KB · 256×192 px · verified"
    )
    assert detail_caption("Q00012", None, None, "missing") == (
        "Q00012 · size unknown · dimensions unknown · missing"
    )


# ---------------------------------------------------------------------------------------------- sampling


def test_draw_sample_matches_documented_keys(tiny_root: Path):
    from isc_kit.widgets import draw_sample

    manifest = read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference")
    for seed in (0, 7):
        got = draw_sample({"reference": manifest}, "reference", 5, seed)
        assert list(got) == ["reference"]
        assert got["reference"].ids == expected_sample(manifest.ids, 5, seed)


def test_draw_sample_keeps_ground_truth_pairs(tiny_root: Path):
    from isc_kit.groundtruth import load_ground_truth
    from isc_kit.widgets import draw_sample

    q = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    r = read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference")
    gt = load_ground_truth(tiny_root / "metadata/public_ground_truth.csv")
    rows = (tiny_root / "metadata/public_ground_truth.csv").read_text().splitlines()[1:]
    pairs = {tuple(row.split(",")) for row in rows if not row.endswith(",")}
    got = draw_sample({"query": q, "reference": r}, "query", 10, 3, ground_truth=gt, distractors=2)
    queries = got["query"].ids
    assert queries == expected_sample([row.split(",")[0] for row in rows], 10, 3)
    matched = {ref for qq, ref in pairs if qq in queries}
    refs = set(got["reference"].ids)
    assert matched <= refs
    assert len(refs - matched) == 2
    assert not (refs - matched) & {ref for _, ref in pairs}
    with pytest.raises(ConfigError, match="needs a query set"):
        draw_sample({"reference": r}, "reference", 3, 0, ground_truth=gt)


# ---------------------------------------------------------------------------------------------- use this sample

LONG = (
    "s3://drivendata-competition-fb-isc-data/metadata/a-rather-long-folder-name/reference_images_metadata.csv"
)
PARAMS_BEFORE = f"""\
# isc_kit pipeline parameters
source:
  bucket: drivendata-competition-fb-isc-data   # base name
  region: 'us-west'                            # single quotes
  endpoint_url: null                           # null: from the environment
  anon: true
ground_truth: {{file: "s3://b/metadata/public_ground_truth.csv", queries: 200, distractors: 100, seed: 0}}
sets:
  query:
    metadata: {LONG}
    filters:
      - exclude: "*"
      - include: 'Q00*'
    sample: 300   # replaced by the id file
    seed: 0
  reference:
    metadata: "{LONG}"
    ground_truth: true
  training:
    metadata: s3://b/metadata/training_images_metadata.csv
    filters:
      - {{exclude: "*"}}
      - {{include: "T000*"}}
    prefix: null
"""


def test_use_sample_changes_only_its_own_keys(tiny_root: Path, tmp_path: Path):
    from isc_kit.select import Selection, select
    from isc_kit.widgets import use_sample

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_BEFORE)
    q = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    used = use_sample({"query": select(q, Selection(sample=4, seed=0))}, params)
    id_file = used.files["query"].relative_to(tmp_path).as_posix()
    lines = PARAMS_BEFORE.splitlines(keepends=True)
    start = lines.index("    filters:\n")
    expected = "".join([*lines[:start], f"    id_file: {id_file}\n", *lines[start + 5 :]])
    assert params.read_text() == expected  # byte for byte: null, quotes, long lines, flow style, comments


def test_use_sample_outside_a_project_refuses(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from isc_kit.select import Selection, select
    from isc_kit.widgets import use_sample

    monkeypatch.chdir(tmp_path)
    q = read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query")
    with pytest.raises(ConfigError, match=r"is not a DVC project \(no dvc.yaml\): pass params_path="):
        use_sample({"query": select(q, Selection(sample=2, seed=0))}, "params.yaml")
    assert list(tmp_path.iterdir()) == []  # no stray params.yaml, no selections/
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # inside a project a missing params.yaml is created
    use_sample({"query": select(q, Selection(sample=2, seed=0))}, "params.yaml")
    assert "id_file: selections/query-" in (tmp_path / "params.yaml").read_text()
