"""The notebook of each audited cell: the guard learns each kernel's path from the sandbox
server's answers to ``api/sessions`` (never from the browser's request) and records it on
``code.execute`` as ``path``; a rename moves the following cells to the new path."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from jupyterlab_hdh.guard.audit import KernelPaths

from .conftest import BASE, GuardServer, Upstream
from .test_proxy import V1, connect, events, run_code, xsrf_client


def _cell_path(guard: GuardServer, code: str) -> Any:
    found = [json.loads(e.details) for e in events(guard, "code.execute")]
    found = [d for d in found if d["code"] == code]
    assert len(found) == 1, found
    return found[0]["path"]


def _session(c: httpx.Client, path: str, kind: str = "notebook") -> dict[str, Any]:
    body = {"path": path, "name": path.rsplit("/", 1)[-1], "type": kind}
    r = c.post(BASE + "api/sessions", json={**body, "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_cells_carry_their_notebook_path_and_follow_a_rename(
    guard: GuardServer, upstream: Upstream
) -> None:
    (upstream.root / "work").mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    with xsrf_client(guard) as c:
        s = _session(c, "work/a.ipynb")
        sid, kid = s["id"], s["kernel"]["id"]
        ws = connect(guard, kid, protocols=[V1])
        try:
            run_code(ws, f"a_{tag} = 1", True)
            assert _cell_path(guard, f"a_{tag} = 1") == "work/a.ipynb"

            # the rename, as the server answers it: the next cells are the new notebook's
            r = c.patch(BASE + f"api/sessions/{sid}", json={"path": "work/b.ipynb"})
            assert r.status_code == 200 and r.json()["path"] == "work/b.ipynb", r.text
            run_code(ws, f"b_{tag} = 2", True)
            assert _cell_path(guard, f"b_{tag} = 2") == "work/b.ipynb"
            assert _cell_path(guard, f"a_{tag} = 1") == "work/a.ipynb"  # earlier cells kept

            # a path the server does not confirm (no such session; a malformed body) is
            # never taken: the browser's request is not what the guard reads
            forged = {"path": "forged.ipynb", "kernel": {"id": kid}, "type": "notebook"}
            r = c.patch(BASE + f"api/sessions/{uuid.uuid4()}", json=forged)
            assert r.status_code >= 400, r.text
            r = c.post(BASE + "api/sessions", json={"path": "forged.ipynb", "kernel": 5})
            assert r.status_code >= 400, r.text
            run_code(ws, f"c_{tag} = 3", True)
            assert _cell_path(guard, f"c_{tag} = 3") == "work/b.ipynb"

            # JupyterLab's periodic listing confirms it too
            r = c.get(BASE + "api/sessions")
            assert any(x["path"] == "work/b.ipynb" for x in r.json())
        finally:
            ws.close()
            c.delete(BASE + f"api/sessions/{sid}")


def test_console_cells_carry_the_path_the_server_reports(
    guard: GuardServer, upstream: Upstream
) -> None:
    tag = uuid.uuid4().hex[:8]
    with xsrf_client(guard) as c:
        s = _session(c, f"console-1-{tag}", kind="console")
        ws = connect(guard, s["kernel"]["id"], protocols=[V1])
        try:
            run_code(ws, f"con_{tag} = 1", True)
        finally:
            ws.close()
            c.delete(BASE + f"api/sessions/{s['id']}")
    assert _cell_path(guard, f"con_{tag} = 1") == (s["path"] or None)


def test_a_kernel_without_a_session_has_no_path(guard: GuardServer) -> None:
    tag = uuid.uuid4().hex[:8]
    with xsrf_client(guard) as c:
        r = c.post(BASE + "api/kernels", json={"name": "python3"})
        kid = r.json()["id"]
        ws = connect(guard, kid, protocols=[V1])
        try:
            run_code(ws, f"k_{tag} = 1", True)
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    assert _cell_path(guard, f"k_{tag} = 1") is None


def test_kernel_paths_reads_models_and_lists_and_forgets_the_oldest() -> None:
    paths = KernelPaths(max_entries=2)
    paths.observe("alice", "p", json.dumps({"path": "a.ipynb", "kernel": {"id": "k1"}}).encode())
    assert paths.get("alice", "p", "k1") == "a.ipynb"
    assert paths.get("bob", "p", "k1") is None and paths.get("alice", "q", "k1") is None
    listing = [
        {"path": "b.ipynb", "kernel": {"id": "k2"}},
        {"path": "c.ipynb", "kernel": None},
        "junk",
        {"path": "", "kernel": {"id": "k3"}},
    ]
    paths.observe("alice", "p", json.dumps(listing).encode())
    assert paths.get("alice", "p", "k2") == "b.ipynb" and paths.get("alice", "p", "k3") is None
    assert paths.get("alice", "p", "k1") is None  # the oldest forgotten past max_entries
    paths.observe("alice", "p", b"not json")
    paths.observe("alice", "p", b"\xff")
