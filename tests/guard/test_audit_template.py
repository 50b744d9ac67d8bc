"""A template copy from the launcher (``POST hdh/templates/<name>/copy`` through the guard)
is recorded as ``template.run`` with the copied notebook's path from the sandbox's answer,
and the code audit view lists it as the ``template`` kind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyterlab_hdh.api.routes.audit import CodeQuery, code_page
from jupyterlab_hdh.guard.policy import GuardConfig

from .conftest import BASE, GuardServer, run_guard
from .test_proxy import events, xsrf_client


@pytest.fixture(scope="module")
def hdh_upstream() -> Iterator[str]:
    """A sandbox-like Jupyter server with HDH's extension and confined contents manager."""
    tmp = Path(tempfile.mkdtemp(prefix="hdht", dir="/tmp"))
    root = tmp / "ws"
    root.mkdir()
    sock = str(tmp / "jupyter.sock")
    log = tmp / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--sock={sock}",
        "--allow-root",
        "--no-browser",
        f"--ServerApp.base_url={BASE}",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.jpserver_extensions=hdh.jupyter=True",
        "--ServerApp.contents_manager_class=hdh.jupyter.contents.ConfinedContentsManager",
    ]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "rt"), "JUPYTER_CONFIG_DIR": str(tmp)}
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            if os.path.exists(sock):
                try:
                    with httpx.Client(transport=httpx.HTTPTransport(uds=sock)) as c:
                        if c.get(f"http://localhost{BASE}api/status").status_code == 200:
                            break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def guard(hdh_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardServer]:
    yield from run_guard(hdh_upstream, tmp_path_factory.mktemp("guard-t"), GuardConfig())


def test_a_launcher_copy_is_a_template_run_in_the_code_audit_view(guard: GuardServer) -> None:
    with xsrf_client(guard) as c:
        r = c.post(BASE + "hdh/templates/mi-pathway/copy")
        assert r.status_code == 201, r.text
        path = r.json()["path"]
        refused = c.post(BASE + "hdh/templates/no-such-template/copy")
        assert refused.status_code == 404
    found = events(guard, "template.run")
    assert len(found) == 1  # the refused copy made none
    e = found[0]
    d: dict[str, Any] = json.loads(e.details)
    assert e.actor == "alice" and e.target == "project:proj1/template:mi-pathway"
    assert path == "templates/mi-pathway.ipynb"
    assert {k: d[k] for k in ("user", "project", "template", "mode", "parameters", "path")} == {
        "user": "alice",
        "project": "proj1",
        "template": "mi-pathway",
        "mode": "copy",
        "parameters": {},
        "path": path,
    }
    with guard.hub.sessions() as s:
        page = code_page(s, "proj1", CodeQuery(kind="template"))
    assert [(x.kind, x.user, x.notebook) for x in page.events] == [("template", "alice", path)]
    assert page.events[0].code == f"template mi-pathway copied to {path}"
