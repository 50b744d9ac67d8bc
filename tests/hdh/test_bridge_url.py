"""The in-sandbox clients of the API bridge over TCP (``HDH_BRIDGE_URL``, as on Kubernetes).

A real HTTP server on 127.0.0.1 (an ephemeral port) records each request's method, path,
headers and body and answers JSON. Each client (``hdh._bridge.get``, the server extension's
``bridge_request``, the airlock) is checked with and without a path prefix, on errors,
redirects (never followed), a server that is down, malformed URLs (refused before any
connection) and against a socket also present (the URL wins).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hdh import _bridge
from hdh import airlock as egress
from hdh._bridge import BridgeEndpoint, BridgeURLError, bridge_endpoint, parse_bridge_url
from hdh.jupyter.bridge import BridgeUnavailable, bridge_get, bridge_request


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """What the fake bridge saw, and what it answers: ``answers[path] = (status, body,
    headers)``; any other path gets 200 with ``{"method": ..., "path": ...}``."""

    seen: list[Seen] = field(default_factory=list)
    answers: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                status, answer, headers = recorder.answers.get(
                    self.path, (200, {"method": self.command, "path": self.path}, {})
                )
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@dataclass
class Bridge:
    recorder: Recorder
    port: int

    @property
    def seen(self) -> list[Seen]:
        return self.recorder.seen

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), recorder.handler())
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield Bridge(recorder, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_bridge() -> Iterator[tuple[str, Recorder]]:
    """The same fake bridge on a Unix socket: what the hub serves on one machine."""
    recorder = Recorder()
    sock = os.path.join(tempfile.mkdtemp(prefix="hdhb", dir="/tmp"), "api.sock")
    server = _UnixHTTPServer(sock, recorder.handler())
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield sock, recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def down_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/projects/study"


@pytest.fixture(autouse=True)
def _no_bridge(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv(_bridge.BRIDGE_URL_ENV, raising=False)
    monkeypatch.setenv(_bridge.BRIDGE_SOCKET_ENV, str(tmp_path / "no-bridge.sock"))


PREFIXES = ["", "/projects/study"]

# --- the URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (
            "http://10.96.12.7:8090/projects/study",
            BridgeEndpoint(None, "10.96.12.7", 8090, "/projects/study"),
        ),
        (
            "http://10.96.12.7:8090/projects/study/",
            BridgeEndpoint(None, "10.96.12.7", 8090, "/projects/study"),
        ),
        ("http://10.96.12.7:8090", BridgeEndpoint(None, "10.96.12.7", 8090, "")),
        ("http://10.96.12.7:8090/", BridgeEndpoint(None, "10.96.12.7", 8090, "")),
        ("http://guard.hdh:1/p-1_a.b~c", BridgeEndpoint(None, "guard.hdh", 1, "/p-1_a.b~c")),
        ("http://[fd00::1]:8090/x", BridgeEndpoint(None, "fd00::1", 8090, "/x")),
    ],
)
def test_a_bridge_url_is_a_host_a_port_and_a_prefix(url: str, endpoint: BridgeEndpoint) -> None:
    assert parse_bridge_url(url) == endpoint
    assert endpoint.is_tcp
    assert endpoint.target("/api/bridge/whoami") == endpoint.prefix + "/api/bridge/whoami"


def test_an_ipv6_origin_is_bracketed() -> None:
    endpoint = parse_bridge_url("http://[fd00::1]:8090/x")
    assert endpoint.origin == "http://[fd00::1]:8090"
    assert endpoint.where == "http://[fd00::1]:8090/x"


MALFORMED = [
    "https://10.0.0.1:8090/projects/a",
    "ftp://10.0.0.1:8090/projects/a",
    "HTTP://10.0.0.1:8090/projects/a",
    "10.0.0.1:8090/projects/a",
    "http:/10.0.0.1:8090",
    "http://10.0.0.1/projects/a",
    "http://10.0.0.1:/projects/a",
    "http://:8090/projects/a",
    "http://[::1]/projects/a",
    "http://[nothing]:8090/a",
    "http://10.0.0.1:0/a",
    "http://10.0.0.1:65536/a",
    "http://10.0.0.1:80a/a",
    "http://10.0.0.1:+80/a",
    "http://10.0.0.1:8090;x/a",
    "http://host_name:8090/a",
    "http://user@10.0.0.1:8090/a",
    "http://user:pw@10.0.0.1:8090/a",
    "http://10.0.0.1:8090/a?b=1",
    "http://10.0.0.1:8090/a?",
    "http://10.0.0.1:8090/a#b",
    "http://10.0.0.1:8090/projects/../admin",
    "http://10.0.0.1:8090/projects/./a",
    "http://10.0.0.1:8090/projects//a",
    "http://10.0.0.1:8090//",
    "http://10.0.0.1:8090/projects/%2e%2e",
    "http://10.0.0.1:8090/projects/a%20b",
    "http://10.0.0.1:8090/projects\\a",
    "http://10.0.0.1:8090/projects/a b",
    "http://10.0.0.1:8090/projects/a\n",
    "http://10.0.0.1:8090/projects/é",
    "http://10.0.0.1:8090/projects/a;b",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_url_is_refused_with_its_reason(url: str) -> None:
    with pytest.raises(
        BridgeURLError, match=r"is refused \(.+\); the form is http://HOST:PORT\[/PREFIX\]$"
    ):
        parse_bridge_url(url)


def test_the_url_wins_over_the_socket_and_an_empty_url_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", "/elsewhere/api.sock")
    assert bridge_endpoint() == BridgeEndpoint(socket="/elsewhere/api.sock")
    monkeypatch.setenv("HDH_BRIDGE_URL", "")
    assert bridge_endpoint() == BridgeEndpoint(socket="/elsewhere/api.sock")
    monkeypatch.setenv("HDH_BRIDGE_URL", "http://10.0.0.1:8090/projects/a")
    assert bridge_endpoint() == BridgeEndpoint(None, "10.0.0.1", 8090, "/projects/a")
    # given explicitly, a socket or a URL beats the environment
    assert bridge_endpoint(socket="/s.sock") == BridgeEndpoint(socket="/s.sock")
    assert bridge_endpoint(url="http://10.0.0.2:1", socket="/s.sock").host == "10.0.0.2"
    monkeypatch.delenv("HDH_BRIDGE_URL")
    monkeypatch.delenv("HDH_BRIDGE_SOCKET")
    assert bridge_endpoint() == BridgeEndpoint(socket="/bridge/api.sock")


def test_bridge_configured(monkeypatch: pytest.MonkeyPatch, unix_bridge: Any) -> None:
    assert not _bridge.bridge_configured()  # the autouse fixture's socket does not exist
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", unix_bridge[0])
    assert _bridge.bridge_configured()
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", "/nothing/here.sock")
    monkeypatch.setenv("HDH_BRIDGE_URL", "http://10.0.0.1:8090")
    assert _bridge.bridge_configured()


# --- hdh._bridge.get ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_over_tcp(bridge: Bridge, monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url(prefix))
    path = f"{prefix}/api/bridge/egress/checks?x=1"
    assert _bridge.get("/api/bridge/egress/checks?x=1") == {"method": "GET", "path": path}
    [seen] = bridge.seen
    assert (seen.method, seen.path, seen.body) == ("GET", path, b"")
    assert seen.headers["host"] == f"127.0.0.1:{bridge.port}"
    assert not {"authorization", "cookie", "proxy-authorization"} & set(seen.headers)


def test_get_is_none_on_an_error_a_redirect_a_down_server_or_a_bad_url(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, down_url: str
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/p"))
    bridge.recorder.answers["/p/api/a"] = (403, {"detail": "revoked"}, {})
    bridge.recorder.answers["/p/api/b"] = (302, {}, {"Location": bridge.url("/p/api/c")})
    assert _bridge.get("/api/a") is None
    assert _bridge.get("/api/b") is None
    assert [s.path for s in bridge.seen] == ["/p/api/a", "/p/api/b"]  # /p/api/c never asked
    monkeypatch.setenv("HDH_BRIDGE_URL", down_url)
    assert _bridge.get("/api/a", timeout=5) is None
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/p/../admin"))
    assert _bridge.get("/api/a") is None
    assert len(bridge.seen) == 2


def test_get_uses_the_url_rather_than_a_socket(
    bridge: Bridge, unix_bridge: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, on_socket = unix_bridge
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", sock)
    assert _bridge.get("/api/x") == {"method": "GET", "path": "/api/x"}  # the socket still works
    assert [s.path for s in on_socket.seen] == ["/api/x"]
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/study"))
    assert _bridge.get("/api/y") == {"method": "GET", "path": "/projects/study/api/y"}
    assert [s.path for s in on_socket.seen] == ["/api/x"]


# --- hdh.jupyter.bridge -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_bridge_request_get_and_post_over_tcp(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url(prefix))
    status, body = asyncio.run(bridge_get("/api/catalogue/search", {"q": "diabète", "limit": "5"}))
    path = f"{prefix}/api/catalogue/search?q=diab%C3%A8te&limit=5"
    assert (status, body) == (200, {"method": "GET", "path": path})
    status, body = asyncio.run(
        bridge_request("POST", "/api/bridge/egress/requests", json_body={"title": "T"})
    )
    assert (status, body) == (
        200,
        {"method": "POST", "path": f"{prefix}/api/bridge/egress/requests"},
    )
    get, post = bridge.seen
    assert (get.method, get.path, get.body) == ("GET", path, b"")
    assert (post.method, post.path) == ("POST", f"{prefix}/api/bridge/egress/requests")
    assert json.loads(post.body) == {"title": "T"}
    assert post.headers["content-type"] == "application/json"
    assert post.headers["host"] == f"127.0.0.1:{bridge.port}"
    for seen in bridge.seen:
        assert not {"authorization", "cookie", "proxy-authorization"} & set(seen.headers)


def test_bridge_request_returns_error_statuses_and_does_not_follow_redirects(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/study"))
    bridge.recorder.answers["/projects/study/api/bridge/whoami"] = (
        403,
        {"detail": "revoked"},
        {},
    )
    bridge.recorder.answers["/projects/study/api/r"] = (
        307,
        {"detail": "moved"},
        {"Location": bridge.url("/elsewhere")},
    )
    assert asyncio.run(bridge_get("/api/bridge/whoami")) == (403, {"detail": "revoked"})
    assert asyncio.run(bridge_request("POST", "/api/r", json_body={})) == (
        307,
        {"detail": "moved"},
    )
    assert [s.path for s in bridge.seen] == [
        "/projects/study/api/bridge/whoami",
        "/projects/study/api/r",
    ]


def test_bridge_request_names_the_url_of_a_down_bridge(
    down_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", down_url)
    with pytest.raises(BridgeUnavailable) as err:
        asyncio.run(bridge_get("/api/bridge/whoami", timeout=5))
    message = str(err.value)
    assert message == f"the API bridge at {down_url} did not answer: ConnectError"
    assert "\n" not in message


@pytest.mark.parametrize("suffix", ["/p/../admin", "/p?x=1", "/p%2F"])
def test_bridge_request_refuses_a_malformed_url(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url(suffix))
    with pytest.raises(BridgeUnavailable, match="not reachable from this sandbox: the API"):
        asyncio.run(bridge_get("/api/bridge/whoami"))
    assert bridge.seen == []


def test_bridge_request_uses_the_url_rather_than_a_socket(
    bridge: Bridge, unix_bridge: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, on_socket = unix_bridge
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", sock)
    assert asyncio.run(bridge_get("/api/x")) == (200, {"method": "GET", "path": "/api/x"})
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/study"))
    assert asyncio.run(bridge_get("/api/y"))[1]["path"] == "/projects/study/api/y"
    assert [s.path for s in on_socket.seen] == ["/api/x"]
    assert [s.path for s in bridge.seen] == ["/projects/study/api/y"]


def test_no_socket_and_no_url_is_still_the_socket_message() -> None:
    with pytest.raises(BridgeUnavailable, match="no API bridge at .*no-bridge.sock"):
        asyncio.run(bridge_get("/api/bridge/whoami"))


# --- hdh.airlock --------------------------------------------------------------------------


REQUESTS = "/api/bridge/egress/requests"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_airlock_get_and_post_over_tcp(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url(prefix))
    bridge.recorder.answers[f"{prefix}{REQUESTS}"] = (
        201,
        {"id": 7, "state": "draft", "title": "T"},
        {},
    )
    bridge.recorder.answers[f"{prefix}{REQUESTS}?state=draft"] = (200, [{"id": 7}], {})
    air = egress.Airlock(workspace="/workspace")
    assert air.socket_path is None
    request = air.new_request("T")
    assert (request.id, request.state) == (7, "draft")
    assert air.requests("draft") == [{"id": 7}]
    post, get = bridge.seen
    assert (post.method, post.path) == ("POST", f"{prefix}{REQUESTS}")
    assert json.loads(post.body) == {"title": "T"}
    assert post.headers["content-type"] == "application/json"
    assert (get.method, get.path, get.body) == ("GET", f"{prefix}{REQUESTS}?state=draft", b"")
    for seen in bridge.seen:
        assert seen.headers["accept"] == "application/json"
        assert seen.headers["host"] == f"127.0.0.1:{bridge.port}"
        assert not {"authorization", "cookie"} & set(seen.headers)


def test_airlock_takes_the_url_explicitly(bridge: Bridge, unix_bridge: Any) -> None:
    sock, on_socket = unix_bridge
    air = egress.Airlock(sock, bridge_url=bridge.url("/projects/study"))
    assert air.call("GET", "/api/x") == {"method": "GET", "path": "/projects/study/api/x"}
    assert on_socket.seen == []


def test_airlock_errors_carry_the_detail_and_the_status(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/study"))
    answers = bridge.recorder.answers
    answers[f"/projects/study{REQUESTS}/3"] = (409, {"detail": "no longer a draft"}, {})
    answers[f"/projects/study{REQUESTS}/4"] = (422, {"detail": [{"loc": ["path"]}]}, {})
    answers[f"/projects/study{REQUESTS}/5"] = (302, {}, {"Location": bridge.url("/x")})
    air = egress.Airlock()
    with pytest.raises(egress.AirlockError) as err:
        air.request(3)
    assert (err.value.detail, err.value.status) == ("no longer a draft", 409)
    with pytest.raises(egress.AirlockError) as err:
        air.request(4)
    assert (json.loads(err.value.detail), err.value.status) == ([{"loc": ["path"]}], 422)
    with pytest.raises(egress.AirlockError) as err:
        air.request(5)
    assert err.value.status == 302
    assert [s.path for s in bridge.seen] == [f"/projects/study{REQUESTS}/{n}" for n in (3, 4, 5)]


def test_airlock_names_the_url_of_a_down_bridge(
    down_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", down_url)
    with pytest.raises(egress.AirlockError) as err:
        egress.Airlock(timeout=5).requests()
    assert str(err.value).startswith(f"the API bridge at {down_url} did not answer: ")
    assert err.value.status is None and "\n" not in str(err.value)


def test_airlock_refuses_a_malformed_url_when_called(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/../admin"))
    air = egress.Airlock(workspace="/workspace")  # building it is fine (paths need no bridge)
    assert air.workspace_path("/workspace/t.csv") == "t.csv"
    with pytest.raises(egress.AirlockError, match="no API bridge: the API bridge URL"):
        air.requests()
    with pytest.raises(egress.AirlockError, match=r"refused \(a user or password\)"):
        egress.Airlock(bridge_url=f"http://u:p@127.0.0.1:{bridge.port}").requests()
    assert bridge.seen == []


def test_airlock_uses_the_url_rather_than_a_socket(
    bridge: Bridge, unix_bridge: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, on_socket = unix_bridge
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", sock)
    assert egress.Airlock().call("GET", "/api/x") == {"method": "GET", "path": "/api/x"}
    monkeypatch.setenv("HDH_BRIDGE_URL", bridge.url("/projects/study"))
    air = egress.Airlock()
    assert air.call("GET", "/api/y") == {"method": "GET", "path": "/projects/study/api/y"}
    assert [s.path for s in on_socket.seen] == ["/api/x"]
