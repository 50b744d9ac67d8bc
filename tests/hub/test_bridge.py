"""The API bridge's policy (pure) and a real bridge server forwarding to a recording upstream.

The upstream is a small Tornado app on a loopback port that records the path
and headers it receives, so each test sees exactly what the control plane would
get: never the sandbox's forged identity, credentials, Host or refused routes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado import httpserver, netutil, web

from jupyterlab_hdh.hub.bridge import (
    BridgeRefused,
    BridgeServer,
    BridgeTarget,
    check_request,
    upstream_headers,
)

TOKEN = "t" * 64

ALLOWED = [
    "/api/bridge/whoami",
    "/api/bridge/egress/checks",
    "/api/bridge/access/demo-snds",
    "/api/catalogue/datasets",
    "/api/catalogue/datasets/demo-snds",
    "/api/catalogue/datasets/demo-snds/versions/v1",
    "/api/catalogue/datasets/demo-snds/versions/v1/quality",
    "/api/catalogue/datasets/demo-snds/versions/v1/tables/IR_BEN_R",
    "/api/catalogue/search?q=diab%C3%A8te&limit=5",
    "/api/bridge/egress/requests",
    "/api/bridge/egress/requests/12",
    "/api/bridge/applications",
]
#: The airlock routes a sandbox may POST to (its own requests).
ALLOWED_POSTS = [
    "/api/bridge/egress/requests",
    "/api/bridge/egress/requests/7/files",
    "/api/bridge/egress/requests/7/submit",
    "/api/bridge/egress/requests/7/withdraw",
    "/api/bridge/applications",
]
REFUSED = [
    ("POST", "/api/optout"),
    ("GET", "/api/optout"),
    ("GET", "/api/audit/events"),
    ("GET", "/api/projects"),
    ("GET", "/api/permits"),
    ("GET", "/api/me/projects/demo/access"),
    ("POST", "/api/bridge/whoami"),
    ("DELETE", "/api/bridge/whoami"),
    ("GET", "/api/bridge/whoami/"),
    ("GET", "/api/catalogue/../audit/events"),
    ("GET", "/api/catalogue/datasets/../../audit/events"),
    ("GET", "/api/catalogue/datasets/%2e%2e/%2e%2e/audit/events"),
    ("GET", "/api/catalogue/datasets/..%2f..%2faudit%2fevents"),
    ("GET", "/api/catalogue/datasets/%252e%252e"),
    ("GET", "/api/catalogue/datasets/.."),
    ("GET", "/api/catalogue/datasets/."),
    ("GET", "/api/catalogue//datasets"),
    ("GET", "//evil.example/api/bridge/whoami"),
    ("GET", "http://127.0.0.1:1/api/bridge/whoami"),
    ("GET", "http://evil/api/catalogue/datasets"),
    ("GET", "/api/catalogue/datasets\\..\\..\\audit"),
    ("GET", "/api/catalogue/search?q=x#frag"),
    ("GET", "/api/catalogue/search?q=a b"),
    ("GET", "*"),
    ("GET", ""),
    # the airlock: a sandbox submits its own outputs, it never votes, approves or releases
    ("POST", "/api/bridge/egress/requests/7/vote"),
    ("POST", "/api/bridge/egress/requests/7/approve"),
    ("POST", "/api/bridge/egress/requests/7/release"),
    ("POST", "/api/egress/requests"),
    ("POST", "/api/bridge/egress/requests/7"),
    ("POST", "/api/bridge/egress/requests/x/submit"),
    ("POST", "/api/bridge/egress/requests/7/submit?as=admin"),
    ("PUT", "/api/bridge/egress/requests/7/files"),
    ("DELETE", "/api/bridge/egress/requests/7"),
    ("GET", "/api/bridge/egress/requests/7/files/../../../../audit/events"),
    ("GET", "/api/bridge/egress/requests/7/download"),
    ("GET", "/api/bridge/mounts"),
    # the catalogue browser's access badge: one dataset of the caller's own project, read only
    ("POST", "/api/bridge/access/demo-snds"),
    ("GET", "/api/bridge/access"),
    ("GET", "/api/bridge/access/Demo"),
    ("GET", "/api/bridge/access/demo-snds/other-project"),
    ("GET", "/api/bridge/access/.."),
    # access requests: the project's own applications, read; a lead files one; nothing more
    # (no opinion, decision, revision or withdrawal from a sandbox, no other route)
    ("GET", "/api/bridge/applications/1"),
    ("GET", "/api/bridge/applications/"),
    ("POST", "/api/bridge/applications/"),
    ("POST", "/api/bridge/applications/1"),
    ("POST", "/api/bridge/applications/1/opinion"),
    ("POST", "/api/bridge/applications/1/decide"),
    ("POST", "/api/bridge/applications/1/revise"),
    ("POST", "/api/bridge/applications/1/withdraw"),
    ("POST", "/api/bridge/applications?project=other"),
    ("PUT", "/api/bridge/applications"),
    ("DELETE", "/api/bridge/applications"),
    ("PATCH", "/api/bridge/applications"),
    ("GET", "/api/applications"),
    ("POST", "/api/applications"),
    ("POST", "/api/applications/1/decide"),
    ("GET", "/api/bridge/applications/../../applications"),
    ("GET", "/api/bridge/applications/%2e%2e/%2e%2e/applications"),
    ("GET", "/api/bridge//applications"),
    ("POST", "/api/bridge/applicationsx"),
]


@pytest.mark.parametrize("target", ALLOWED)
def test_allowed_routes(target: str) -> None:
    path, query = check_request("GET", target)
    assert path + (f"?{query}" if query else "") == target


@pytest.mark.parametrize("target", ALLOWED_POSTS)
def test_allowed_posts(target: str) -> None:
    assert check_request("POST", target) == (target, "")


@pytest.mark.parametrize(("method", "target"), REFUSED)
def test_refused_routes(method: str, target: str) -> None:
    with pytest.raises(BridgeRefused):
        check_request(method, target)


def test_headers_are_rebuilt_not_filtered() -> None:
    forged = {
        "X-HDH-User": "admin",
        "x-hdh-project": "other",
        "X-HDH-Bridge": "guessed",
        "Authorization": "Bearer stolen",
        "Cookie": "jupyterhub-session-id=x",
        "Host": "evil.example",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "evil",
        "Proxy-Authorization": "Basic x",
        "Accept": "application/json",
    }
    out = upstream_headers(forged, token=TOKEN, user="alice", project="demo")
    assert out == {
        "Accept": "application/json",
        "X-HDH-Bridge": TOKEN,
        "X-HDH-User": "alice",
        "X-HDH-Project": "demo",
    }


# -- a real bridge server ---------------------------------------------------------------------


class _Record(web.RequestHandler):
    def initialize(self, seen: list[dict[str, Any]]) -> None:
        self.seen = seen

    def get(self, *_: str) -> None:
        self.seen.append(
            {
                "method": self.request.method,
                "uri": self.request.uri,
                "headers": {k.lower(): v for k, v in self.request.headers.get_all()},
                "body": self.request.body,
            }
        )
        self.set_header("Set-Cookie", "upstream=1")
        self.finish({"ok": True, "uri": self.request.uri})

    post = get


class _Loop:
    """An asyncio loop in a thread, running the upstream and the bridge."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn: Any) -> Any:
        async def wrap() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]], BridgeServer]]:
    seen: list[dict[str, Any]] = []
    loop = _Loop()
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]

    def setup() -> BridgeServer:
        upstream = httpserver.HTTPServer(web.Application([(r".*", _Record, {"seen": seen})]))
        upstream.add_sockets(sockets)
        bridge = BridgeServer(
            tmp_path / "bridge" / "api.sock",
            BridgeTarget(f"http://127.0.0.1:{port}", TOKEN, "alice", "demo"),
        )
        bridge.start()
        return bridge

    bridge = loop.call(setup)
    try:
        yield bridge.socket_path, seen, bridge
    finally:
        loop.call(bridge.stop)
        loop.close()


def raw(sock_path: Path, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes on the bridge socket; return (status, body)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_forged_identity_never_reaches_upstream(served: Any) -> None:
    sock_path, seen, _ = served
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock_path)), timeout=10) as c:
        r = c.get(
            "http://evil.example/api/bridge/whoami",
            headers={
                "X-HDH-User": "admin",
                "X-HDH-Project": "other",
                "X-HDH-Bridge": "guessed",
                "Authorization": "Bearer stolen",
                "Cookie": "a=b",
                "X-Forwarded-Host": "evil",
            },
        )
    assert r.status_code == 200, r.text
    assert "set-cookie" not in r.headers  # only Content-Type comes back
    (got,) = seen
    assert got["uri"] == "/api/bridge/whoami"
    h = got["headers"]
    assert (h["x-hdh-user"], h["x-hdh-project"], h["x-hdh-bridge"]) == ("alice", "demo", TOKEN)
    assert h["host"].startswith("127.0.0.1:")  # the fixed upstream, whatever Host said
    for name in ("authorization", "cookie", "x-forwarded-host"):
        assert name not in h


def test_duplicate_identity_headers_are_dropped(served: Any) -> None:
    sock_path, seen, _ = served
    status, _ = raw(
        sock_path,
        b"GET /api/bridge/whoami HTTP/1.1\r\nHost: x\r\nX-HDH-User: admin\r\n"
        b"X-HDH-User: root\r\nx-hdh-bridge: guessed\r\nConnection: close\r\n\r\n",
    )
    assert status == 200
    assert seen[-1]["headers"]["x-hdh-user"] == "alice"
    assert seen[-1]["headers"]["x-hdh-bridge"] == TOKEN


@pytest.mark.parametrize(
    "line",
    [
        b"GET http://127.0.0.1:9/api/audit/events HTTP/1.1",
        b"GET http://evil/api/bridge/whoami HTTP/1.1",
        b"GET /api/catalogue/../audit/events HTTP/1.1",
        b"GET /api/catalogue/%2e%2e/audit/events HTTP/1.1",
        b"GET /api/catalogue/datasets/..%2F..%2Faudit%2Fevents HTTP/1.1",
        b"POST /api/optout HTTP/1.1",
        b"GET /api/audit/events HTTP/1.1",
        b"GET //127.0.0.1:9/api/audit/events HTTP/1.1",
    ],
)
def test_refused_requests_never_reach_upstream(served: Any, line: bytes) -> None:
    sock_path, seen, _ = served
    status, body = raw(sock_path, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 403, body
    assert json.loads(body)["reason"] == "bridge"
    assert seen == []


def test_json_posts_pass_with_the_bridge_identity(served: Any) -> None:
    sock_path, seen, _ = served
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock_path)), timeout=10) as c:
        r = c.post(
            "http://bridge/api/bridge/egress/requests/7/files",
            json={"path": "out/table.csv", "role": "output"},
            headers={"X-HDH-User": "admin", "X-HDH-Bridge": "guessed"},
        )
        form = c.post(
            "http://bridge/api/bridge/egress/requests",
            content=b"title=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:  # over 64 KiB: Tornado answers 400 or just closes the connection, as it likes
            big_status = c.post(
                "http://bridge/api/bridge/egress/requests", json={"title": "x" * 70_000}
            ).status_code
        except httpx.TransportError:
            big_status = 0
    assert r.status_code == 200, r.text
    assert form.status_code == 415
    assert big_status in (0, 400, 413)
    (got,) = seen
    assert got["method"] == "POST" and got["uri"] == "/api/bridge/egress/requests/7/files"
    assert json.loads(got["body"]) == {"path": "out/table.csv", "role": "output"}
    h = got["headers"]
    assert (h["x-hdh-user"], h["x-hdh-bridge"], h["content-type"]) == (
        "alice",
        TOKEN,
        "application/json",
    )


def test_socket_is_private_and_removed_on_stop(served: Any) -> None:
    sock_path, _, bridge = served
    assert oct(sock_path.stat().st_mode & 0o777) == "0o600"
    assert oct(sock_path.parent.stat().st_mode & 0o777) == "0o700"
    assert bridge.running


def test_a_non_socket_in_its_place_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "bridge").mkdir()
    (tmp_path / "bridge" / "api.sock").write_text("not a socket")
    bridge = BridgeServer(
        tmp_path / "bridge" / "api.sock", BridgeTarget("http://127.0.0.1:1", TOKEN, "a", "p")
    )
    with pytest.raises((OSError, ValueError), match="not a socket"):
        bridge.start()
    assert (tmp_path / "bridge" / "api.sock").read_text() == "not a socket"
    (tmp_path / "bridge" / "api.sock").unlink()
    (tmp_path / "bridge").rmdir()
    (tmp_path / "bridge").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(OSError, match="not a plain folder"):
        bridge.start()
    assert list((tmp_path / "elsewhere").iterdir()) == []
