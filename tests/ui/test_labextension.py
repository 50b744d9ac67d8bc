"""The built HDH JupyterLab extension is complete and JupyterLab finds it.

``scripts/build-labextension`` writes ``jupyterlab_hdh/labextension/jupyterlab-hdh/``;
JupyterLab looks for federated extensions in ``<dir>/<package name>/package.json`` of each
``--LabApp.extra_labextensions_path`` entry and serves their files from
``/lab/extensions/<name>/``. Checked here: the built bundle (entry point present, no
``eval``), the panel's pure readers (``test/`` at the repository root, node's test runner), a real
``jupyter lab`` with and without the flag, and the sandbox's own server (bubblewrap) once
its command line carries the flag.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyterlab_hdh.sandbox import Sandbox, bwrap_problem
from jupyterlab_hdh.sandbox.spec import LABEXTENSIONS_DIR, server_argv
from tests.hdh_up import free_port
from tests.sandbox.conftest import make_site

EXT_NAME = "jupyterlab-hdh"
# where the sandbox's server looks (its --LabApp.extra_labextensions_path)
EXT_DIR = LABEXTENSIONS_DIR / EXT_NAME
SOURCE_DIR = Path(__file__).resolve().parents[2]  # the root package.json is the extension
FLAG = f"--LabApp.extra_labextensions_path={LABEXTENSIONS_DIR}"
CONFIG_RE = re.compile(
    r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S
)

pytestmark = pytest.mark.skipif(
    not (EXT_DIR / "package.json").is_file(),
    reason="built extension missing: run scripts/build-labextension",
)


def page_config(page: str) -> dict[str, Any]:
    """The page config JupyterLab embeds in ``/lab`` (its plugins, federated extensions)."""
    m = CONFIG_RE.search(page)
    assert m is not None, page[:500]
    return dict(json.loads(html.unescape(m.group(1))))


def federated(page: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in page_config(page).get("federated_extensions", [])}


def built_package() -> dict[str, Any]:
    return dict(json.loads((EXT_DIR / "package.json").read_text()))


def test_built_bundle_is_complete_and_eval_free() -> None:
    pkg = built_package()
    assert pkg["name"] == EXT_NAME
    build = pkg["jupyterlab"]["_build"]
    entry = EXT_DIR / build["load"]
    assert entry.is_file() and entry.parent == EXT_DIR / "static", build
    assert build["extension"] == "./extension" and build["style"] == "./style", build
    scripts = sorted((EXT_DIR / "static").glob("*.js"))
    assert entry in scripts
    for js in scripts:  # the guard's CSP should never need unsafe-eval for HDH's own code
        text = js.read_text()
        assert "eval(" not in text and "new Function" not in text, js.name


def test_the_panel_readers_pass_their_unit_tests() -> None:
    """``npm test``: tsc, then node's test runner on test/ (30 cases, < 5 s)."""
    npm = shutil.which("npm")
    if npm is None or not (SOURCE_DIR / "node_modules").is_dir():
        pytest.skip("npm or node_modules missing: run scripts/build-labextension")
    r = subprocess.run(
        [npm, "test", "--silent"], cwd=SOURCE_DIR, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert re.search(r"^# fail 0$", r.stdout, re.M), r.stdout[-2000:]
    passed = re.search(r"^# pass (\d+)$", r.stdout, re.M)
    assert passed is not None and int(passed.group(1)) >= 30, r.stdout[-2000:]


@pytest.fixture(scope="module")
def local_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Starts a plain ``jupyter lab`` (no sandbox) with the given extra arguments."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> str:
        root = tmp_path_factory.mktemp("lab")
        port = free_port()
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_DATA_DIR": str(root / "data"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        }
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}"]
        argv += ["--ip=127.0.0.1", "--IdentityProvider.token=", f"--ServerApp.root_dir={root}"]
        argv += ["--LabApp.news_url=None", "--allow-root", *extra]
        log = (root / "lab.log").open("wb")
        procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert procs[-1].poll() is None, (root / "lab.log").read_text()[-2000:]
            time.sleep(0.2)
        raise AssertionError("jupyter lab did not start: " + (root / "lab.log").read_text())

    try:
        yield start
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_jupyter_lab_finds_the_extension_only_through_the_flag(local_lab: Any) -> None:
    with_flag = local_lab(FLAG)
    exts = federated(httpx.get(f"{with_flag}/lab", timeout=30).text)
    assert EXT_NAME in exts, sorted(exts)
    load = exts[EXT_NAME]["load"]
    assert load == built_package()["jupyterlab"]["_build"]["load"]
    r = httpx.get(f"{with_flag}/lab/extensions/{EXT_NAME}/{load}", timeout=30)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"], r.headers
    assert r.content == (EXT_DIR / load).read_bytes()

    without = local_lab()
    assert EXT_NAME not in federated(httpx.get(f"{without}/lab", timeout=30).text)


def test_the_sandbox_server_serves_the_extension(tmp_path: Path) -> None:
    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    site = make_site(tmp_path)
    spec = site.spec("p1", "alice", [("ds_a", "v1")])
    flags = [a for a in server_argv(spec) if a.startswith("--LabApp.extra_labextensions_path=")]
    if not flags:
        pytest.skip(f"sandbox/spec.py server_argv does not pass {FLAG} yet")
    assert flags == [FLAG], flags
    with Sandbox(spec, start_timeout=60) as sb:
        client = sb.client()
        r = client.request("GET", "lab")
        assert r.status == 200, r.body[:300]
        exts = federated(r.body.decode())
        assert EXT_NAME in exts, sorted(exts)
        js = client.request("GET", f"lab/extensions/{EXT_NAME}/{exts[EXT_NAME]['load']}")
        assert js.status == 200
        assert js.body == (EXT_DIR / exts[EXT_NAME]["load"]).read_bytes()
