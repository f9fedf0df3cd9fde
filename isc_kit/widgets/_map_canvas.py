"""The embedding map's drawing: a ``<canvas>`` anywidget (no front-end build, no plotting library).

It draws the density of all points and the drawn sample's dots with the colours of the Lab theme (CSS
variables, redrawn on a theme switch), shows the hovered point's id and thumbnail, and sends a finished
box or lasso back to Python as a polygon in map coordinates (see :mod:`.embedding_map`).
"""

from __future__ import annotations

import anywidget
from traitlets import Bytes, Int, List, Unicode

DENSITY_BINS = 160
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")

ESM = """
function css(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}
function render({ model, el }) {
  const W = model.get("width"), H = model.get("height");
  const wrap = document.createElement("div");
  wrap.className = "isc-map-wrap";
  wrap.style.position = "relative";
  wrap.style.width = W + "px";
  const canvas = document.createElement("canvas");
  canvas.width = W; canvas.height = H;
  canvas.className = "isc-map-canvas";
  canvas.style.cursor = "crosshair";
  const tip = document.createElement("div");
  tip.className = "isc-map-tip";
  tip.style.cssText = "position:absolute;display:none;pointer-events:none;padding:4px;border-radius:4px;" +
    "font:12px var(--jp-code-font-family, monospace);background:var(--jp-layout-color0,#fff);" +
    "color:var(--jp-ui-font-color1,#222);border:1px solid var(--jp-border-color1,#bbb);z-index:10";
  const tipText = document.createElement("div");
  const tipImg = document.createElement("img");
  tipImg.style.cssText = "display:block;max-width:128px;max-height:128px";
  tip.append(tipText, tipImg);
  wrap.append(canvas, tip);
  el.append(wrap);
  const ctx = canvas.getContext("2d");
  const base = document.createElement("canvas");
  base.width = W; base.height = H;
  let xy = new Float32Array(0), codes = new Uint8Array(0), sel = new Uint8Array(0);
  const load = () => {
    const p = model.get("points"), c = model.get("codes"), s = model.get("sample_selected");
    xy = new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4);
    codes = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    sel = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
  };
  const px = (i) => [xy[2 * i] * W, (1 - xy[2 * i + 1]) * H];
  const drawBase = () => {
    const b = base.getContext("2d");
    b.fillStyle = css(el, "--jp-layout-color1", "#ffffff");
    b.fillRect(0, 0, W, H);
    const bins = model.get("bins");
    const dv = model.get("density");
    const d = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
    const ink = css(el, "--jp-ui-font-color2", "#666666");
    b.fillStyle = ink;
    const cw = W / bins, ch = H / bins;
    for (let i = 0; i < bins; i++) for (let j = 0; j < bins; j++) {
      const v = d[i * bins + j];
      if (!v) continue;
      b.globalAlpha = 0.08 + 0.45 * v / 255;
      b.fillRect(i * cw, H - (j + 1) * ch, cw + 0.5, ch + 0.5);
    }
    b.globalAlpha = 0.85;
    const pal = model.get("palette");
    const n = codes.length;
    for (let i = 0; i < n; i++) {
      const [x, y] = px(i);
      b.fillStyle = pal[codes[i] % pal.length];
      b.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    b.globalAlpha = 1;
    b.strokeStyle = css(el, "--jp-ui-font-color0", "#000000");
    b.lineWidth = 1;
    for (let i = 0; i < n; i++) if (sel[i]) { const [x, y] = px(i); b.strokeRect(x - 2.5, y - 2.5, 5, 5); }
    canvas.dataset.points = String(n);
    canvas.dataset.selected = String(model.get("n_selected"));
    canvas.dataset.theme = document.body.dataset.jpThemeLight || "";
  };
  let shape = null;  // {mode, pts: [[x, y] in pixels]}
  const paint = () => {
    ctx.drawImage(base, 0, 0);
    if (!shape || shape.pts.length < 1) return;
    ctx.strokeStyle = css(el, "--jp-brand-color1", "#1976d2");
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    if (shape.mode === "box") {
      const [a, b] = [shape.pts[0], shape.pts[shape.pts.length - 1]];
      ctx.rect(a[0], a[1], b[0] - a[0], b[1] - a[1]);
    } else {
      shape.pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
    }
    ctx.globalAlpha = 0.12; ctx.fill(); ctx.globalAlpha = 1; ctx.stroke();
  };
  const redraw = () => { load(); drawBase(); paint(); };
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  const nearest = ([x, y]) => {
    let best = -1, bd = 64;  // within 8 px
    for (let i = 0; i < codes.length; i++) {
      const [u, v] = px(i); const d = (u - x) * (u - x) + (v - y) * (v - y);
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  };
  let hovered = -1;
  canvas.addEventListener("mousedown", (e) => { shape = { mode: model.get("mode"), pts: [at(e)] }; tip.style.display = "none"; });
  canvas.addEventListener("mousemove", (e) => {
    const p = at(e);
    if (shape) { shape.pts.push(p); paint(); return; }
    const i = nearest(p);
    if (i !== hovered) {
      hovered = i;
      model.set("hover", i); model.save_changes();
    }
    if (i < 0) { tip.style.display = "none"; return; }
    tipText.textContent = model.get("ids")[i] || "";
    tip.style.left = Math.min(W - 140, p[0] + 12) + "px";
    tip.style.top = Math.min(H - 40, p[1] + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  window.addEventListener("mouseup", (e) => {
    if (!shape) return;
    const pts = shape.pts, mode = shape.mode;
    shape = null;
    const [a, b] = [pts[0], pts[pts.length - 1]];
    if (Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) < 4 && mode === "box") { paint(); return; }
    const poly = (mode === "box" ? [a, [b[0], a[1]], b, [a[0], b[1]]] : pts).map(([x, y]) => [x / W, 1 - y / H]);
    model.set("shape_mode", mode);
    model.set("polygon", poly);
    model.set("shape_count", model.get("shape_count") + 1);
    model.save_changes();
    paint();
  });
  const showThumb = () => {
    const t = model.get("thumb");
    if (!t || !t.byteLength) { tipImg.removeAttribute("src"); return; }
    tipImg.src = URL.createObjectURL(new Blob([t], { type: "image/jpeg" }));
  };
  model.on("change:thumb", showThumb);
  const showMode = () => { canvas.dataset.mode = model.get("mode"); };
  model.on("change:mode", showMode);
  showMode();
  for (const k of ["points", "codes", "density", "sample_selected", "palette"]) model.on("change:" + k, redraw);
  // the Lab theme switch: redraw with its colours (again once its style sheet has surely applied)
  const obs = new MutationObserver(() => { redraw(); setTimeout(redraw, 300); setTimeout(redraw, 1500); });
  obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  requestAnimationFrame(redraw);
  return () => obs.disconnect();
}
export default { render };
"""


class _Canvas(anywidget.AnyWidget):
    _esm = Unicode(ESM).tag(sync=True)
    width = Int(640).tag(sync=True)
    height = Int(480).tag(sync=True)
    points = Bytes(b"").tag(sync=True)  # float32 x, y in [0, 1] of the drawn sample
    codes = Bytes(b"").tag(sync=True)  # uint8 colour class of each drawn point
    sample_selected = Bytes(b"").tag(sync=True)  # uint8 0/1: drawn point is selected
    density = Bytes(b"").tag(sync=True)  # uint8 bins x bins, log-scaled counts of all points
    bins = Int(DENSITY_BINS).tag(sync=True)
    palette = List(list(PALETTE)).tag(sync=True)
    ids: List[str] = List().tag(sync=True)  # ids of the drawn sample (hover text)
    mode = Unicode("box").tag(sync=True)
    hover = Int(-1).tag(sync=True)
    thumb = Bytes(b"").tag(sync=True)
    polygon: List[list[float]] = List().tag(sync=True)
    shape_mode = Unicode("box").tag(sync=True)
    shape_count = Int(0).tag(sync=True)
    n_selected = Int(0).tag(sync=True)
