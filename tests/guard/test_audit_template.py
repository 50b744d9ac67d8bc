"""A template copy from the launcher (``POST hdh/templates/<name>/copy`` through the guard)
is recorded as ``template.run`` with the copied notebook's path from the sandbox's answer,
and the code audit view lists it as the ``template`` kind."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_hdh.api.routes.audit import CodeQuery, code_page
from jupyterlab_hdh.guard.policy import GuardConfig
from tests.hdh.jupyter.server import CONFINED, hdh_jupyter_server

from .conftest import BASE, GuardServer, run_guard
from .test_proxy import events, xsrf_client


@pytest.fixture(scope="module")
def hdh_upstream() -> Iterator[str]:
    """A sandbox-like Jupyter server with HDH's extension and confined contents manager."""
    tmp = Path(tempfile.mkdtemp(prefix="hdht", dir="/tmp"))  # AF_UNIX paths are short
    root = tmp / "ws"
    root.mkdir()
    sock = str(tmp / "jupyter.sock")
    try:
        with hdh_jupyter_server(tmp, root, sock=sock, base_url=BASE, args=[CONFINED]):
            yield sock
    finally:
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
