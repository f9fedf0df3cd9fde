"""Helpers for the browser tests: a gallery notebook, Voila and JupyterLab servers on loopback, Chromium options."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: A sampler (and so a gallery) over one set of a local fixture tree; scale and sizes from the environment.
GALLERY_NOTEBOOK = """\
import os
from isc_kit.fixture import materialize
from isc_kit.metadata import read_metadata
from isc_kit.widgets import LocalImages, Sampler

root = materialize(os.environ.get("ISC_KIT_DEMO_SCALE", "tiny"))
query = read_metadata(root / "metadata/query_images_metadata.csv", "query")
reference = read_metadata(root / "metadata/reference_images_metadata.csv", "reference")
sampler = Sampler(
    {"query": query, "reference": reference},
    LocalImages(root, layout="bucket"),
    params_path=os.environ["ISC_KIT_TEST_PARAMS"],
    size=int(os.environ.get("ISC_KIT_TEST_SIZE", "12")),
    seed=0,
    page_size=int(os.environ.get("ISC_KIT_TEST_PAGE", "12")),
)
sampler
"""


def write_gallery_notebook(path: Path) -> Path:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    book.cells = [nbformat.v4.new_code_cell(GALLERY_NOTEBOOK)]
    nbformat.write(book, path)
    return path


def ensure_chromium() -> str:
    """Debian's Chromium, installed by scripts/system-deps.sh when missing (needs root or sudo)."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts/system-deps.sh")], check=True)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the server accepts connections (a page request would start a kernel just to check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)  # polling for readiness, not timing anything
    raise RuntimeError(f"the server did not listen on port {port} within {timeout:.0f} s")


@contextmanager
def voila_server(notebook: Path, env: Mapping[str, str], log: Path) -> Iterator[str]:
    """Serve ``notebook`` with Voila on 127.0.0.1 at a free port; yields the page URL."""
    port = free_port()
    voila = shutil.which("voila", path=str(Path(sys.executable).parent))
    cmd = [voila] if voila else [sys.executable, "-m", "voila"]
    cmd += [
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--show_tracebacks=True",
        f"--Voila.root_dir={notebook.parent}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=notebook.parent, env={**os.environ, **env}, stdout=out, stderr=out)
        try:
            _wait_listening(port, proc, timeout=60)
            yield f"http://127.0.0.1:{port}/"
        except BaseException:
            out.flush()
            print(f"--- voila log ({log}) ---\n{log.read_text(errors='replace')[-4000:]}")  # shown by pytest
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _lab_settings(folder: Path, theme: str) -> Path:
    """User settings for a test Lab: a theme, and no news or update checks (no network)."""
    import json

    def put(plugin: str, values: dict[str, object]) -> None:
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    put("apputils-extension/themes", {"theme": theme})
    put("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False})
    put("extensionmanager-extension/plugin", {"enabled": False})
    return folder


@contextmanager
def jupyterlab_server(
    root: Path, env: Mapping[str, str], log: Path, *, theme: str = "JupyterLab Light"
) -> Iterator[tuple[str, str]]:
    """Real JupyterLab on 127.0.0.1 at a free port over ``root``; yields ``(base URL, token)``.

    ``window.jupyterapp`` is exposed so a test can run Lab's own commands (``notebook:run-all-cells``).
    """
    import secrets

    port = free_port()
    token = secrets.token_hex(16)
    state = log.parent / "lab-state"
    settings = _lab_settings(state / "settings", theme)
    lab = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent))
    cmd = [lab] if lab else [sys.executable, "-m", "jupyterlab"]
    cmd += [
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.expose_app_in_browser=True",
    ]
    inherited = {
        k: v for k, v in os.environ.items() if k != "ISC_KIT_ENDPOINT_URL"
    }  # notebooks start their own
    lab_env = {
        **inherited,
        **env,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=lab_env, stdout=out, stderr=out)
        try:
            _wait_listening(port, proc, timeout=90)
            yield f"http://127.0.0.1:{port}", token
        except BaseException:
            out.flush()
            print(f"--- jupyter lab log ({log}) ---\n{log.read_text(errors='replace')[-6000:]}")
            raise
        finally:
            proc.terminate()  # Lab shuts its kernels down, and each kernel's embedded S3 with it
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
