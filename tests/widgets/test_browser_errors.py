"""notebooks/04-errors in a real browser: Voila serves it, headless Chromium filters, clicks and reads it.

``UPDATE_ERRORS_SCREENSHOT=demo pytest tests/widgets/test_browser_errors.py`` runs it over the demo fixture
(the pipeline's demo selection: 200 queries, their references and 100 others) and writes docs/errors.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _voila import CHROMIUM_ARGS, ROOT, ensure_chromium, voila_server
from test_notebook_errors import NOTEBOOK, make_project

pytestmark = pytest.mark.browser

ROWS = "() => [...document.querySelectorAll('.isc-err-row')].filter((r) => r.offsetParent !== null).length"
IMAGES_LOADED = """(selector) => {
  const imgs = [...document.querySelectorAll(selector)];
  return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""


def test_error_analysis_renders_filters_and_leads_into_the_pair_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    from isc_kit.analysis import analyse, filter_queries
    from isc_kit.evaluate import load_predictions
    from isc_kit.fixture import materialize
    from isc_kit.groundtruth import load_ground_truth, restrict
    from isc_kit.pinned import load_pinned

    update = os.environ.get("UPDATE_ERRORS_SCREENSHOT", "")
    scale = update or "tiny"
    root = materialize(scale)
    project = tmp_path / "project"
    predictions = make_project(root, project, gt_queries=200 if update else None)
    gt, _ = restrict(
        load_ground_truth(root / "metadata/public_ground_truth.csv"),
        load_pinned(project / "manifests/query.pinned").ids,
        load_pinned(project / "manifests/reference.pinned").ids,
    )
    report = analyse(gt, load_predictions(predictions), top_k=5)
    n_all = len(report.queries)
    fp_at_half = filter_queries(report, "false positives", threshold=0.5)
    notebook = tmp_path / "04-errors.ipynb"
    shutil.copy(NOTEBOOK, notebook)
    executable = ensure_chromium()
    env = {
        "ISC_KIT_DEMO_SCALE": scale,  # no endpoint: the notebook starts its own embedded S3 of this scale
        "ISC_KIT_PROJECT": str(project),
        "ISC_KIT_WIDGET_CACHE": str(tmp_path / "cache"),
        "ISC_KIT_NOTEBOOK_DATA": str(tmp_path / "data"),
    }
    monkeypatch.delenv("ISC_KIT_ENDPOINT_URL", raising=False)
    with voila_server(notebook, env, tmp_path / "voila.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(url, timeout=120_000)
            page.locator(".isc-err-summary").wait_for(state="visible", timeout=120_000)
            summary = page.inner_text(".isc-err-summary")
            assert f"µAP {report.result.muap:.3f}" in summary
            page.wait_for_function(IMAGES_LOADED, arg="img.isc-err-pr", timeout=30_000)
            # the notebook left it on the misses with the first one selected: its strip and the pair viewer show it
            page.wait_for_function(IMAGES_LOADED, arg=".isc-err-strip img", timeout=30_000)

            page.locator(".isc-err-show button", has_text="all").click()
            page.wait_for_function(  # the label and the rows' display arrive as separate messages
                f"([t, n]) => document.querySelector('.isc-err-page').textContent === t && ({ROWS})() === n",
                arg=[f"1-{min(10, n_all)} of {n_all} queries (all)", min(10, n_all)],
                timeout=30_000,
            )

            page.locator(".isc-err-show button", has_text="false positives").click()
            box = page.locator(".isc-err-threshold input")
            box.fill("0.5")
            box.press("Enter")
            want = f"of {len(fp_at_half)} queries (false positives)" if fp_at_half else "no queries"
            page.wait_for_function(
                "(t) => document.querySelector('.isc-err-page').textContent.includes(t)",
                arg=want,
                timeout=30_000,
            )
            assert fp_at_half  # baseline scores are cosines: plenty of wrong ones above 0.5
            first = page.locator(".isc-err-row .isc-err-query").first
            target = first.inner_text().strip()
            assert target == fp_at_half[0]
            first.click()
            page.wait_for_function(
                "(id) => document.querySelector('.isc-err-strip').textContent.includes('query ' + id)",
                arg=target,
                timeout=30_000,
            )
            page.wait_for_function(IMAGES_LOADED, arg=".isc-err-strip img", timeout=30_000)
            page.wait_for_function(
                "(id) => document.querySelector('.isc-pair-caption').textContent.startsWith(id + ':')",
                arg=target,
                timeout=30_000,
            )
            wrong = page.locator(".isc-err-strip .isc-err-wrong").count()
            assert wrong >= 1  # it is a false positive: at least one wrong prediction is shown
            if update:  # the README's picture: the misses at the operating point, the first one selected
                box.fill(repr(report.threshold))
                box.press("Enter")
                page.locator(".isc-err-show button", has_text="misses").click()
                page.wait_for_function(
                    "() => document.querySelector('.isc-err-page').textContent.endsWith('(misses)')",
                    timeout=30_000,
                )
                first.click()
                page.wait_for_function(
                    "(id) => document.querySelector('.isc-pair-caption').textContent.startsWith(id + ':')",
                    arg=first.inner_text().strip(),
                    timeout=30_000,
                )
                page.wait_for_function(IMAGES_LOADED, arg=".isc-errors img", timeout=30_000)
            shot = tmp_path / "errors.png"
            page.locator(".isc-errors").screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    if update:
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=256).save(ROOT / "docs/errors.png", optimize=True)
