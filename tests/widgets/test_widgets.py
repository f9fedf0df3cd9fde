"""Widgets driven like a user would: set traits, click buttons, read what the children show."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image
from test_widgets_logic import expected_sample

from isc_kit.groundtruth import load_ground_truth
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.select import Selection, select
from isc_kit.widgets import Gallery, LocalImages, Overview, PairViewer, Sampler, ThumbnailCache


@pytest.fixture(scope="module")
def tiny_manifests(tiny_root: Path) -> dict[str, Manifest]:
    return {
        "query": read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query"),
        "reference": read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference"),
    }


@pytest.fixture
def images(tiny_root: Path) -> LocalImages:
    return LocalImages(tiny_root, layout="bucket")


@pytest.fixture
def thumbs(tmp_path: Path) -> ThumbnailCache:
    return ThumbnailCache(tmp_path / "thumbs")


def qids(a: int, b: int) -> list[str]:
    return [f"Q{i:05d}" for i in range(a, b)]


def test_gallery_pages_with_buttons(tiny_manifests, images, thumbs):
    g = Gallery(tiny_manifests, images, thumbnails=thumbs, page_size=12)
    assert g.set_name == "query"
    assert g.shown_ids == qids(0, 12)
    assert g.tile_captions == qids(0, 12)
    assert g._page_label.value == "page 1 / 2 · images 1–12 of 20"
    assert g._prev.disabled
    assert not g._next.disabled
    g._next.click()
    assert (g.page, g.shown_ids) == (1, qids(12, 20))
    assert g._next.disabled
    assert g._last.disabled
    g._first.click()
    assert g.shown_ids == qids(0, 12)
    g._last.click()
    assert g.page == 1
    g._size_box.value = 24
    assert (g.page, g.shown_ids) == (0, qids(0, 20))
    g.page = 99  # clamped
    assert g.page == 0


def test_gallery_every_tile_shows_a_decodable_thumbnail(tiny_manifests, images, thumbs):
    g = Gallery(tiny_manifests, images, thumbnails=thumbs, page_size=12)
    for tile in g._grid.children:
        im = Image.open(io.BytesIO(tile.image.value))
        assert im.format == "JPEG"
        assert max(im.size) <= 160


def test_gallery_set_selector_and_pattern(tiny_manifests, images, thumbs):
    g = Gallery(tiny_manifests, images, thumbnails=thumbs, page_size=12)
    assert list(g._set_box.options) == ["query", "reference"]
    g._set_box.value = "reference"
    assert g.shown_ids == [f"R{i:06d}" for i in range(12)]
    g._set_box.value = "query"
    g._pattern_box.value = "Q0001*"
    assert g.shown_ids == qids(10, 20)
    g._pattern_box.value = '--exclude "Q0001*"'
    assert g.shown_ids == qids(0, 10)
    g.pattern = '--exclude "*" --include "Q0000[2-4].jpg" --exclude "Q00003*"'  # last match wins
    assert g.shown_ids == ["Q00002", "Q00004"]
    g.pattern = "--bogus"
    assert "not --include or --exclude" in g.message
    assert "isc-error" in g._message_box.value
    assert g.shown_ids == ["Q00002", "Q00004"]  # a bad pattern leaves the view as it was


def test_gallery_click_enlarges_with_id_size_dimensions_and_state(tiny_manifests, images, thumbs, tiny_root):
    g = Gallery(tiny_manifests, images, thumbnails=thumbs, page_size=12)
    g._set_box.value = "reference"
    g._grid.children[3].button.click()
    assert g.selected == "R000003"
    path = tiny_root / "all/reference_images/R000003.jpg"
    w, h = Image.open(path).size
    size = path.stat().st_size
    kb = f"{size / 1000:,.1f} KB"
    assert g.detail_text == f"R000003 · {kb} · {w}×{h} px · verified"
    assert g._detail.layout.display == "flex"
    assert Image.open(io.BytesIO(g._detail_image.value)).size == (w, h)  # small originals are not upscaled
    g._close.click()
    assert g.selected == ""
    assert g._detail.layout.display == "none"


def test_gallery_marks_missing_and_corrupt(tiny_manifests, tmp_path, thumbs, tiny_root):
    dest = tmp_path / "dest"
    dest.mkdir()
    src = tiny_root / "all/query_images"
    for i in range(4):
        (dest / f"Q{i:05d}.jpg").write_bytes((src / f"Q{i:05d}.jpg").read_bytes())
    (dest / "Q00002.jpg").write_bytes(b"\xff\xd8 truncated")
    g = Gallery(tiny_manifests["query"], LocalImages(dest), thumbnails=thumbs, page_size=12)
    assert g.tile_captions[:6] == [
        "Q00000",
        "Q00001",
        "Q00002 (corrupt)",  # the same word as the enlarged view (its md5 is not the manifest's)
        "Q00003",
        "Q00004 (missing)",
        "Q00005 (missing)",
    ]
    g.click("Q00002")
    assert g.detail_text.endswith("· corrupt")
    (dest / "Q00003.jpg").write_bytes(b"not a jpeg")  # md5 unknown for a manifest without one: still corrupt
    g.click("Q00004")
    assert g.detail_text == "Q00004 · size unknown · dimensions unknown · missing"
    g.click("Q00001")
    assert g.detail_text.endswith("· verified")


def test_sampler_resample_and_use_this_sample(tiny_manifests, images, thumbs, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "# pipeline settings\nsets:\n  query:\n    metadata: data/query.csv  # from the publisher\n"
        "    sample: 100\n    seed: 9\nfetch:\n  jobs: 8\n"
    )
    s = Sampler(tiny_manifests, images, params_path=params, size=6, seed=0, thumbnails=thumbs)
    all_q = tiny_manifests["query"].ids
    assert s.gallery.shown_ids == expected_sample(all_q, 6, 0)
    s._resample.click()
    assert s.seed == 1
    assert s._seed_box.value == 1
    shown = s.gallery.shown_ids
    assert shown == expected_sample(all_q, 6, 1)
    s._size_box.value = 4
    assert s.gallery.shown_ids == expected_sample(all_q, 4, 1)
    s._use.click()
    assert "run `dvc repro`" in s.status
    data = yaml.safe_load(params.read_text())
    id_file = data["sets"]["query"].pop("id_file")
    assert re.fullmatch(r"selections/query-[0-9a-f]{10}\.txt", id_file)
    assert data["sets"]["query"] == {"metadata": "data/query.csv"}
    assert data["fetch"] == {"jobs": 8}
    assert "# from the publisher" in params.read_text()  # comments survive
    id_file = tmp_path / id_file
    listed = [line for line in id_file.read_text().splitlines() if not line.startswith("#")]
    assert listed == expected_sample(all_q, 4, 1)
    # the pipeline's own selection code reads the file back to exactly what was shown
    pinned = select(tiny_manifests["query"], Selection(id_file=str(id_file)))
    assert pinned.ids == s.gallery.shown_ids


def test_sampler_keep_pairs_writes_both_sets(tiny_manifests, images, thumbs, tmp_path, tiny_root):
    gt_path = tiny_root / "metadata/public_ground_truth.csv"
    with open(gt_path) as fh:
        rows = list(csv.DictReader(fh))
    pairs = {(r["query_id"], r["reference_id"]) for r in rows if r["reference_id"]}
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # a project without params.yaml yet
    s = Sampler(
        tiny_manifests,
        images,
        ground_truth=load_ground_truth(gt_path),
        params_path=tmp_path / "params.yaml",
        size=8,
        seed=2,
        thumbnails=thumbs,
    )
    s._pairs_box.value = True
    queries = s.sample["query"].ids
    assert queries == expected_sample([r["query_id"] for r in rows], 8, 2)
    assert set(s.sample["reference"].ids) == {r for q, r in pairs if q in queries}
    assert s.gallery.shown_ids == queries
    s._set_box.value = "reference"  # with pairs kept, the set box picks which half to look at
    assert s.sample["query"].ids == queries  # the same draw
    assert s.gallery.set_name == "reference"
    assert s.gallery.shown_ids == s.sample["reference"].ids
    assert "showing reference" in s.status
    s._set_box.value = "query"
    s.use()
    data = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert sorted(data["sets"]) == ["query", "reference"]
    for name in ("query", "reference"):
        (id_file,) = data["sets"][name].values()
        listed = (tmp_path / id_file).read_text().splitlines()[2:]
        assert listed == s.sample[name].ids
    first = data["sets"]["query"]["id_file"]
    s.resample()
    s.use()
    again = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert again["sets"]["query"]["id_file"] != first  # a new sample changes params.yaml, so dvc reruns
    assert not (tmp_path / first).exists()  # and the old list is gone
    assert len(list((tmp_path / "selections").glob("query-*.txt"))) == 1


def test_sampler_reports_a_broken_params_file(tiny_manifests, images, thumbs, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("sets: [unclosed\n")
    s = Sampler(tiny_manifests, images, params_path=params, size=3, thumbnails=thumbs)
    assert s.use() is None
    assert "invalid YAML" in s.status
    assert params.read_text() == "sets: [unclosed\n"  # untouched
    assert not (tmp_path / "selections").exists()


def test_pair_viewer_steps_through_pairs_and_marks_distractors(tiny_manifests, images, thumbs, tiny_root):
    gt_path = tiny_root / "metadata/public_ground_truth.csv"
    with open(gt_path) as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["query_id"])
    pv = PairViewer(
        load_ground_truth(gt_path),
        tiny_manifests["query"],
        tiny_manifests["reference"],
        images,
        thumbnails=thumbs,
    )
    seen = []
    for _ in rows:
        seen.append((pv.query_id, tuple(pv.reference_ids)))
        pv._next.click()
    assert seen == [(r["query_id"], (r["reference_id"],) if r["reference_id"] else ()) for r in rows]
    pv.show = "matched"
    matched = [r for r in rows if r["reference_id"]]
    assert len(pv.items) == len(matched)
    assert pv.caption == f"{matched[0]['query_id']}: edited copy of {matched[0]['reference_id']}"
    assert [c._dom_classes for c in pv._ref_box.children] == [("isc-pair-reference",)]
    pv._show_box.value = "distractors"
    first = next(r["query_id"] for r in rows if not r["reference_id"])
    assert pv.query_id == first
    assert "distractor" in pv.caption
    assert "isc-distractor" in pv._caption_box.value
    assert [c._dom_classes for c in pv._ref_box.children] == [("isc-pair-distractor",)]
    pv._prev.click()
    assert pv.index == 0
    pv._jump_box.value = matched[1]["query_id"]  # the jump box switches back to "all" when needed
    assert (pv.show, pv.query_id) == ("all", matched[1]["query_id"])
    pv._keys.key = "ArrowRight"
    pv._keys.count += 1
    assert pv.query_id == rows[[r["query_id"] for r in rows].index(matched[1]["query_id"]) + 1]["query_id"]
    pv._jump_box.value = "Q99999"
    assert "Q99999 is not a query" in pv._caption_box.value


def test_overview_counts_bytes_and_verified_share(tiny_manifests, tmp_path, tiny_root):
    dest = tmp_path / "dest"
    dest.mkdir()
    src = tiny_root / "all/query_images"
    total = 0
    for i in range(5):
        data = (src / f"Q{i:05d}.jpg").read_bytes()
        (dest / f"Q{i:05d}.jpg").write_bytes(data)
        total += len(data)
    (dest / "Q00004.jpg").write_bytes(b"x" * 10)
    ov = Overview({"query": tiny_manifests["query"]}, LocalImages(dest))
    row = ov.table.iloc[0]
    assert (row["set"], row["images"], row["local"], row["verified"]) == ("query", 20, 5, 4)
    assert row["verified_share"] == pytest.approx(0.2)
    assert row["bytes"] is None or pd_isna(row["bytes"])  # sizes of 15 images are unknown
    local = ov.stats[ov.stats["local"]]
    assert int(local["bytes"].sum()) == total - len((src / "Q00004.jpg").read_bytes()) + 10
    w, h = Image.open(src / "Q00001.jpg").size
    r1 = ov.stats.set_index("image_id").loc["Q00001"]
    assert (int(r1["width"]), int(r1["height"])) == (w, h)
    assert "4 (20%)" in ov._table_box.value
    svg = ov._plot.value
    assert svg.startswith("<svg")
    assert "var(--jp-ui-font-color1" in svg  # text and axes follow the theme
    assert "#010203" not in svg
    assert "fill: #ffffff" not in svg  # no white card behind the plot


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_gallery_jump_keys_and_detail_facts(tiny_manifests, images, thumbs, tiny_root):
    gt = load_ground_truth(tiny_root / "metadata/public_ground_truth.csv")
    query, reference = tiny_manifests["query"], tiny_manifests["reference"]
    pv = PairViewer(gt, query, reference, images, thumbnails=thumbs)
    g = Gallery(tiny_manifests, images, thumbnails=thumbs, page_size=12, ground_truth=gt, pair_viewer=pv)
    g._jump_box.value = "Q00015"
    assert (g.page, g.selected) == (1, "Q00015")
    assert g.detail_text.startswith("Q00015 · ")
    g._keys.key = "ArrowLeft"
    g._keys.count += 1  # what the browser sends for ←
    assert (g.page, g.selected) == (1, "Q00014")
    g.step(-3)  # across the page boundary: the page follows
    assert (g.page, g.selected) == (0, "Q00011")
    g._keys.key = "Escape"
    g._keys.count += 1
    assert g.selected == ""
    assert g._detail.layout.display == "none"
    assert not g.jump("Q99999")
    assert "Q99999 is not in the query selection" in g.message
    matched = sorted(gt.pairs)[0]
    g.jump(matched[0])
    md5 = query.table.set_index("image_id").loc[matched[0], "md5"]
    facts = g.detail_facts.splitlines()
    assert facts[0] == f"md5 {md5}"
    assert facts[1] == f"path {tiny_root / 'all/query_images' / (matched[0] + '.jpg')}"
    assert facts[2].startswith(f"ground truth: edited copy of {matched[1]}")
    g._to_pair.click()  # the link into the pair view
    assert pv.query_id == matched[0]
    assert pv.reference_ids == [r for q, r in sorted(gt.pairs) if q == matched[0]]
    g.set_name = "reference"
    g.jump(matched[1])
    assert f"ground truth: copied by {matched[0]}" in g.detail_facts


def test_pair_viewer_shows_a_distractors_best_candidates(tiny_manifests, images, thumbs, tiny_root, tmp_path):
    gt = load_ground_truth(tiny_root / "metadata/public_ground_truth.csv")
    distractor = sorted(gt.distractors)[0]
    refs = tiny_manifests["reference"].ids
    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "query_id,reference_id,score\n"
        f"{distractor},{refs[0]},0.25\n{distractor},{refs[1]},0.75\n{distractor},{refs[2]},0.5\n"
        f"{distractor},{refs[3]},0.1\n"
    )
    pv = PairViewer(
        gt,
        tiny_manifests["query"],
        tiny_manifests["reference"],
        images,
        thumbnails=thumbs,
        predictions=predictions,
    )
    pv.show = "distractors"
    assert pv.query_id == distractor
    panels = pv._ref_box.children
    assert [p._dom_classes for p in panels] == [("isc-pair-distractor",)] + [("isc-pair-candidate",)] * 3
    titles = [p.title.value for p in panels[1:]]
    assert [t.split("</b> ")[1] for t in titles] == [refs[1], refs[2], refs[0]]  # best first
    assert "score 0.750" in titles[0]
    assert all(p.image.value for p in panels[1:])  # pictures, not text only


def test_widgets_say_once_that_a_dead_endpoint_cannot_be_reached(tiny_manifests, tmp_path):
    import socket

    from isc_kit.source import Source
    from isc_kit.widgets import S3Images

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    images = S3Images(Source(endpoint_url=url), cache_dir=tmp_path / "cache")
    g = Gallery(tiny_manifests["query"], images, thumbnails=ThumbnailCache(tmp_path / "thumbs"), page_size=6)
    assert g.message.startswith(f"cannot reach S3 at {url} (")
    assert "rerun the notebook's first cell" in g.message
    assert g._message_box.value.count("cannot reach") == 1
    assert g.shown_ids == []  # no blank "(unreadable)" tiles
    assert g._page_label.value.endswith("· not loaded")
    g._next.click()
    assert g.page == 1
    assert g.shown_ids == []
    assert g._message_box.value.count("cannot reach") == 1


def test_sampler_explains_why_pairs_are_unavailable(tiny_manifests, images, thumbs, tmp_path, monkeypatch):
    from isc_kit.errors import ConfigError
    from isc_kit.widgets import sampler as sampler_module

    s = Sampler(tiny_manifests, images, params_path=tmp_path / "params.yaml", size=3, thumbnails=thumbs)
    assert s._pairs_box.disabled
    assert s._pairs_box.tooltip == "Keeping pairs needs the ground truth: pass ground_truth= to the sampler."
    s.keep_pairs = True  # from code anyway: the draw stays a plain sample, and says what it shows
    assert s.status == "sample (seed 0): 3 query; showing query"

    def refuse(*_args, **_kwargs):
        raise ConfigError("no such sample")

    monkeypatch.setattr(sampler_module, "draw_sample", refuse)
    s.seed = 5
    assert s.status == "no such sample"
    assert s.sample == {}
    assert s.gallery.shown_ids == []  # the gallery never keeps an older sample beside an error
