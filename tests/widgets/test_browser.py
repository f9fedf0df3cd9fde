"""The widgets in a real browser: Voila serves a sampler notebook, and real JupyterLab runs every notebook
(Run All), both driven by headless Chromium.

``UPDATE_GALLERY_SCREENSHOT=demo pytest tests/widgets/test_browser.py`` runs them over the demo scale (nicer
images) and copies the screenshots to docs/ (Voila's gallery.png, and Lab's lab-light.png and
lab-dark.png). (Not an ``ISC_KIT_*`` name: the test session clears those.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _voila import (
    CHROMIUM_ARGS,
    ROOT,
    ensure_chromium,
    jupyterlab_server,
    voila_server,
    write_gallery_notebook,
)
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


# ---------------------------------------------------------------------------------------------- JupyterLab

NOTEBOOK_READY = """(path) => {
  const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && p.context.path === path && p.content.widgets.length);
}"""
#: True when every code cell has run, or as soon as one shows an error (Run All stops there).
RUN_ALL_DONE = """() => {
  const p = window.jupyterapp.shell.currentWidget;
  const code = p.content.widgets.filter((c) => c.model.type === 'code');
  const failed = code.some((c) => { const o = c.model.outputs;
    for (let i = 0; i < o.length; i++) if (o.get(i).type === 'error') return true; return false; });
  const idle = p.sessionContext.session.kernel.status === 'idle';
  return failed || (idle && code.every((c) => c.model.executionCount !== null));
}"""
OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter((c) => c.model.type === 'code')
  .map((c) => { const o = c.model.outputs, out = [];
    for (let i = 0; i < o.length; i++) out.push(o.get(i).toJSON()); return out; })"""
IMAGES_LOADED = """(sel) => {
  const imgs = [...document.querySelectorAll(sel)];
  return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""
ACCESS_LINE = re.compile(r'\d+\.\d+\.\d+\.\d+ - - \[[^]]*\] "(GET|PUT|HEAD|POST)')


def _text(output: dict) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _lab_project(path: Path) -> Path:
    """A scratch copy of the project (query and reference only, for a quicker `dvc repro` in 02)."""
    import shutil
    import subprocess
    import sys

    import yaml

    path.mkdir()
    shutil.copy(ROOT / "dvc.yaml", path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sets"] = {k: v for k, v in params["sets"].items() if k in ("query", "reference")}
    params["augment"]["sets"] = []  # no training set: no augment stage
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(ROOT / "notebooks", path / "notebooks")
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=path, check=True)
    return path


def _run_all(page, base: str, token: str, name: str) -> list[list[dict]]:
    """Open ``notebooks/<name>.ipynb`` in Lab, Run All through Lab's own command, return each cell's outputs."""
    path = f"notebooks/{name}.ipynb"
    page.goto(f"{base}/lab/tree/{path}?token={token}&reset", timeout=90_000)  # reset: only this notebook open
    page.wait_for_function(NOTEBOOK_READY, arg=path, timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        page.wait_for_function(RUN_ALL_DONE, timeout=150_000, polling=250)
    except Exception:
        page.screenshot(path=f"/tmp/lab-{name}.png", full_page=True)
        print(page.evaluate(OUTPUTS))
        raise
    outputs = page.evaluate(OUTPUTS)
    errors = [o for cell in outputs for o in cell if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    stderr = "".join(_text(o) for cell in outputs for o in cell if o.get("name") == "stderr")
    assert not ACCESS_LINE.search(stderr), f"{name}: request-log lines in the notebook: {stderr[:300]}"
    return outputs


def _luminance(css_color: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_jupyterlab_runs_every_notebook_then_pages_and_clicks(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    update = os.environ.get("UPDATE_GALLERY_SCREENSHOT", "")
    project = _lab_project(tmp_path / "project")
    env = {
        "ISC_KIT_DEMO_SCALE": update or "tiny",
        "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache"),
        "ISC_KIT_PROJECT": str(project),
    }
    executable = ensure_chromium()
    shots: dict[str, Path] = {}
    with jupyterlab_server(project, env, tmp_path / "lab.log") as (base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            out = _run_all(page, base, token, "01-explore")
            first = "".join(_text(o) for o in out[0])
            assert "S3 endpoint: http://127.0.0.1:" in first  # the notebook's own embedded server
            gallery = page.locator(".isc-gallery").first
            gallery.scroll_into_view_if_needed()
            page.wait_for_function(IMAGES_LOADED, arg=".isc-gallery .isc-tile img", timeout=60_000)
            pattern = gallery.locator("input[placeholder^='pattern']")
            pattern.fill("")
            pattern.press("Enter")
            gallery.locator("select").nth(1).select_option("12")  # per page: 12, so there are pages
            label = gallery.locator(".isc-page-label")
            page.wait_for_function(
                "(el) => el.textContent.startsWith('page 1 / ')", arg=label.element_handle(), timeout=30_000
            )
            gallery.locator("button[title='next page']").click()
            page.wait_for_function(
                "(el) => el.textContent.startsWith('page 2 / ')", arg=label.element_handle(), timeout=30_000
            )
            page.wait_for_function(IMAGES_LOADED, arg=".isc-gallery .isc-tile img", timeout=30_000)
            first_on_page = gallery.locator(".isc-tile-button").first.inner_text().strip()
            assert first_on_page == "Q00012"
            box = gallery.locator(".isc-tile img").first.bounding_box()  # a real click on the picture
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            caption = gallery.locator(".isc-detail-caption")
            page.wait_for_function(
                "(el) => el.textContent.startsWith('Q00012 · ')", arg=caption.element_handle(), timeout=30_000
            )
            assert "md5 " in gallery.locator(".isc-detail-facts").inner_text()
            page.wait_for_function(  # the enlarged view takes the keyboard focus
                "() => !!(document.activeElement && document.activeElement.closest('.isc-gallery'))",
                timeout=30_000,
            )
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(el) => el.textContent.startsWith('Q00013 · ')", arg=caption.element_handle(), timeout=30_000
            )
            if update:
                shots["lab-light"] = tmp_path / "lab-light.png"
                gallery.evaluate("(el) => el.scrollIntoView({block: 'start'})")
                page.screenshot(path=str(shots["lab-light"]))  # Lab itself around the gallery
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            tile_bg = gallery.locator(".isc-tile").first.evaluate(
                "(el) => getComputedStyle(el).backgroundColor"
            )
            assert _luminance(tile_bg) < 0.3, tile_bg  # the tiles follow the dark theme
            svg_text = page.locator(".isc-overview-plot svg text").first
            assert _luminance(svg_text.evaluate("(el) => getComputedStyle(el).fill")) > 0.6  # so do the plots
            if update:
                shots["lab-dark"] = tmp_path / "lab-dark.png"
                page.screenshot(path=str(shots["lab-dark"]))
            caption.click()  # the theme switch took the focus: give it back to the gallery, then Esc
            page.keyboard.press("Escape")
            page.wait_for_function(
                "() => getComputedStyle(document.querySelector('.isc-gallery .isc-detail')).display === 'none'",
                timeout=30_000,
            )
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
            )

            _run_all(page, base, token, "02-sample-and-pin")
            assert (project / "dvc.lock").is_file()
            assert "id_file: selections/query-" in (project / "params.yaml").read_text()
            sampler = page.locator(".isc-sampler").first
            sampler.scroll_into_view_if_needed()
            before = sampler.locator(".isc-tile-button").all_inner_texts()
            sampler.locator(".isc-resample").click()
            page.wait_for_function(
                "(b) => [...document.querySelectorAll('.isc-sampler .isc-tile-button')]"
                ".map((x) => x.textContent.trim()).join() !== b",
                arg=",".join(t.strip() for t in before),
                timeout=30_000,
            )

            _run_all(page, base, token, "03-pairs")
            pairs_caption = page.locator(".isc-pair-caption").first
            detail = page.locator(".isc-gallery .isc-detail-caption").first
            detail.scroll_into_view_if_needed()
            query_id = detail.inner_text().split(" · ")[0]
            page.locator(".isc-gallery .isc-to-pair").first.click()  # the link into the pair view
            page.wait_for_function(
                "([el, q]) => el.textContent.startsWith(q + ': edited copy of ')",
                arg=[pairs_caption.element_handle(), query_id],
                timeout=30_000,
            )
            page.wait_for_function(IMAGES_LOADED, arg=".isc-pairs img", timeout=30_000)
        finally:
            browser.close()
    if update:
        from PIL import Image

        for name, shot in shots.items():
            Image.open(shot).convert("RGB").quantize(colors=256).save(
                ROOT / f"docs/{name}.png", optimize=True
            )
