"""The public API: every name in ``isc_kit.__all__`` resolves, and importing isc_kit stays light."""

from __future__ import annotations

import subprocess
import sys

import isc_kit


def test_every_public_name_resolves() -> None:
    assert sorted(isc_kit.__all__) == sorted(isc_kit._EXPORTS)
    for name in isc_kit.__all__:
        assert getattr(isc_kit, name) is not None, name


def test_import_does_not_load_pandas_or_s3fs() -> None:
    code = "import sys, isc_kit; print(sorted(m for m in ('pandas', 's3fs', 'moto') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pinned_images_loads_no_torch_pandas_or_widgets() -> None:
    code = (
        "import sys, isc_kit; assert isc_kit.PinnedImages.__module__ == 'isc_kit.dataset'; "
        "print(sorted(m for m in ('torch', 'pandas', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_isc_kit_select_stays_callable_after_its_package_is_imported() -> None:
    """``isc_kit.select`` is a package and a function: importing the package (as ``ik.Selection``
    does) binds the name to the package, which must still select."""
    code = (
        "import isc_kit as ik\n"
        "ik.Selection\n"
        "m = ik.Manifest.from_rows('query', 'b', 'all/query_images/', [('Q00000', 'Q00000.jpg', '0' * 32, 1)])\n"
        "print(len(ik.select(m, ik.Selection(ids=('Q00000',)))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
