"""The guard against a real ``jupyter server --sock`` and a real HDH store.

Covers pass-through (status, kernels, notebook saves), security headers on
every kind of response, the policy corpus never reaching the sandbox, the
size caps, kernel code audit in both websocket protocols (and no execution
when the audit fails), terminal input audit, and identity/permit refusals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import websocket
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.sandbox.client import execute_request
from jupyterlab_hdh.store.models import AuditEvent

from .conftest import BASE, GuardServer, Upstream
from .test_policy import BAD

V1 = "v1.kernel.websocket.jupyter.org"
CSP_MARK = "default-src 'self'"


@contextmanager
def xsrf_client(guard: GuardServer, user: str = "alice") -> Iterator[httpx.Client]:
    """A client holding the sandbox's ``_xsrf`` cookie, as JupyterLab would."""
    with guard.client(user) as c:
        r = c.get(BASE + "lab")
        assert r.status_code == 200
        c.headers["X-XSRFToken"] = c.cookies["_xsrf"]
        yield c


def assert_secure_headers(headers: Any) -> None:
    csp = headers.get("content-security-policy", "")
    assert csp.startswith(CSP_MARK), headers
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"
    assert len(headers.get_list("content-security-policy")) == 1


def events(guard: GuardServer, action: str) -> list[AuditEvent]:
    with guard.hub.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def chain_ok(guard: GuardServer) -> None:
    with guard.hub.sessions() as s:
        assert verify(s).ok


# ------------------------------------------------------------------ HTTP


def test_status_and_headers_pass_through(guard: GuardServer) -> None:
    with guard.client() as c:
        r = c.get(BASE + "api/status")
        assert r.status_code == 200 and "started" in r.json()
        assert_secure_headers(r.headers)
        page = c.get(BASE + "lab")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert_secure_headers(page.headers)
        # upstream's own CSP (frame-ancestors + report-uri) is replaced, not merged
        assert "report-uri" not in page.headers["content-security-policy"]
        missing = c.get(BASE + "api/contents/nope.ipynb")
        assert missing.status_code == 404
        assert_secure_headers(missing.headers)
        denied = c.get(BASE + "files/x")
        assert denied.status_code == 403
        assert_secure_headers(denied.headers)


def test_kernel_create_and_notebook_save(guard: GuardServer, upstream: Upstream) -> None:
    with xsrf_client(guard) as c:
        r = c.post(BASE + "api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "source": "1+1",
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                    "id": "c1",
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        body = {"type": "notebook", "format": "json", "content": nb}
        r = c.put(BASE + "api/contents/saved.ipynb", json=body)
        assert r.status_code in (200, 201), r.text
        assert (upstream.root / "saved.ipynb").exists()
        c.delete(BASE + f"api/kernels/{kid}")
    ev = [e for e in events(guard, "file.save") if "saved.ipynb" in e.target]
    assert ev, "the save was not audited"
    d = json.loads(ev[-1].details)
    assert d["path"] == "saved.ipynb" and d["type"] == "notebook" and d["user"] == "alice"
    raw = json.dumps(nb, sort_keys=True, separators=(",", ":")).encode()
    assert d["sha256"] == hashlib.sha256(raw).hexdigest()
    chain_ok(guard)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("not-json.ipynb", b"{this is not json"),
        ("bad-nbformat.ipynb", b'{"type": "notebook", "format": "json", "content": {"cells": 7}}'),
        ("truncated.ipynb", b'{"type": "notebook", "format": "json", "content": {"cells": ['),
        ("wrong-type.ipynb", b'["type", "notebook"]'),
    ],
)
def test_malformed_notebook_save_is_refused_cleanly(
    guard: GuardServer, upstream: Upstream, name: str, body: bytes
) -> None:
    """A malformed save gets a 4xx with our headers, writes nothing and leaks no traceback."""
    with xsrf_client(guard) as c:
        r = c.put(
            BASE + f"api/contents/{name}",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert_secure_headers(r.headers)
    assert "Traceback" not in r.text
    assert not (upstream.root / name).exists()
    chain_ok(guard)


def raw_get(guard: GuardServer, target: bytes) -> tuple[int, httpx.Headers]:
    """Send a request line byte for byte (no client-side normalisation); 0 if dropped."""
    with socket.create_connection(("127.0.0.1", guard.port), timeout=10) as s:
        s.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"X-Test-User: alice\r\nConnection: close\r\n\r\n" % guard.port
        )
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return 0, httpx.Headers()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = httpx.Headers([tuple(h.split(": ", 1)) for h in head[1:] if ": " in h])
    return int(head[0].split()[1]), headers


def test_denied_corpus_never_reaches_upstream(guard: GuardServer) -> None:
    with guard.client() as c:
        for path, query in BAD:
            before = len(guard.forwarded)
            url = path + (f"?{query}" if query else "")
            status, headers = raw_get(guard, url.encode("utf-8"))
            # 0: Tornado's HTTP parser dropped the connection (raw NUL/control bytes)
            assert status in (0, 400, 403, 404), (url, status)
            if status and "content-type" in headers:  # not Tornado's own bare 400
                assert_secure_headers(headers)
            assert len(guard.forwarded) == before, f"{url!r} reached the sandbox"
        for method, path in [("POST", "lab/api/extensions"), ("PUT", "lab/api/plugins")]:
            before = len(guard.forwarded)
            r = c.request(
                method,
                BASE + path,
                json={"cmd": "install", "extension_name": "x"},
                headers={"X-XSRFToken": "x"},
            )
            assert r.status_code == 403 and len(guard.forwarded) == before


def test_symlink_to_outside_file_is_refused(
    guard: GuardServer, upstream: Upstream, tmp_path: Any
) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.bin").write_bytes(b"\xff\xfe\x00patient-ids")  # not UTF-8
    link = upstream.root / "link"
    if not link.exists():
        os.symlink(secret, link)
    with guard.client() as c:
        r = c.get(BASE + "api/contents/link/secret.bin", params={"content": 1, "format": "base64"})
        assert r.status_code == 403
        assert (
            "patient-ids" not in r.text
            and base64.b64encode(b"\xff\xfe\x00patient").decode() not in r.text
        )
        # without format=, the server picks base64 itself for a binary file: refused too.
        # (A small *text* file behind a link is served like any text file: keeping the
        # outside world out of the workspace is the sandbox's job, not the guard's.)
        r = c.get(BASE + "api/contents/link/secret.bin", params={"content": 1})
        assert r.status_code == 403 and "patient" not in r.text


def test_big_text_read_is_refused_small_is_served(guard: GuardServer, upstream: Upstream) -> None:
    (upstream.root / "big.csv").write_text("a,b\n" + "1,2\n" * 100_000)  # 400 kB > 256 KiB cap
    (upstream.root / "small.csv").write_text("a,b\n1,2\n")
    with guard.client() as c:
        r = c.get(BASE + "api/contents/big.csv", params={"content": 1, "format": "text"})
        assert r.status_code == 403 and "1,2" not in r.text
        assert_secure_headers(r.headers)
        ok = c.get(BASE + "api/contents/small.csv", params={"content": 1, "format": "text"})
        assert ok.status_code == 200 and ok.json()["content"] == "a,b\n1,2\n"
        meta = c.get(BASE + "api/contents/big.csv", params={"content": 0})
        assert meta.status_code == 200  # metadata only: fine
        # a browser asks for gzip: capped reads are still served (the guard asks in clear)
        for i in range(200):
            (upstream.root / f"listing-{i:03}.txt").write_text("x")
        listing = c.get(
            BASE + "api/contents", params={"content": 1}, headers={"Accept-Encoding": "gzip"}
        )
        assert listing.status_code == 200 and len(listing.json()["content"]) >= 200


def test_oversized_upload_gets_413_and_no_file(guard: GuardServer, upstream: Upstream) -> None:
    blob = base64.b64encode(os.urandom(600 * 1024)).decode()  # > 512 KiB cap
    with xsrf_client(guard) as c:
        r = c.put(
            BASE + "api/contents/upload.bin",
            json={"type": "file", "format": "base64", "content": blob},
        )
        assert r.status_code == 413
        assert_secure_headers(r.headers)
    assert not (upstream.root / "upload.bin").exists()


def test_chunked_upload_total_is_capped(guard: GuardServer, upstream: Upstream) -> None:
    part = base64.b64encode(os.urandom(200 * 1024)).decode()
    with xsrf_client(guard) as c:
        codes = []
        for chunk in (1, 2, 3, -1):
            r = c.put(
                BASE + "api/contents/chunked.bin",
                json={"type": "file", "format": "base64", "content": part, "chunk": chunk},
            )
            codes.append(r.status_code)
        assert codes[0] in (200, 201) and 413 in codes
    assert not (upstream.root / "chunked.bin").exists()  # the partial file was removed


def test_binary_uploads_refused_by_default(upstream: Upstream, tmp_path: Any) -> None:
    from jupyterlab_hdh.guard.policy import GuardConfig

    from .conftest import run_guard

    gen = run_guard(upstream.sock, tmp_path, GuardConfig())
    g = next(gen)
    try:
        with xsrf_client(g) as c:
            r = c.put(
                BASE + "api/contents/in.bin",
                json={"type": "file", "format": "base64", "content": "AAEC"},
            )
            assert r.status_code == 403
            assert not (upstream.root / "in.bin").exists()
            r = c.put(
                BASE + "api/contents/notes.txt",
                json={"type": "file", "format": "text", "content": "hello"},
            )
            assert r.status_code in (200, 201)
    finally:
        gen.close()


# ------------------------------------------------------------------ identity and permits


def test_unauthenticated_wrong_user_and_no_permit(guard: GuardServer) -> None:
    before = len(guard.forwarded)
    with guard.client(None) as c:
        assert c.get(BASE + "api/status").status_code == 403
        assert c.get(BASE + "lab").status_code == 403
    with guard.client("mallory") as c:
        r = c.get(BASE + "api/status")
        assert r.status_code == 403 and "another user" in r.text
        assert_secure_headers(r.headers)
    with guard.client("alice") as c:
        r = c.get("/user/alice/proj2/api/status")
        assert r.status_code == 403 and "permit" in r.text
    assert len(guard.forwarded) == before
    guard.permits.add(("alice", "stopped"))
    with guard.client("alice") as c:
        r = c.get("/user/alice/stopped/api/status")
        assert r.status_code == 503 and "not running" in r.text


def test_cross_origin_write_refused(guard: GuardServer) -> None:
    with xsrf_client(guard) as c:
        r = c.post(
            BASE + "api/kernels",
            json={"name": "python3"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
        del c.headers["X-XSRFToken"]
        r = c.post(BASE + "api/kernels", json={"name": "python3"})
        assert r.status_code == 403


def test_hub_cookies_and_tokens_not_forwarded() -> None:
    from jupyterlab_hdh.guard.proxy import filter_cookie_header

    v = "jupyterhub-session-id=s; _xsrf=x; jupyterhub-services=tok; username-h=u"
    assert filter_cookie_header(v) == "_xsrf=x; username-h=u"


# ------------------------------------------------------------------ websockets


def ws_url(guard: GuardServer, path: str) -> str:
    return f"ws://127.0.0.1:{guard.port}{path}"


def start_kernel(c: httpx.Client) -> str:
    r = c.post(BASE + "api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def connect(
    guard: GuardServer,
    kid: str,
    user: str | None = "alice",
    protocols: list[str] | None = None,
    origin: str | None = None,
) -> websocket.WebSocket:
    headers = [f"X-Test-User: {user}"] if user else []
    return websocket.create_connection(
        ws_url(guard, f"{BASE}api/kernels/{kid}/channels?session_id={uuid.uuid4()}"),
        header=headers,
        subprotocols=protocols,
        origin=origin or f"http://127.0.0.1:{guard.port}",
        timeout=30,
    )


def execute_msg(code: str) -> dict[str, Any]:
    return execute_request(code, username="alice", store_history=True)


def send(ws: websocket.WebSocket, msg: dict[str, Any], v1: bool) -> None:
    if v1:
        parts = [
            json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")
        ]
        ws.send_binary(serialize_msg_to_ws_v1(parts, msg["channel"]))
    else:
        ws.send(json.dumps(msg))


def recv(ws: websocket.WebSocket, v1: bool) -> dict[str, Any]:
    data = ws.recv()
    if v1:
        from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

        channel, parts = deserialize_msg_from_ws_v1(data)
        return {
            "channel": channel,
            "header": json.loads(parts[0]),
            "parent_header": json.loads(parts[1]),
            "content": json.loads(parts[3]),
        }
    return json.loads(data)  # type: ignore[no-any-return]


def run_code(ws: websocket.WebSocket, code: str, v1: bool) -> tuple[dict[str, Any], list[str]]:
    """Execute and wait for both the execute_reply and the iopub idle (stream order varies)."""
    msg = execute_msg(code)
    send(ws, msg, v1)
    out: list[str] = []
    reply: dict[str, Any] | None = None
    idle = False
    for _ in range(500):
        m = recv(ws, v1)
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        kind = m["header"]["msg_type"]
        if kind == "stream":
            out.append(m["content"]["text"])
        elif kind == "execute_reply":
            reply = m
        elif kind == "status" and m["content"].get("execution_state") == "idle":
            idle = True
        if reply is not None and idle:
            return reply, out
    raise AssertionError("no execute_reply")


@pytest.mark.parametrize("v1", [True, False], ids=["v1-binary", "legacy-json"])
def test_execute_is_audited(guard: GuardServer, upstream: Upstream, v1: bool) -> None:
    with xsrf_client(guard) as c:
        kid = start_kernel(c)
        ws = connect(guard, kid, protocols=[V1] if v1 else None)
        try:
            assert ws.getsubprotocol() == (V1 if v1 else None)
            assert_secure_headers(httpx.Headers(ws.getheaders()))
            code = f"print('héllo {v1}', 6*7)"
            reply, out = run_code(ws, code, v1)
            assert reply["content"]["status"] == "ok"
            assert out == [f"héllo {v1} 42\n"]
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    ev = [e for e in events(guard, "code.execute") if json.loads(e.details)["code"] == code]
    assert len(ev) == 1
    d = json.loads(ev[0].details)
    assert d["sha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert d["kernel_id"] == kid and d["user"] == "alice" and d["project"] == "proj1"
    assert ev[0].actor == "alice" and ev[0].target == f"project:proj1/kernel:{kid}"
    chain_ok(guard)


def test_audit_failure_blocks_execution(guard: GuardServer, upstream: Upstream) -> None:
    marker = upstream.root / "ran.txt"
    with xsrf_client(guard) as c:
        kid = start_kernel(c)
        ws = connect(guard, kid, protocols=[V1])
        try:
            run_code(ws, "1", True)  # kernel ready
            guard.sink.fail = True
            send(ws, execute_msg(f"open({str(marker)!r}, 'w').write('x')"), True)
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                for _ in range(50):
                    ws.recv()
        finally:
            guard.sink.fail = False
            ws.close()
        # the kernel is still alive and the code never ran
        ws2 = connect(guard, kid, protocols=[V1])
        try:
            reply, out = run_code(ws2, f"import os; print(os.path.exists({str(marker)!r}))", True)
            assert out == ["False\n"]
        finally:
            ws2.close()
            c.delete(BASE + f"api/kernels/{kid}")
    assert not marker.exists()


def test_unparseable_kernel_message_closes(guard: GuardServer) -> None:
    with xsrf_client(guard) as c:
        kid = start_kernel(c)
        ws = connect(guard, kid, protocols=[V1])
        try:
            ws.send("not binary on v1")
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                for _ in range(50):
                    ws.recv()
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")


def test_websocket_upgrades_refused_without_identity(guard: GuardServer) -> None:
    with xsrf_client(guard) as c:
        kid = start_kernel(c)
        try:
            for user, origin in [
                (None, None),
                ("mallory", None),
                ("alice", "https://evil.example"),
            ]:
                with pytest.raises(websocket.WebSocketBadStatusException) as exc:
                    connect(guard, kid, user=user, protocols=[V1], origin=origin)
                assert exc.value.status_code == 403
                assert_secure_headers(httpx.Headers(exc.value.resp_headers or {}))
        finally:
            c.delete(BASE + f"api/kernels/{kid}")


def test_terminal_input_is_audited(guard: GuardServer) -> None:
    with xsrf_client(guard) as c:
        r = c.post(BASE + "api/terminals")
        assert r.status_code == 200, r.text
        name = r.json()["name"]
        ws = websocket.create_connection(
            ws_url(guard, f"{BASE}terminals/websocket/{name}"),
            header=["X-Test-User: alice"],
            origin=f"http://127.0.0.1:{guard.port}",
            timeout=30,
        )
        try:
            # The output (hdh-42) never appears in the echoed input, whatever the shell
            # draws around typed-ahead keystrokes, so its arrival proves the line ran.
            for ch in "echo hdh-", "$((40+2))", "\r":
                ws.send(json.dumps(["stdin", ch]))
            seen = ""
            while "hdh-42" not in seen:
                try:
                    m = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    pytest.fail(f"no output of the command within 30 s; terminal showed {seen!r}")
                if m[0] == "stdout":
                    seen += m[1]
        finally:
            ws.close()
            c.delete(BASE + f"api/terminals/{name}")
    ev = [json.loads(e.details) for e in events(guard, "terminal.input")]
    assert any(d["input"] == "echo hdh-$((40+2))\r" for d in ev), ev


def test_swapped_socket_symlink_is_not_followed(upstream: Upstream, tmp_path: Any) -> None:
    """A sandbox replacing its socket with a link to another project's socket reaches nothing."""
    from jupyterlab_hdh.guard.policy import GuardConfig

    from .conftest import run_guard

    swapped = tmp_path / "sock" / "jupyter.sock"
    swapped.parent.mkdir()
    swapped.symlink_to(upstream.sock)  # the other project's live socket
    gen = run_guard(str(swapped), tmp_path, GuardConfig())
    g = next(gen)
    try:
        with g.client("alice") as c:
            page, api = c.get(BASE + "lab"), c.get(BASE + "api/status")
        assert (page.status_code, api.status_code) == (502, 502), api.text
        assert "_xsrf" not in page.cookies  # nothing came back from the other sandbox
    finally:
        gen.close()


def test_default_resolver_follows_the_sandbox_layout(tmp_path: Any) -> None:
    from jupyterlab_hdh.guard.app import socket_dir_resolver
    from jupyterlab_hdh.sandbox.spec import runtime_dir_for

    resolve = socket_dir_resolver(tmp_path)
    assert resolve("alice", "proj1") is None  # no sandbox running
    sock_dir = runtime_dir_for(tmp_path, "proj1", "alice") / "sock"
    sock_dir.mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_dir / "jupyter.sock"))
    try:
        assert resolve("alice", "proj1") == str(sock_dir / "jupyter.sock")
        assert resolve("bob", "proj1") is None
    finally:
        s.close()
