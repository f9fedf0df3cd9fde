"""Similar and EmbeddingMap driven like a user would (set traits, click buttons, read what shows), and both
in a real Jupyter kernel; bad input is one line in the widget and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from isc_kit.errors import ConfigError
from isc_kit.groundtruth import GroundTruth, load_ground_truth
from isc_kit.manifest import Manifest
from isc_kit.metadata import read_metadata
from isc_kit.neighbours import Neighbours
from isc_kit.widgets import EmbeddingMap, ErrorAnalysis, Gallery, LocalImages, Similar, ThumbnailCache
from isc_kit.widgets.embedding_map import MIN_PER_CLASS, inside, stratified_sample


@pytest.fixture(scope="module")
def manifests(tiny_root: Path) -> dict[str, Manifest]:
    return {
        "query": read_metadata(tiny_root / "metadata/query_images_metadata.csv", "query"),
        "reference": read_metadata(tiny_root / "metadata/reference_images_metadata.csv", "reference"),
    }


@pytest.fixture(scope="module")
def gt(tiny_root: Path) -> GroundTruth:
    return load_ground_truth(tiny_root / "metadata/public_ground_truth.csv")


@pytest.fixture(scope="module")
def descriptors(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Baseline descriptors of the tiny fixture, and its baseline predictions (for the verdict colours)."""
    from isc_kit.baseline import run_baseline

    d = tmp_path_factory.mktemp("descriptors")
    run_baseline(
        tiny_root / "all/query_images",
        tiny_root / "all/reference_images",
        d / "predictions.csv",
        descriptors_out=(d / "q.h5", d / "r.h5"),
    )
    return d / "q.h5", d / "r.h5", d / "predictions.csv"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("# the project's params\nsets:\n  query:\n    prefix: x  # kept\n")
    return tmp_path / "params.yaml"


@pytest.fixture
def similar(manifests, gt, descriptors, tiny_root, tmp_path, project) -> Similar:
    q, r, _ = descriptors
    return Similar(
        r,
        manifests,
        LocalImages(tiny_root, layout="bucket"),
        lookup=[q],
        ground_truth=gt,
        thumbnails=ThumbnailCache(tmp_path / "thumbs"),
        page_size=4,
        params_path=project,
    )


def test_similar_shows_neighbours_with_marks_and_partner(similar, gt, descriptors):
    query, partner = sorted(gt.pairs)[0]
    similar._id_box.value = query
    assert similar.query_id == query
    assert len(similar.shown_ids) == 4
    nb = Neighbours(descriptors[1], lookup=[descriptors[0]])
    assert similar.shown_ids == [h.image_id for h in nb.query(query, 4)]
    truth = {r for q, r in gt.pairs if q == query}
    assert similar.marks == ["match" if r in truth else "not" for r in similar.shown_ids]
    assert similar._partner.button.description == partner
    assert similar._partner.layout.display == "flex"
    assert f"edited copy of {partner}" in similar._picked.caption.value
    captions = [c.caption.value for c in similar._grid.children]
    assert captions[0].startswith("#1 · ")
    for card, word in zip(similar._grid.children, similar.marks, strict=True):
        assert f"isc-sim-{word}" in card._dom_classes


def test_similar_pages_and_clicks_through(similar):
    similar.show("Q00000")
    first = list(similar.shown_ids)
    assert similar._prev.disabled
    similar._next.click()
    assert similar.page == 1
    second = list(similar.shown_ids)
    assert not set(first) & set(second)
    assert similar._grid.children[0].caption.value.startswith("#5 · ")
    similar._prev.click()
    assert similar.shown_ids == first
    similar._grid.children[0].button.click()  # a neighbour's id: search from it
    assert similar.query_id == first[0]
    assert similar.page == 0
    assert first[0] not in similar.shown_ids


def test_similar_follows_the_gallery_and_the_error_analysis(
    similar, manifests, descriptors, gt, tiny_root, tmp_path
):
    images = LocalImages(tiny_root, layout="bucket")
    gallery = Gallery(manifests, images, thumbnails=ThumbnailCache(tmp_path / "t"), page_size=12)
    similar.follow(gallery)
    gallery.click(gallery.shown_ids[3])
    assert similar.query_id == gallery.shown_ids[3]
    assert len(similar.shown_ids) == 4
    errors = ErrorAnalysis(gt, descriptors[2], manifests["query"], manifests["reference"], images)
    similar.follow(errors)
    errors.select("Q00007")
    assert similar.query_id == "Q00007"


def test_similar_outside_image_and_bad_ids(similar, tiny_root, project):
    before = project.read_text()
    similar.show(tiny_root / "all/query_images/Q00002.jpg")
    assert similar.query_id == ""
    assert similar._picked.button.description == "outside image"
    assert set(similar.marks) == {"unknown"}
    assert len(similar.shown_ids) == 4
    similar.show("Q12345")
    assert "\n" not in similar.message
    assert "Q12345 has no descriptor" in similar.message
    assert project.read_text() == before


def test_add_to_selection_writes_params_round_trip_and_adds(similar, project, manifests):
    similar.show("Q00001")
    first = {"Q00001", *similar.shown_ids}
    similar._add.click()
    params = yaml.safe_load(project.read_text())
    assert "# the project's params" in project.read_text()  # round trip: comments stay
    assert params["sets"]["query"]["prefix"] == "x"
    ids_of = {}
    for s in ("query", "reference"):
        lines = (project.parent / params["sets"][s]["id_file"]).read_text().splitlines()
        ids_of[s] = {x for x in lines if not x.startswith("#")}
    assert ids_of["query"] | ids_of["reference"] == first
    similar._next.click()
    similar._add.click()  # a second page: added to, not replacing, the selection
    params = yaml.safe_load(project.read_text())
    lines = (project.parent / params["sets"]["reference"]["id_file"]).read_text().splitlines()
    assert {x for x in lines if not x.startswith("#")} >= ids_of["reference"] | set(similar.shown_ids)
    assert "wrote" in similar.message


def test_similar_builds_an_approximate_index_in_a_thread(manifests, tiny_root, tmp_path):
    ids = manifests["reference"].ids
    x = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    from isc_kit.evaluate.descriptors import write_descriptors

    path = tmp_path / "r.h5"
    write_descriptors(path, ids, x)
    images = LocalImages(tiny_root, layout="bucket")
    s = Similar(path, manifests, images, thumbnails=ThumbnailCache(tmp_path / "t"))
    assert not s.neighbours.approximate  # 40 vectors: exact, built at once
    assert s.build_thread is None
    s = Similar(path, manifests, images, thumbnails=ThumbnailCache(tmp_path / "t"), approximate_above=10)
    s.show(ids[0])  # asked while building (or after): shown once the index is there
    assert s.build_thread is not None
    s.build_thread.join(timeout=60)
    assert not s.build_thread.is_alive()
    nb = Neighbours(path, approximate_above=10, build=False)  # an unbuilt one is built the same way
    t = Similar(nb, manifests, images, thumbnails=ThumbnailCache(tmp_path / "t"))
    assert t.build_thread is not None
    t.build_thread.join(timeout=60)
    assert nb.ready
    assert s.neighbours.ready
    assert s._progress.value == s._progress.max
    assert len(s.shown_ids) == 8
    assert "approximate (IVF" in s._head.value


# ---------------------------------------------------------------------------------------------- the map


@pytest.fixture
def emap(manifests, gt, descriptors, tiny_root, tmp_path, project) -> EmbeddingMap:
    q, r, predictions = descriptors
    images = LocalImages(tiny_root, layout="bucket")
    gallery = Gallery(manifests, images, thumbnails=ThumbnailCache(tmp_path / "t"))
    errors = ErrorAnalysis(gt, predictions, manifests["query"], manifests["reference"], images)
    return EmbeddingMap(
        [q, r],
        manifests,
        images,
        ground_truth=gt,
        errors=errors,
        gallery=gallery,
        thumbnails=ThumbnailCache(tmp_path / "t"),
        params_path=project,
    )


def test_map_colours_by_set_truth_and_verdict(emap, gt):
    assert emap.method == "pca"
    assert list(emap._colour_box.options) == ["set", "ground truth", "verdict"]
    assert "query (20)" in emap._legend.value
    assert "reference (40)" in emap._legend.value
    emap._colour_box.value = "ground truth"
    matched = len({q for q, _ in gt.pairs})
    assert f"matched query ({matched})" in emap._legend.value
    emap._colour_box.value = "verdict"
    assert "no verdict (40)" in emap._legend.value  # the references
    codes = np.frombuffer(emap.canvas.codes, dtype=np.uint8)
    assert len(codes) == len(emap.canvas.ids) == 60
    assert len(emap.canvas.points) == 60 * 2 * 4


def test_map_box_and_lasso_select_every_point_inside(emap, project):
    picked = emap.select_box(0.0, 0.0, 0.5, 1.0)
    expected = [i for i, (x, _y) in zip(emap.ids, emap.xy, strict=True) if x <= 0.5]
    assert picked == expected
    assert emap._count.value == f"{len(expected)} selected"
    drawn = np.frombuffer(emap.canvas.sample_selected, dtype=np.uint8)
    assert int(drawn.sum()) == len(expected)
    emap.canvas.polygon = [[0, 0], [1, 0], [0, 1]]  # what the browser sends at the end of a lasso
    emap.canvas.shape_mode = "lasso"
    emap.canvas.shape_count += 1
    assert emap.selected_ids == [i for i, (x, y) in zip(emap.ids, emap.xy, strict=True) if x + y <= 1]
    emap._to_gallery.click()
    shown = set(emap.gallery.selection.ids)
    assert shown <= set(emap.selected_ids)
    assert emap.gallery.set_name in ("query", "reference")
    emap._add.click()
    params = yaml.safe_load(project.read_text())
    assert set(params["sets"]) >= {"query", "reference"} & {emap.gallery.set_name}
    assert "wrote" in emap.message


def test_map_hover_sends_a_thumbnail(emap):
    emap.canvas.hover = 0
    assert emap.canvas.thumb[:2] == b"\xff\xd8"  # a JPEG
    emap.canvas.hover = -1
    assert emap.canvas.thumb == b""


def test_a_million_points_draw_a_stratified_sample_and_select_all():
    rng = np.random.default_rng(0)
    n = 1_000_000
    xy = rng.random((n, 2), dtype=np.float32)
    codes = np.zeros(n, dtype=np.uint8)
    codes[:300] = 1  # a small class: drawn in full
    codes[300:5000] = 2  # a mid one: at least MIN_PER_CLASS
    sample = stratified_sample(codes, 20_000, seed=0)
    assert len(sample) <= 20_000
    assert np.array_equal(sample, stratified_sample(codes, 20_000, seed=0))
    assert (codes[sample] == 1).sum() == 300
    assert (codes[sample] == 2).sum() >= MIN_PER_CLASS
    mask = inside(xy, [(0.1, 0.1), (0.9, 0.1), (0.5, 0.9)], "lasso")
    x, y = xy[:, 0], xy[:, 1]
    # inside the triangle: above the base, and below both sloped sides
    expected = (y >= 0.1) & (y <= 0.1 + 2 * (x - 0.1)) & (y <= 0.1 + 2 * (0.9 - x))
    assert abs(int(mask.sum()) - int(expected.sum())) < 50  # boundary points may go either way
    emap = EmbeddingMap(
        ([f"T{i:06d}" for i in range(200_000)], rng.normal(size=(200_000, 16))), max_points=5000
    )
    assert len(emap.canvas.ids) <= 5000
    assert len(emap.canvas.density) == 160 * 160
    assert len(emap.select_box(0, 0, 1, 1)) == 200_000  # the selection covers all points, not the drawn ones


def test_map_bad_input_is_one_line(tmp_path, descriptors):
    from isc_kit.evaluate.descriptors import write_descriptors

    narrow = tmp_path / "narrow.h5"
    write_descriptors(narrow, ["T000001"], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ConfigError) as err:
        EmbeddingMap([descriptors[0], narrow])
    assert "\n" not in str(err.value)
    assert "narrow.h5: 4 dimensions" in str(err.value)
    bad = np.ones((3, 4))
    bad[1, 1] = np.inf
    with pytest.raises(ConfigError, match="NaN or infinite"):
        EmbeddingMap((["a", "b", "c"], bad))
    with pytest.raises(ConfigError, match="method must be one of"):
        EmbeddingMap((["a", "b"], np.ones((2, 4))), method="tsne")


# ---------------------------------------------------------------------------------------------- a kernel

KERNEL_CELLS = [
    """\
from pathlib import Path
from isc_kit.baseline import run_baseline
from isc_kit.fixture import materialize
from isc_kit.groundtruth import load_ground_truth
from isc_kit.metadata import read_metadata
from isc_kit.widgets import EmbeddingMap, Gallery, LocalImages, Similar

root = materialize("tiny")
run_baseline(root / "all/query_images", root / "all/reference_images", None,
             descriptors_out=("q.h5", "r.h5"))
sets = {s: read_metadata(root / f"metadata/{s}_images_metadata.csv", s) for s in ("query", "reference")}
images = LocalImages(root, layout="bucket")
gt = load_ground_truth(root / "metadata/public_ground_truth.csv")
gallery = Gallery(sets, images, page_size=12)
similar = Similar("r.h5", sets, images, lookup=["q.h5"], ground_truth=gt, page_size=4)
similar.follow(gallery)
gallery""",
    "similar",
    "gallery.click(gallery.shown_ids[0]); print(similar.query_id, similar.shown_ids, similar.marks)",
    "emap = EmbeddingMap(['q.h5', 'r.h5'], sets, images, ground_truth=gt, gallery=gallery); emap",
    "print(len(emap.select_box(0, 0, 1, 1)), emap.method)",
]


@pytest.mark.notebook
def test_both_widgets_in_a_real_kernel(tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS]
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    mime = "application/vnd.jupyter.widget-view+json"
    shown = [o for c in book.cells for o in c.outputs if mime in o.get("data", {})]
    assert len(shown) == 3  # gallery, similar, map
    text = [o.get("text", "") for c in book.cells for o in c.outputs if o.get("name") == "stdout"]
    assert text[0].startswith("Q00000 ['R")
    assert text[0].count("'R") == 4
    assert text[1].strip() == "60 pca"
    assert not list(tmp_path.glob(".*.faiss"))  # 40 references: exact search, no index cache
