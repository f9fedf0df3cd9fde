"""Arrow keys and Esc for a widget: a tiny anywidget that listens on its parent container.

ipywidgets has no key events; this adds them without a build step. The listener sits on the
nearest ancestor with the CSS class ``scope`` (the gallery), which is made focusable and marked
``data-lm-suppress-shortcuts`` so JupyterLab's own shortcuts do not take the keys while it has
focus. Keys typed into text inputs are left alone. Pressing a key sets ``key`` and bumps ``count``.
"""

from __future__ import annotations

import anywidget
from traitlets import Bool, Int, Unicode

ESM = """
function render({ model, el }) {
  el.style.display = "none";
  const host = () => el.closest("." + model.get("scope")) || el.parentElement;
  const keys = { ArrowLeft: 1, ArrowRight: 1, Escape: 1 };
  const onKey = (e) => {
    if (!model.get("active") || !keys[e.key]) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    e.preventDefault();
    e.stopPropagation();
    model.set("key", e.key);
    model.set("count", model.get("count") + 1);
    model.save_changes();
  };
  let bound = null;
  const bind = () => {
    const h = host();
    if (!h || h === bound) return;
    if (bound) bound.removeEventListener("keydown", onKey);
    h.setAttribute("tabindex", "0");
    h.setAttribute("data-lm-suppress-shortcuts", "true");
    h.addEventListener("keydown", onKey);
    bound = h;
  };
  const focus = () => { bind(); if (model.get("active") && bound) bound.focus({ preventScroll: true }); };
  requestAnimationFrame(bind);  // never take the focus on display: only when activated (a tile click)
  model.on("change:active", focus);
  return () => { if (bound) bound.removeEventListener("keydown", onKey); };
}
export default { render };
"""


class KeyListener(anywidget.AnyWidget):
    """Reports ArrowLeft / ArrowRight / Escape pressed inside its container while ``active``."""

    _esm = Unicode(ESM).tag(sync=True)
    scope = Unicode("isc-gallery").tag(sync=True)
    active = Bool(False).tag(sync=True)
    key = Unicode("").tag(sync=True)
    count = Int(0).tag(sync=True)
