"""The gallery in a real browser: Voila serves a sampler notebook, headless Chromium clicks it.

``UPDATE_GALLERY_SCREENSHOT=demo pytest tests/test_browser.py`` runs it over the demo scale (nicer
images) and copies the screenshot to docs/gallery.png. (Not an ``ISC_KIT_*`` name: the test session
clears those.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _voila import CHROMIUM_ARGS, ROOT, ensure_chromium, voila_server, write_gallery_notebook
from test_widgets_logic import expected_sample

pytestmark = pytest.mark.browser

ALL_IMAGES_LOADED = """(n) => {
  const imgs = [...document.querySelectorAll('.isc-tile img')];
  return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""
CAPTIONS = (
    "() => [...document.querySelectorAll('.isc-tile .isc-tile-button')].map((b) => b.textContent.trim())"
)


def test_gallery_renders_resamples_and_enlarges_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from playwright.sync_api import sync_playwright

    from isc_kit.fixture import materialize
    from isc_kit.metadata import read_metadata

    update = os.environ.get("UPDATE_GALLERY_SCREENSHOT", "")
    scale = update or "tiny"
    size = 12
    root = materialize(scale)
    query_ids = read_metadata(root / "metadata/query_images_metadata.csv", "query").ids
    executable = ensure_chromium()
    notebook = write_gallery_notebook(tmp_path / "gallery.ipynb")
    env = {
        "ISC_KIT_DEMO_SCALE": scale,
        "ISC_KIT_TEST_PARAMS": str(tmp_path / "params.yaml"),
        "ISC_KIT_TEST_SIZE": str(size),
        "ISC_KIT_TEST_PAGE": str(size),
        "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache"),
    }
    with voila_server(notebook, env, tmp_path / "voila.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, timeout=90_000)
            page.wait_for_function(ALL_IMAGES_LOADED, arg=size, timeout=90_000)
            assert page.evaluate(CAPTIONS) == expected_sample(query_ids, size, 0)
            widths = page.eval_on_selector_all(".isc-tile img", "imgs => imgs.map((i) => i.naturalWidth)")
            assert len(widths) == size
            assert min(widths) > 0

            page.click(".isc-resample")
            after = expected_sample(query_ids, size, 1)
            page.wait_for_function(f"() => ({CAPTIONS})().join() === {','.join(after)!r}", timeout=30_000)
            page.wait_for_function(ALL_IMAGES_LOADED, arg=size, timeout=30_000)
            assert page.input_value(".isc-sampler input[type=number]") == "1"  # the seed box moved on

            target = after[2]
            # a real click where the picture is (the caption button's overlay makes the whole tile clickable)
            box = page.locator(".isc-tile img").nth(2).bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            caption = page.locator(".isc-detail-caption")
            caption.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(
                "(id) => document.querySelector('.isc-detail-caption').textContent.startsWith(id + ' · ')",
                arg=target,
                timeout=30_000,
            )
            text = caption.inner_text()
            assert text.startswith(f"{target} · ")
            assert text.endswith("verified")
            detail_width = page.eval_on_selector(".isc-detail img", "i => i.naturalWidth")
            assert detail_width > 0
            shot = tmp_path / "gallery.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    if update:
        from PIL import Image

        (ROOT / "docs").mkdir(exist_ok=True)
        Image.open(shot).convert("RGB").quantize(colors=256).save(ROOT / "docs/gallery.png", optimize=True)
