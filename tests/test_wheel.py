"""The wheel: built from a clean copy of the sources with ``python -m build``, it carries the
JupyterLab extension, which a fresh environment without Node finds in place.

The copy holds what git tracks (no built bundle, no ``lib/``): pyproject's jupyter-builder
hook must run the npm build itself. Its ``node_modules`` is a link to the checkout's (what
``npm ci`` would install from the same lock), so the test needs no network.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = "share/jupyter/labextensions/jupyterlab-hdh"

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None or not (ROOT / "node_modules" / "@jupyterlab").is_dir(),
    reason="npm or node_modules missing: run scripts/setup-env",
)


def clean_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (dest / "node_modules").symlink_to(ROOT / "node_modules")
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = clean_copy(tmp_path_factory.mktemp("src"))
    assert not (src / "jupyterlab_hdh" / "labextension").exists()
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
        # the build's tools (jupyter-builder) as in an activated venv
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("jupyterlab_hdh-*.whl")
    return built


def test_the_wheel_carries_the_built_extension_and_no_sources_of_node(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if f".data/data/{EXTENSION}/" in n]
    assert any(n.endswith(f"{EXTENSION}/package.json") for n in data), names[:50]
    assert any("/static/remoteEntry." in n for n in data)
    assert not [n for n in names if "node_modules" in n or n.endswith(".ts")]
    assert "jupyterlab_hdh/cli/__init__.py" in names and "hdh/__init__.py" in names
    assert "hdh/R/hdh.R" in names  # the R helper the sandbox's R kernel loads
    assert "hdh/templates/notebooks/mi-pathway.ipynb" in names  # the template studies
    assert "hdh/disclosure/default_config.toml" in names  # the disclosure checks' defaults
    assert "jupyterlab_hdh/api/locale/fr.po" in names  # the web pages in French


def test_a_fresh_environment_without_node_finds_the_extension(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies come from the test's own environment, HDH only from the wheel
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "deps.pth").write_text("\n".join(deps) + "\n")
    # --ignore-installed: without it pip uninstalls the checkout's own editable install
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed"]
        + ["--prefix", str(env_dir), "--no-warn-script-location", str(wheel)],
        check=True,
        capture_output=True,
    )
    assert importlib.metadata.distribution("jupyterlab-hdh").read_text("direct_url.json")
    no_node = {**os.environ, "PATH": str(env_dir / "bin")}  # not even /usr/bin, where node is
    no_node.pop("PYTHONPATH", None)
    assert shutil.which("node", path=no_node["PATH"]) is None
    where = subprocess.run(
        [str(py), "-c", "import jupyterlab_hdh; print(jupyterlab_hdh.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=no_node,
    ).stdout
    assert where.startswith(str(env_dir)), where  # the installed copy, not the checkout
    listing = subprocess.run(
        [str(py), "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**no_node, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")},
        timeout=120,
    )
    text = listing.stdout + listing.stderr
    assert f"{env_dir}/share/jupyter/labextensions" in text, text
    line = next(x for x in text.splitlines() if "jupyterlab-hdh" in x)
    assert "enabled" in line and "OK" in line, text
