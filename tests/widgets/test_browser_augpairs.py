"""AugmentPairs in real JupyterLab driven by headless Chromium: augmented copies of a few training images beside
their sources with the transforms drawn for them, Prev / Next paging, and the dark theme.

``UPDATE_GALLERY_SCREENSHOT=demo pytest tests/widgets/test_browser_augpairs.py`` runs it over the demo scale
and copies the screenshot to docs/augment.png (as test_browser.py does).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from _voila import CHROMIUM_ARGS, ROOT, ensure_chromium, jupyterlab_server
from test_browser import IMAGES_LOADED, _luminance, _run_all, _text

from isc_kit.widgets.augpairs import THUMB

pytestmark = pytest.mark.browser

SOURCES = 5
COPIES = 2
PAGE = 3

CELLS = [
    f"""\
import json, os
from isc_kit.augment import AugmentParams, augment, load_pairs
from isc_kit.fixture import materialize
from isc_kit.metadata import read_metadata
from isc_kit.widgets import AugmentPairs

root = materialize(os.environ.get("ISC_KIT_DEMO_SCALE", "tiny"))
sources = root / "all/training_images"
training = read_metadata(root / "metadata/training_images_metadata.csv", "training").take(range({SOURCES}))
params = AugmentParams.from_dict({{
    "copies": {COPIES}, "seed": 0, "per_copy": 2,
    "transforms": [{{"name": "rotate", "degrees": [-20, 20]}}, {{"name": "brightness", "factor": [0.6, 1.4]}},
                   {{"name": "crop", "x1": [0.0, 0.2], "y1": [0.0, 0.2], "x2": [0.8, 1.0], "y2": [0.8, 1.0]}},
                   "hflip"],
}})
augment(training, sources, "augmented", "pairs.csv", "augmented.pinned", params, jobs=1)
print("sources", json.dumps(list(training.ids)))
print("pairs", json.dumps(load_pairs("pairs.csv")))""",
    f"""\
pairs = AugmentPairs("pairs.csv", sources, "augmented", page_size={PAGE})
pairs""",
]

WIDGET = ".isc-augpairs"
ROW_IMAGES = f"{WIDGET} .isc-augpair img"
LABEL = f"() => document.querySelector('{WIDGET} .widget-label').textContent"
#: Each row's caption as shown ("T000000 → A00000000" then one transform a line).
CAPTIONS = f"""() => [...document.querySelectorAll('{WIDGET} .isc-augpair .widget-html-content')]
  .map((c) => c.innerText.trim())"""
#: Each row's pictures as decoded by the browser: [[width, height] of the source, of the copy].
SIZES = f"""() => [...document.querySelectorAll('{WIDGET} .isc-augpair')]
  .map((r) => [...r.querySelectorAll('img')].map((i) => [i.naturalWidth, i.naturalHeight]))"""
#: The luminance (0..1) of the colour of every piece of text in the widget: captions, their ids, the page label.
TEXT_LUMINANCE = f"""() => [...document.querySelector('{WIDGET}')
  .querySelectorAll('.widget-html-content, .widget-html-content *, .widget-label')]
  .map((el) => {{ const [r, g, b] = getComputedStyle(el).color.match(/\\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; }})"""


def _notebook(project: Path) -> None:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    book.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    (project / "notebooks").mkdir(parents=True)
    nbformat.write(book, project / "notebooks/augpairs.ipynb")


def _caption(aug: str, src: str, transforms: str) -> str:
    return "\n".join([f"{src} → {aug}", *transforms.split(";")])


def _thumb_size(path: Path) -> list[int]:
    from PIL import Image

    with Image.open(path) as img:
        img.thumbnail((THUMB, THUMB))
        return list(img.size)


def _wait_page(page, number: int, rows: list[list[str]], sources: Path, augmented: Path) -> None:
    """Page ``number`` (from 1) shown: its label, its captions, and on every row the named source and copy
    decoded (their pixel sizes are those of the files' thumbnails, which differ from image to image)."""
    label = f"page {number} of {-(-len(rows) // PAGE)} ({len(rows)} pairs)"
    on_page = rows[(number - 1) * PAGE : number * PAGE]
    want = [_caption(*r) for r in on_page]
    try:
        page.wait_for_function(f"() => ({LABEL})() === {label!r}")
        page.wait_for_function(f"(want) => JSON.stringify(({CAPTIONS})()) === JSON.stringify(want)", arg=want)
    except Exception:  # name what is shown instead
        shown = page.evaluate(f"() => [({LABEL})(), ({CAPTIONS})()]")
        raise AssertionError(f"page {number}: want {label!r} {want}, shown {shown}") from None
    page.wait_for_function(IMAGES_LOADED, arg=ROW_IMAGES, timeout=60_000)
    sizes = page.evaluate(SIZES)
    assert sizes == [
        [_thumb_size(sources / f"{src}.jpg"), _thumb_size(augmented / f"{aug}.jpg")]
        for aug, src, _t in on_page
    ]


def test_augment_pairs_in_jupyterlab(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    update = os.environ.get("UPDATE_GALLERY_SCREENSHOT", "")
    project = tmp_path / "project"
    _notebook(project)
    env = {"ISC_KIT_DEMO_SCALE": update or "tiny", "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache")}
    executable = ensure_chromium()
    shot = tmp_path / "augment.png"
    with jupyterlab_server(project, env, tmp_path / "lab.log") as (base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            out = _run_all(page, base, token, "augpairs")
            printed = {}
            for line in "".join(_text(o) for o in out[0] if o.get("name") == "stdout").splitlines():
                key, _, value = line.partition(" ")
                printed[key] = json.loads(value)
            sources, rows = printed["sources"], printed["pairs"]
            # the pairs CSV names every copy by its source's digits and copy number, with its transforms
            assert len(sources) == SOURCES
            assert [r[:2] for r in rows] == [[f"A{s[1:]}{c:02d}", s] for s in sources for c in range(COPIES)]
            names = {"rotate", "brightness", "crop", "hflip"}
            for _aug, _src, transforms in rows:  # two of the listed transforms, each with its drawn strengths
                drawn = [t.split("(")[0] for t in transforms.split(";")]
                assert len(drawn) == 2, transforms
                assert set(drawn) <= names, transforms
                assert all(t.endswith(")") for t in transforms.split(";")), transforms

            from isc_kit.fixture import materialize

            folders = (
                materialize(env["ISC_KIT_DEMO_SCALE"]) / "all/training_images",
                project / "notebooks/augmented",
            )
            widget = page.locator(WIDGET).first
            widget.scroll_into_view_if_needed()
            _wait_page(page, 1, rows, *folders)
            first = page.evaluate(CAPTIONS)
            assert first == [_caption(*r) for r in rows[:PAGE]]  # ids and transforms of the first page
            assert first[0].startswith(f"{sources[0]} → A{sources[0][1:]}00\n")
            prev = widget.locator("button", has_text="Prev")
            nxt = widget.locator("button", has_text="Next")
            assert prev.is_disabled()
            assert nxt.is_enabled()
            widget.screenshot(path=str(shot))

            # Next: the second page, other pairs
            nxt.click()
            _wait_page(page, 2, rows, *folders)
            second = page.evaluate(CAPTIONS)
            assert second == [_caption(*r) for r in rows[PAGE : 2 * PAGE]]
            assert not {c.split("\n")[0] for c in first} & {c.split("\n")[0] for c in second}  # other ids
            assert prev.is_enabled()

            # Prev: back to the first page
            prev.click()
            _wait_page(page, 1, rows, *folders)
            assert page.evaluate(CAPTIONS) == first
            assert prev.is_disabled()

            # the dark theme: every piece of text in the widget (captions, ids, label) and the buttons follow it
            light = page.evaluate(TEXT_LUMINANCE)
            assert len(light) >= 3 * PAGE + 1, light  # each caption, its two ids, the label
            assert max(light) < 0.3, light
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            try:
                page.wait_for_function(f"() => Math.min(...({TEXT_LUMINANCE})()) > 0.6")
            except Exception:
                raise AssertionError(
                    f"text left dark on the dark theme: {page.evaluate(TEXT_LUMINANCE)}"
                ) from None
            button_bg = nxt.evaluate("(el) => getComputedStyle(el).backgroundColor")
            assert _luminance(button_bg) < 0.4, button_bg
        finally:
            browser.close()
    assert shot.stat().st_size > 5_000
    if update:
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=256).save(ROOT / "docs/augment.png", optimize=True)
