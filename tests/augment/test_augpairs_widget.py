"""The AugmentPairs widget in the kernel: pages, Prev/Next, captions, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_augment import PARAMS, make_selection

from isc_kit.augment import AugmentError, AugmentParams, augment
from isc_kit.pinned import load_pinned
from isc_kit.widgets.augpairs import AugmentPairs


def test_pages_and_buttons(tmp_path: Path) -> None:
    pinned, images = make_selection(tmp_path, n=3)
    augment(load_pinned(pinned), images, tmp_path / "aug", tmp_path / "p.csv", tmp_path / "a.pinned",
            AugmentParams.from_dict(PARAMS), jobs=1)  # fmt: skip
    w = AugmentPairs(tmp_path / "p.csv", images, tmp_path / "aug", page_size=4)
    assert w.pages == 2
    assert w.shown == [("A00000000", "T000000"), ("A00000001", "T000000"), ("A00000100", "T000001"),
                       ("A00000101", "T000001")]  # fmt: skip
    assert w._prev.disabled
    first_row = w._rows.children[0]
    assert first_row.children[0].value != first_row.children[1].value  # source != copy
    assert "T000000" in first_row.children[2].value
    w._next.click()
    assert w.page == 1
    assert len(w.shown) == 2
    assert w._next.disabled
    assert w._label.value == "page 2 of 2 (6 pairs)"
    w.page = 99
    assert w.page == 1
    (tmp_path / "aug" / "A00000200.jpg").unlink()
    w.page = 0
    w.page = 1
    assert "A00000200.jpg" in w._rows.children[0].children[1].value


def test_missing_pairs_csv_one_line(tmp_path: Path) -> None:
    with pytest.raises(AugmentError, match=r"no such pairs CSV; run `isc-kit augment`"):
        AugmentPairs(tmp_path / "nope.csv", tmp_path, tmp_path)
