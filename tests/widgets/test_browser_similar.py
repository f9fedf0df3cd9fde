"""Similar and EmbeddingMap in real JupyterLab driven by headless Chromium: a gallery tile click searches its
neighbours, paging, an id typed in, hover, box and lasso select into the gallery, and the dark theme.

``UPDATE_GALLERY_SCREENSHOT=demo pytest tests/widgets/test_browser_similar.py`` runs it over the demo scale
and copies the screenshots to docs/similar.png and docs/embedding-map.png (as test_browser.py does).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from _voila import CHROMIUM_ARGS, ROOT, ensure_chromium, jupyterlab_server
from test_browser import IMAGES_LOADED, _luminance, _run_all, _text

pytestmark = pytest.mark.browser

CELLS = [
    """\
import os
from isc_kit.baseline import run_baseline
from isc_kit.fixture import materialize
from isc_kit.groundtruth import load_ground_truth
from isc_kit.metadata import read_metadata
from isc_kit.widgets import EmbeddingMap, Gallery, LocalImages, Similar

root = materialize(os.environ.get("ISC_KIT_DEMO_SCALE", "tiny"))
run_baseline(root / "all/query_images", root / "all/reference_images", None,
             descriptors_out=("q.h5", "r.h5"))
sets = {s: read_metadata(root / f"metadata/{s}_images_metadata.csv", s) for s in ("query", "reference")}
images = LocalImages(root, layout="bucket")
gt = load_ground_truth(root / "metadata/public_ground_truth.csv")
from isc_kit.neighbours import Neighbours
nb = Neighbours("r.h5", lookup=["q.h5"])  # a matched query whose partner is among its 4 nearest
print("matched", next(q for q, r in sorted(gt.pairs) if r in [h.image_id for h in nb.query(q, 4)]))
gallery = Gallery(sets, images, page_size=6)
gallery""",
    """\
similar = Similar("r.h5", sets, images, lookup=["q.h5"], ground_truth=gt, page_size=4)
similar.follow(gallery)
similar""",
    """\
emap = EmbeddingMap(["q.h5", "r.h5"], sets, images, ground_truth=gt, gallery=gallery, width=560, height=420)
print("point", emap.canvas.ids[-1], *emap.xy[emap._sample[-1]], len(emap.ids))
emap""",
]

HEAD = "() => (document.querySelector('.isc-sim-head') || {}).textContent || ''"
COUNT = "() => document.querySelector('.isc-map-count').textContent"


def _notebook(project: Path) -> None:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    book.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    (project / "notebooks").mkdir(parents=True)
    nbformat.write(book, project / "notebooks/similar.ipynb")


def _drag(page, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=4)
    page.mouse.up()


def test_similar_and_the_map_in_jupyterlab(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    update = os.environ.get("UPDATE_GALLERY_SCREENSHOT", "")
    project = tmp_path / "project"
    _notebook(project)
    env = {"ISC_KIT_DEMO_SCALE": update or "tiny", "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache")}
    executable = ensure_chromium()
    shots = {"similar": tmp_path / "similar.png", "embedding-map": tmp_path / "embedding-map.png"}
    with jupyterlab_server(project, env, tmp_path / "lab.log") as (base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            out = _run_all(page, base, token, "similar")
            matched = _text(next(o for o in out[0] if o.get("name") == "stdout")).split()[-1]
            point = _text(next(o for o in out[2] if o.get("name") == "stdout")).split()
            point_id, px, py, total = point[1], float(point[2]), float(point[3]), int(point[4])

            # a click on a gallery tile: its neighbours
            gallery = page.locator(".isc-gallery").first
            gallery.scroll_into_view_if_needed()
            page.wait_for_function(IMAGES_LOADED, arg=".isc-gallery .isc-tile img", timeout=60_000)
            first = gallery.locator(".isc-tile-button").first.inner_text().strip()
            box = gallery.locator(".isc-tile img").first.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_function(f"() => ({HEAD})().startsWith({first + ':'!r})", timeout=30_000)
            similar = page.locator(".isc-similar").first
            assert "neighbours 1–4" in page.evaluate(HEAD)
            page.wait_for_function(IMAGES_LOADED, arg=".isc-sim-hits img", timeout=30_000)
            assert similar.locator(".isc-sim-hits .isc-sim-card").count() == 4
            page1 = similar.locator(".isc-sim-hits .isc-sim-id").all_inner_texts()
            similar.locator("button[title='next page']").click()
            page.wait_for_function(f"() => ({HEAD})().includes('neighbours 5–8')", timeout=30_000)
            ids_js = "() => [...document.querySelectorAll('.isc-sim-hits .isc-sim-id')].map((b) => b.textContent.trim()).join()"
            page.wait_for_function(f"() => ({ids_js})() !== {','.join(page1)!r}", timeout=30_000)
            page2 = similar.locator(".isc-sim-hits .isc-sim-id").all_inner_texts()
            assert not set(page1) & set(page2)
            page.wait_for_function(
                "() => document.querySelectorAll('.isc-sim-caption')[2].textContent.startsWith('#5 · ')",
                timeout=30_000,
            )

            # an id typed in: a matched query shows its partner and a ✓ match
            box_in = similar.locator(".isc-sim-input input")
            box_in.fill(matched)
            box_in.press("Enter")
            page.wait_for_function(f"() => ({HEAD})().startsWith({matched + ':'!r})", timeout=30_000)
            page.wait_for_selector(".isc-sim-hits .isc-sim-card.isc-sim-match", timeout=30_000)
            assert "ground truth: edited copy of" in similar.inner_text()
            page.wait_for_function(IMAGES_LOADED, arg=".isc-similar img", timeout=30_000)
            similar.scroll_into_view_if_needed()
            similar.screenshot(path=str(shots["similar"]))

            # the map: hover shows id and thumbnail
            emap = page.locator(".isc-map").first
            emap.scroll_into_view_if_needed()
            canvas = emap.locator("canvas")
            page.wait_for_function(
                "() => { const c = document.querySelector('.isc-map canvas'); return c && +c.dataset.points > 0; }",
                timeout=30_000,
            )
            cb = canvas.bounding_box()
            assert cb is not None
            w, h = cb["width"], cb["height"]
            page.mouse.move(cb["x"] + px * w, cb["y"] + (1 - py) * h)
            tip = emap.locator(".isc-map-tip")
            tip.wait_for(state="visible", timeout=30_000)
            assert tip.inner_text().strip() == point_id
            page.wait_for_function(IMAGES_LOADED, arg=".isc-map-tip img", timeout=30_000)

            # box select, then lasso: selected in Python among all points, shown in the gallery
            label = gallery.locator(".isc-page-label")
            before = label.inner_text()
            _drag(page, [(cb["x"] + 4, cb["y"] + 4), (cb["x"] + w - 4, cb["y"] + h - 4)])
            page.wait_for_function(f"() => ({COUNT})() !== '0 selected'", timeout=30_000)
            box_text = page.evaluate(COUNT)
            n_box = int(box_text.split()[0].replace(",", ""))
            assert n_box == total  # a box round the whole map: every point, drawn or not
            emap.locator(".isc-map-to-gallery").click()
            page.wait_for_function(
                "([el, b]) => el.textContent !== b", arg=[label.element_handle(), before], timeout=30_000
            )
            emap.locator(".isc-map-mode button", has_text="lasso").click()
            page.wait_for_function(
                "() => document.querySelector('.isc-map canvas').dataset.mode === 'lasso'", timeout=30_000
            )
            x0, y0 = cb["x"], cb["y"]
            _drag(
                page,
                [
                    (x0 + w * 0.05, y0 + h * 0.05),
                    (x0 + w * 0.95, y0 + h * 0.05),
                    (x0 + w * 0.05, y0 + h * 0.95),
                ],
            )
            page.wait_for_function(f"() => ({COUNT})() !== {box_text!r}", timeout=30_000)
            n_lasso = int(page.evaluate(COUNT).split()[0].replace(",", ""))
            assert 0 < n_lasso < n_box
            assert (
                page.evaluate("() => +document.querySelector('.isc-map canvas').dataset.selected") == n_lasso
            )
            page.mouse.move(cb["x"] + px * w, cb["y"] + (1 - py) * h)
            tip.wait_for(state="visible", timeout=30_000)
            emap.screenshot(path=str(shots["embedding-map"]))

            # the dark theme: cards and the canvas follow it
            pixel = "() => [...document.querySelector('.isc-map canvas').getContext('2d').getImageData(1, 1, 1, 1).data]"
            assert _luminance("rgb({}, {}, {})".format(*page.evaluate(pixel)[:3])) > 0.7
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            dark = f"() => {{ const [r, g, b] = ({pixel})(); return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.3 * 255; }}"
            page.wait_for_function(dark, timeout=30_000)
            card_bg = similar.locator(".isc-sim-card").first.evaluate(
                "(el) => getComputedStyle(el).backgroundColor"
            )
            assert _luminance(card_bg) < 0.3, card_bg
        finally:
            browser.close()
    for shot in shots.values():
        assert shot.stat().st_size > 5_000
    if update:
        from PIL import Image

        for name, shot in shots.items():
            Image.open(shot).convert("RGB").quantize(colors=256).save(
                ROOT / f"docs/{name}.png", optimize=True
            )
