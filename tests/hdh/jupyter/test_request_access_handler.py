"""``POST /hdh/catalogue/datasets/<name>/request-access`` and the open request on a dataset's
page: a real Jupyter server with the sandbox's extension in front of a fake API bridge (a real
HTTP server on a Unix socket) that answers like the control plane. The request goes to
``/api/bridge/applications`` with the URL's dataset; refusals come back as the control plane's
one-line reason. A dataset's open request comes with the control plane's access answer
(``/api/bridge/access/<name>``), in one call: the sandbox never lists the project's
applications to find it."""

from __future__ import annotations

import json
import os
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from hdh.jupyter.handlers import local_access
from tests.hdh.jupyter.server import hdh_jupyter_server

TOKEN = "t0ken-for-access-requests"

REGISTRY = {"name": "registry", "version": "v1", "title": "Registry", "tables": []}
SNDS = {"name": "demo-snds", "version": "v1", "title": "SNDS", "tables": []}


def _access(dataset: str, application: Any = None) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "project": "demo",
        "state": "not_permitted",
        "mounted": [],
        "permitted": [],
        "leads": [{"name": "alice", "email": None}],
        "you_lead": True,
        "how": "Ask the project lead (alice) to request access.",
        "application": application,
    }


#: the project's open application for ``registry``, as the control plane's access answer has it
OPEN = {
    "id": 7,
    "kind": "amendment",
    "state": "submitted",
    "title": "Add registry",
    "submitted_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z",
}


@dataclass
class Server:
    url: str
    #: (method, path, JSON body) of every call that reached the bridge
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    #: what the fake control plane answers to POST /api/bridge/applications next
    answer: list[tuple[int, Any]] = field(default_factory=list)

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = TOKEN
    ) -> httpx.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.request(method, f"{self.url}/{path}", headers=headers, json=body, timeout=30)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("access-request-server")
    (base / "workspace").mkdir()
    (base / "data").mkdir()
    state = Server(url="")

    get_answers: dict[str, Any] = {
        "/api/catalogue/datasets/registry": REGISTRY,
        "/api/catalogue/datasets/demo-snds": SNDS,
        "/api/bridge/access/registry": _access("registry", OPEN),
        "/api/bridge/access/demo-snds": _access("demo-snds"),
        # listed only to show that the dataset page no longer asks for it
        "/api/bridge/applications": [{**OPEN, "datasets": ["registry"]}],
    }

    class Bridge(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = urlsplit(self.path).path
            state.calls.append(("GET", path, None))
            if path in get_answers:
                self._send(200, get_answers[path])
            else:
                self._send(404, {"detail": "no such thing"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            state.calls.append(("POST", path, body))
            if path == "/api/bridge/applications" and state.answer:
                self._send(*state.answer.pop(0))
            else:
                self._send(404, {"detail": "no such thing"})

        def log_message(self, *args: Any) -> None:
            pass

    folder = tempfile.mkdtemp(prefix="hdhr", dir="/tmp")  # AF_UNIX paths are short
    sock = os.path.join(folder, "api.sock")
    bridge = _UnixHTTPServer(sock, Bridge)
    threading.Thread(target=bridge.serve_forever, daemon=True).start()
    env = {
        "HDH_BRIDGE_SOCKET": sock,
        "HDH_DATA_ROOT": str(base / "data"),
        "HDH_USER": "alice",
        "HDH_PROJECT": "demo",
    }
    try:
        with hdh_jupyter_server(base, base / "workspace", token=TOKEN, env=env) as url:
            state.url = url
            yield state
    finally:
        bridge.shutdown()
        bridge.server_close()


def test_the_request_goes_to_the_bridge_with_the_urls_dataset(server: Server) -> None:
    server.calls.clear()
    view = {"id": 8, "kind": "amendment", "state": "submitted", "datasets": ["registry"]}
    server.answer.append((201, view))
    body = {"public_interest": "Why.", "methodology": "How.", "dataset": "demo-snds", "x": 1}
    r = server.request("POST", "hdh/catalogue/datasets/registry/request-access", body)
    assert r.status_code == 201, r.text
    assert r.json() == view
    # the URL names the dataset; nothing but the form's fields is passed on
    assert server.calls == [
        (
            "POST",
            "/api/bridge/applications",
            {"dataset": "registry", "public_interest": "Why.", "methodology": "How."},
        )
    ]


def test_a_refusal_is_the_control_planes_reason(server: Server) -> None:
    detail = (
        "only a lead of project demo requests access to a dataset: ask the project lead (alice)"
    )
    server.answer.append((403, {"detail": detail}))
    r = server.request(
        "POST",
        "hdh/catalogue/datasets/registry/request-access",
        {"public_interest": "a", "methodology": "b"},
    )
    assert r.status_code == 403 and r.json()["detail"] == detail


def test_a_body_that_is_not_an_object_is_a_400(server: Server) -> None:
    server.calls.clear()
    r = server.request("POST", "hdh/catalogue/datasets/registry/request-access", ["x"])
    assert r.status_code == 400
    assert server.calls == []


def test_only_post_and_only_dataset_names(server: Server) -> None:
    server.calls.clear()
    assert server.request("GET", "hdh/catalogue/datasets/registry/request-access").status_code in (
        404,
        405,
    )
    r = server.request("POST", "hdh/catalogue/datasets/Registry/request-access", {})
    assert r.status_code == 404
    assert server.request(
        "POST", "hdh/catalogue/datasets/registry/request-access", {}, token=None
    ).status_code in (
        401,
        403,
    )
    assert server.calls == []


def test_the_dataset_page_shows_the_open_request(server: Server) -> None:
    server.calls.clear()
    r = server.request("GET", "hdh/catalogue/datasets/registry")
    assert r.status_code == 200, r.text
    access = r.json()["access"]
    assert access["state"] == "not_permitted" and access["you_lead"] is True
    # the panel's shape, as before: the request's number, state and title
    assert access["application"] == {"id": 7, "state": "submitted", "title": "Add registry"}
    # the control plane's access answer carries it: the page never lists the applications
    # (the quality report and the access answer are asked for together: in either order)
    assert sorted(path for _, path, _ in server.calls) == [
        "/api/bridge/access/registry",
        "/api/catalogue/datasets/registry",
        "/api/catalogue/datasets/registry/versions/v1/quality",
    ]
    assert all(method == "GET" for method, _, _ in server.calls)
    # no open request for this dataset: none shown
    server.calls.clear()
    r = server.request("GET", "hdh/catalogue/datasets/demo-snds")
    assert r.status_code == 200, r.text
    assert r.json()["access"]["application"] is None
    assert "/api/bridge/applications" not in {path for _, path, _ in server.calls}


def test_the_access_request_reads_defensively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_DATA_ROOT", str(tmp_path))
    shown = local_access("registry", _access("registry", OPEN))["application"]
    assert shown == {"id": 7, "state": "submitted", "title": "Add registry"}
    for junk in (None, "7", [OPEN], {"id": "7", "state": "submitted"}, {"state": "submitted"}):
        assert local_access("registry", _access("registry", junk))["application"] is None


def test_without_an_answer_on_access_the_badge_has_no_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_DATA_ROOT", str(tmp_path))
    out = local_access("registry", _access("registry"))
    assert out["application"] is None and out["you_lead"] is True
    bare = local_access("registry", None)
    assert bare["you_lead"] is False and bare["application"] is None
