"""Attack tests of what a sandbox can show through the guard, against a real
``jupyter server --sock`` and a real HDH store.

* one kernel message of 16 MB (a data file displayed whole) reaches the browser
  as a placeholder, never as data;
* a notebook whose outputs hold 20 MB is read back trimmed to a screen's worth
  (its cells intact), and the same file read as text is refused;
* past the daily budget, outputs are withheld and reads refused with a clear
  message, an alert is audited, the counts survive a guard restart, and an
  administrator's raise lets the person read again;
* every browser→kernel message is audited before it is forwarded: the value of
  ``exec(input())`` is recorded before it runs (and never runs when the audit
  fails), comm traffic is recorded, debugger requests are refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from sqlalchemy import select

from jupyterlab_hdh.guard.display import DisplaySettings, raise_budget
from jupyterlab_hdh.guard.policy import GuardConfig
from jupyterlab_hdh.sandbox.client import execute_request
from jupyterlab_hdh.store.models import AuditEvent
from tests.waiting import wait_for

from .conftest import BASE, GuardServer, Upstream, run_guard
from .test_proxy import V1, connect, recv, send, start_kernel, xsrf_client

KiB = 1024
MiB = 1024 * KiB


def details(guard: GuardServer, action: str) -> list[dict[str, Any]]:
    with guard.hub.sessions() as s:
        rows = s.scalars(select(AuditEvent.details).where(AuditEvent.action == action)).all()
    return [json.loads(r) for r in rows]


def kernel_msg(channel: str, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    msg = execute_request("", username="alice")
    msg["header"]["msg_type"] = msg_type
    msg["header"]["msg_id"] = uuid.uuid4().hex
    return {**msg, "channel": channel, "content": content}


def run(ws: websocket.WebSocket, code: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Execute ``code``; every message answering it until idle + reply, and every frame size."""
    msg = execute_request(code, username="alice")
    send(ws, msg, True)
    got: list[dict[str, Any]] = []
    sizes: list[int] = []
    reply = idle = False
    while not (reply and idle):
        raw = ws.recv()
        sizes.append(len(raw))
        from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

        channel, parts = deserialize_msg_from_ws_v1(raw)
        m = {
            "channel": channel,
            "header": json.loads(parts[0]),
            "parent_header": json.loads(parts[1]),
            "content": json.loads(parts[3]),
        }
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        got.append(m)
        kind = m["header"]["msg_type"]
        reply = reply or kind == "execute_reply"
        idle = idle or (kind == "status" and m["content"].get("execution_state") == "idle")
    return got, sizes


def shown_text(messages: list[dict[str, Any]]) -> str:
    return json.dumps([m["content"] for m in messages])


@pytest.fixture
def capped(upstream: Upstream, tmp_path: Path) -> Iterator[GuardServer]:
    display = DisplaySettings(max_kernel_message=64 * KiB, max_notebook_read=256 * KiB)
    yield from run_guard(upstream.sock, tmp_path, GuardConfig(), display=display)


def test_a_16_mb_kernel_message_reaches_the_browser_as_a_placeholder(
    capped: GuardServer,
) -> None:
    with xsrf_client(capped) as c:
        kid = start_kernel(c)
        ws = connect(capped, kid, protocols=[V1])
        try:
            code = (
                "from IPython.display import display\n"
                "display({'text/plain': 'Q' * (16 * 2**20)}, raw=True)\n"
                "print('small and shown')"
            )
            messages, sizes = run(ws, code)
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    assert max(sizes) < 64 * KiB
    text = shown_text(messages)
    assert "QQQQ" not in text and "was not shown" in text and "small and shown" in text
    replies = [m for m in messages if m["header"]["msg_type"] == "execute_reply"]
    assert replies[0]["content"]["status"] == "ok"


def write_bulk_notebook(root: Path, name: str, mib: int) -> str:
    """What a kernel can do: a notebook whose outputs hold ``mib`` MiB of a data file."""
    blob = "D" * (MiB - 100)
    cells = [
        {
            "cell_type": "code",
            "execution_count": i,
            "id": f"c{i}",
            "metadata": {},
            "source": f"print(chunk_{i})",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": blob}],
        }
        for i in range(mib)
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / name).write_text(json.dumps(nb))
    return name


def test_a_notebook_of_20_mb_is_read_back_trimmed(capped: GuardServer, upstream: Upstream) -> None:
    name = write_bulk_notebook(upstream.root, f"bulk-{uuid.uuid4().hex[:6]}.ipynb", 20)
    with capped.client() as c:
        r = c.get(BASE + f"api/contents/{name}", params={"content": "1"})
        assert r.status_code == 200, r.text
        assert len(r.content) <= 256 * KiB
        cells = r.json()["content"]["cells"]
        assert [cell["source"] for cell in cells] == [f"print(chunk_{i})" for i in range(20)]
        assert "DDDD" * 100 not in r.text and "not shown" in r.text
        # the same bytes asked for as a text file: too large to display, refused
        r = c.get(
            BASE + f"api/contents/{name}", params={"content": "1", "type": "file", "format": "text"}
        )
        assert r.status_code == 403 and "DDDD" not in r.text
    (upstream.root / name).unlink()


def test_budget_refuses_past_it_survives_a_restart_and_is_raised(
    upstream: Upstream, tmp_path: Path
) -> None:
    display = DisplaySettings(daily_budget=300 * KiB, max_kernel_message=64 * KiB)
    listing = BASE + "api/contents/"
    gen = run_guard(upstream.sock, tmp_path, GuardConfig(), display=display)
    guard = next(gen)
    try:
        with xsrf_client(guard) as c:
            kid = start_kernel(c)
            ws = connect(guard, kid, protocols=[V1])
            try:
                shown = []
                for i in range(10):  # 10 x 50 KB printed: the budget is 300 KiB
                    messages, _ = run(ws, f"print('{i}' * 50_000)")
                    shown.append(shown_text(messages))
            finally:
                ws.close()
            assert str(1) * 50_000 in shown[1]
            late = shown[-1]
            assert "9" * 1000 not in late and "daily display budget reached" in late
            assert "raise-budget alice" in late
            r = c.get(listing)
            assert r.status_code == 429 and "daily display budget reached" in r.json()["message"]
            # JupyterLab's session answers still pass (within a small grace): a live kernel
            # is not reported dead
            assert c.get(BASE + f"api/kernels/{kid}").status_code == 200
            c.delete(BASE + f"api/kernels/{kid}")
        alert = wait_for(lambda: details(guard, "display.budget_exceeded"), "the alert")
        assert alert[0]["user"] == "alice" and alert[0]["budget"] == 300 * KiB
    finally:
        next(gen, None)  # stops the guard, which writes its counts
    counted = sum(d["bytes"] for d in details(guard, "display.count") if d["user"] == "alice")
    assert counted >= 300 * KiB

    # a new guard on the same store: alice is still over budget
    gen = run_guard(upstream.sock, tmp_path, GuardConfig(), display=display)
    guard = next(gen)
    try:
        with guard.client() as c:
            assert c.get(listing).status_code == 429
            raise_budget(guard.hub, user="alice", nbytes=10 * MiB, by="admin")
            r = c.get(listing)
            assert r.status_code == 200, r.text
    finally:
        next(gen, None)
    assert len(details(guard, "display.budget_exceeded")) == 1


def ask_for_input(
    capped: GuardServer, kid: str, typed: str, audit_fails: bool = False
) -> websocket.WebSocket:
    """Run ``exec(input(''))`` and answer its prompt with ``typed``; the open socket."""
    ws = connect(capped, kid, protocols=[V1])
    msg = execute_request("exec(input(''))", username="alice")
    msg["content"]["allow_stdin"] = True
    send(ws, msg, True)
    while True:
        m = recv(ws, True)
        if m["header"]["msg_type"] == "input_request":
            break
    reply = kernel_msg("stdin", "input_reply", {"value": typed, "status": "ok"})
    reply["parent_header"] = m["header"]
    capped.sink.fail = audit_fails
    send(ws, reply, True)
    return ws


def test_input_reply_is_audited_before_it_runs(capped: GuardServer, upstream: Upstream) -> None:
    marker = upstream.root / f"input-{uuid.uuid4().hex[:6]}.txt"
    typed = f"open({str(marker)!r}, 'w').write('ran')"
    with xsrf_client(capped) as c:
        # the audit fails: the typed code never reaches the kernel
        kid = start_kernel(c)
        try:
            ws = ask_for_input(capped, kid, typed, audit_fails=True)
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                for _ in range(50):
                    ws.recv()
        finally:
            capped.sink.fail = False
            c.delete(BASE + f"api/kernels/{kid}")
        assert not marker.exists()
        # the audit works: recorded, then run
        kid = start_kernel(c)
        ws = ask_for_input(capped, kid, typed)
        try:
            while recv(ws, True)["header"]["msg_type"] != "execute_reply":
                pass
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    assert marker.read_text() == "ran"
    inputs = [d for d in details(capped, "kernel.input") if d["value"] == typed]
    assert len(inputs) == 1 and inputs[0]["kernel_id"] == kid


def test_comms_are_audited_and_the_debugger_is_refused(capped: GuardServer) -> None:
    with xsrf_client(capped) as c:
        kid = start_kernel(c)
        ws = connect(capped, kid, protocols=[V1])
        try:
            run(ws, "1")  # kernel ready
            comm = kernel_msg(
                "shell", "comm_open", {"comm_id": "c1", "target_name": "t", "data": {"k": "hdh"}}
            )
            send(ws, comm, True)
            debug = kernel_msg(
                "control", "debug_request", {"command": "evaluate", "arguments": {"x": 1}}
            )
            send(ws, debug, True)
            info = kernel_msg("control", "kernel_info_request", {})
            send(ws, info, True)
            seen = []
            while True:
                m = recv(ws, True)
                seen.append(m["parent_header"].get("msg_id"))
                if m["parent_header"].get("msg_id") == info["header"]["msg_id"]:
                    break
            # control messages are answered in order: a forwarded debug_request would be first
            assert debug["header"]["msg_id"] not in seen
        finally:
            ws.close()
            c.delete(BASE + f"api/kernels/{kid}")
    comms = [d for d in details(capped, "kernel.comm") if d["msg_id"] == comm["header"]["msg_id"]]
    assert comms and comms[0]["content"]["data"] == {"k": "hdh"}
    refused = details(capped, "kernel.refused")
    assert [d["msg_type"] for d in refused] == ["debug_request"]
    infos = [d for d in details(capped, "kernel.request") if d["msg_type"] == "kernel_info_request"]
    assert infos


def test_terminal_output_counts_and_stops_at_the_budget(upstream: Upstream, tmp_path: Path) -> None:
    display = DisplaySettings(daily_budget=200 * KiB)
    gen = run_guard(upstream.sock, tmp_path, GuardConfig(), display=display)
    guard = next(gen)
    try:
        with xsrf_client(guard) as c:
            r = c.post(BASE + "api/terminals")
            assert r.status_code == 200, r.text
            name = r.json()["name"]
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{guard.port}{BASE}terminals/websocket/{name}",
                header=["X-Test-User: alice"],
                origin=f"http://127.0.0.1:{guard.port}",
                timeout=30,
            )
            try:
                # 600 KB of output, then a marker that must never arrive
                cmd = "head -c 600000 /dev/zero | tr '\\\\0' z; echo; echo END-$((40+2))\r"
                ws.send(json.dumps(["stdin", cmd]))
                seen = ""
                while "display budget reached" not in seen:
                    m = json.loads(ws.recv())
                    if m[0] == "stdout":
                        seen += m[1]
                ws.send(json.dumps(["stdin", "echo AFTER-$((40+2))\r"]))
                # whatever the shell prints now is withheld: nothing more arrives
                with pytest.raises(websocket.WebSocketTimeoutException):
                    ws.settimeout(2)
                    while True:
                        m = json.loads(ws.recv())
                        assert m[0] != "stdout", m
            finally:
                ws.close()
                c.delete(BASE + f"api/terminals/{name}")
    finally:
        next(gen, None)
    assert "END-42" not in seen and seen.count("z") < 200 * KiB
    counted = sum(d["bytes"] for d in details(guard, "display.count"))
    assert 200 * KiB <= counted < 300 * KiB
