"""Display accounting without a browser: settings, the ledger on a real store, notebook
trimming and the messages that replace a withheld kernel output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.guard.audit import V1_SUBPROTOCOL, parse_kernel_message
from jupyterlab_hdh.guard.display import (
    AuditDisplayStore,
    DisplayConfigError,
    DisplayLedger,
    DisplaySettings,
    day_report,
    raise_budget,
    today,
    trim_notebook_model,
)
from jupyterlab_hdh.guard.policy import decide
from jupyterlab_hdh.guard.withhold import KernelReplies, terminal_notice, withhold_kernel_message
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.units import parse_size

MiB = 1024 * 1024


# ------------------------------------------------------------------ settings


def test_sizes_and_settings_file(tmp_path: Path) -> None:
    assert parse_size("50M") == 50 * MiB and parse_size("2MiB") == 2 * MiB
    assert parse_size("1.5G") == int(1.5 * 1024 * MiB) and parse_size(4096) == 4096
    for bad in ("lots", "-3M", "", "nanM", True):
        with pytest.raises(ValueError):
            parse_size(bad)  # type: ignore[arg-type]
    assert DisplaySettings.load(tmp_path) == DisplaySettings()
    (tmp_path / "guard.toml").write_text(
        '[display]\ndaily_budget = "10M"\nmax_kernel_message = 65536\nflush_seconds = 5\n'
    )
    s = DisplaySettings.load(tmp_path)
    assert (s.daily_budget, s.max_kernel_message, s.flush_seconds) == (10 * MiB, 65536, 5.0)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[display]\ndaily_budgt = 3\n", "daily_budgt"),
        ('[display]\ndaily_budget = "much"\n', "daily_budget"),
        ("[display]\ndaily_budget = 0\n", "daily_budget"),
        ('[display]\nflush_seconds = "soon"\n', "flush_seconds"),
        ("[displays]\n", "displays"),
        ("[display\n", "cannot be read"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "guard.toml").write_text(text)
    with pytest.raises(DisplayConfigError) as info:
        DisplaySettings.load(tmp_path)
    assert named in str(info.value) and "guard.toml" in str(info.value)


def test_only_the_packaged_jupyterlab_is_not_counted() -> None:
    def counted(rest: str) -> bool:
        d = decide("GET", f"/user/alice/p/{rest}", "", {})
        assert d.allowed, (rest, d.reason)
        return d.counted

    for rest in ("lab", "lab/tree/a.ipynb", "static/lab/main.js", "lab/extensions/x/static/y.js"):
        assert not counted(rest), rest
    for rest in ("api/contents/a.ipynb", "api/kernels", "hdh/whoami", "lab/api/settings"):
        assert counted(rest), rest
    assert counted("lab/api/workspaces/default")


# ------------------------------------------------------------------ ledger


@pytest.fixture
def hub(tmp_path: Path) -> Any:
    h, _ = init_installation(DataDir.resolve(tmp_path / "hdh"))
    yield h
    h.close()


def actions(hub: Any, action: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from jupyterlab_hdh.store.models import AuditEvent

    with hub.sessions() as s:
        rows = s.scalars(select(AuditEvent.details).where(AuditEvent.action == action)).all()
    return [json.loads(r) for r in rows]


def test_counts_survive_a_restart_and_the_budget_alerts_once(hub: Any) -> None:
    settings = DisplaySettings(daily_budget=1000, flush_bytes=10**9)
    ledger = DisplayLedger(settings, AuditDisplayStore(hub))
    ledger.add("alice", "p1", 300)
    ledger.add("alice", "p2", 200)
    ledger.add("bob", "p1", 50)
    assert ledger.shown_today("alice") == 500 and not ledger.over_budget("alice")
    ledger.close()  # what a stopping guard does
    again = DisplayLedger(settings, AuditDisplayStore(hub))
    assert again.shown_today("alice") == 500 and again.shown_today("bob") == 50
    again.add("alice", "p1", 600)
    assert again.over_budget("alice") and not again.over_budget("bob")
    again.add("alice", "p1", 10)  # still over: no second alert
    assert "raise-budget alice" in again.refusal("alice")
    alerts = actions(hub, "display.budget_exceeded")
    assert [(a["user"], a["shown"], a["budget"]) for a in alerts] == [("alice", 1100, 1000)]
    again.close()
    third = DisplayLedger(settings, AuditDisplayStore(hub))
    assert third.shown_today("alice") == 1110 and third.over_budget("alice")
    third.add("alice", "p1", 1)  # the alert at this budget was already raised before the restart
    assert len(actions(hub, "display.budget_exceeded")) == 1
    # an administrator raises it: the ledger sees it on its next check, and a new overrun alerts
    raise_budget(hub, user="alice", nbytes=500, by="cli:root")
    third._read_raise("alice", third.day)
    assert not third.over_budget("alice") and third.budget("alice") == 1500
    third.add("alice", "p1", 400)
    assert third.over_budget("alice") and len(actions(hub, "display.budget_exceeded")) == 2
    third.close()
    report = {r["user"]: r for r in day_report(hub)}
    assert report["alice"]["shown"] == 1511 and report["alice"]["raised"] == 500
    assert report["alice"]["projects"] == {"p1": 1311, "p2": 200}
    assert report["bob"]["shown"] == 50 and not report["bob"]["alerted"]
    with hub.sessions() as s:
        assert verify(s).ok


def test_session_answers_have_a_small_grace_past_the_budget() -> None:
    from jupyterlab_hdh.guard.display import SESSION_ROUTES
    from jupyterlab_hdh.guard.policy import ROUTES

    assert {r.name for r in ROUTES} >= SESSION_ROUTES
    assert not SESSION_ROUTES & {"contents", "lab-settings", "hdh", "hdh-egress-request"}
    ledger = DisplayLedger(DisplaySettings(daily_budget=1000, session_grace=500), None)
    ledger.add("alice", "p", 1200)
    assert ledger.over_budget("alice") and not ledger.over_grace("alice")
    ledger.add("alice", "p", 300)
    assert ledger.over_grace("alice")


def test_a_new_day_starts_from_zero(hub: Any) -> None:
    now = [1_800_000_000.0]
    ledger = DisplayLedger(
        DisplaySettings(daily_budget=100), AuditDisplayStore(hub), lambda: now[0]
    )
    ledger.add("alice", "p", 150)
    assert ledger.over_budget("alice")
    now[0] += 86_400
    assert not ledger.over_budget("alice") and ledger.shown_today("alice") == 0
    ledger.close()
    days = {d["day"] for d in actions(hub, "display.count")}
    assert days == {today(1_800_000_000.0)}


def test_repeats_are_free() -> None:
    ledger = DisplayLedger(DisplaySettings(), None)
    assert not ledger.is_repeat("alice", "p", "/api/contents", "h1")
    assert ledger.is_repeat("alice", "p", "/api/contents", "h1")
    assert not ledger.is_repeat("alice", "p", "/api/contents", "h2")
    assert not ledger.is_repeat("bob", "p", "/api/contents", "h2")


def test_a_failed_write_keeps_the_counts(hub: Any) -> None:
    class Broken(AuditDisplayStore):
        fail = True

        def write_counts(self, day: str, counts: dict[tuple[str, str], int]) -> None:
            if self.fail:
                raise RuntimeError("store down")
            super().write_counts(day, counts)

    store = Broken(hub)
    ledger = DisplayLedger(DisplaySettings(), store)
    ledger.add("alice", "p", 42)
    ledger.close()  # logged, kept
    assert actions(hub, "display.count") == []
    store.fail = False
    ledger.close()
    assert [d["bytes"] for d in actions(hub, "display.count")] == [42]


# ------------------------------------------------------------------ notebooks


def notebook_model(outputs_per_cell: list[int], source: str = "x = 1") -> bytes:
    cells = []
    for n in outputs_per_cell:
        out = {"output_type": "stream", "name": "stdout", "text": "d" * n}
        cells.append(
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": f"c{len(cells)}",
                "metadata": {},
                "source": source,
                "outputs": [out],
            }
        )
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps({"type": "notebook", "name": "a.ipynb", "content": nb}).encode()


def test_notebook_outputs_beyond_the_cap_become_placeholders() -> None:
    small = notebook_model([10, 10])
    assert trim_notebook_model(small, 10_000) is small
    big = notebook_model([1000, 20_000, 1000])
    out = trim_notebook_model(big, 8000)
    assert out is not None and len(out) <= 8000
    cells = json.loads(out)["content"]["cells"]
    assert cells[0]["outputs"][0]["text"] == "d" * 1000
    assert "not shown" in cells[1]["outputs"][0]["text"]
    assert all("d" * 500 not in json.dumps(c["outputs"]) for c in cells[1:2])
    assert [c["source"] for c in cells] == ["x = 1"] * 3  # code is never cut
    # sources alone over the cap: refused rather than cut
    assert trim_notebook_model(notebook_model([1], source="y" * 9000), 8000) is None
    assert trim_notebook_model(b'{"type": "file", "content": "' + b"z" * 9000 + b'"}', 8000) is None


# ------------------------------------------------------------------ kernel messages


def v1(channel: str, header: dict[str, Any], parent: dict[str, Any], content: Any) -> bytes:
    parts = [json.dumps(x).encode() for x in (header, parent, {}, content)]
    return bytes(serialize_msg_to_ws_v1(parts, channel))


def down(raw: bytes) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    channel, parts = deserialize_msg_from_ws_v1(raw)
    return channel, json.loads(parts[0]), json.loads(parts[1]), json.loads(parts[3])


def test_withheld_messages_carry_nothing_the_kernel_chose() -> None:
    replies = KernelReplies()
    request = {"msg_id": "req1", "msg_type": "execute_request", "session": "browser"}
    replies.remember(parse_kernel_message(v1("shell", request, {}, {"code": "1"}), V1_SUBPROTOCOL))
    secret = "SECRET-" + "x" * 100
    kernel_header = {"msg_id": secret, "msg_type": "display_data", "session": secret}
    parent = {**request, "smuggled": secret}
    data = {"data": {"text/plain": secret}, "metadata": {}}
    out = withhold_kernel_message(
        v1("iopub", kernel_header, parent, data), V1_SUBPROTOCOL, replies, "withheld"
    )
    assert out is not None and secret.encode() not in out
    channel, header, parent_out, content = down(out)  # type: ignore[arg-type]
    assert (channel, header["msg_type"], parent_out) == ("iopub", "stream", request)
    assert content == {"name": "stderr", "text": "withheld\n"}
    # one placeholder per request: later outputs of the same cell are dropped
    again = v1("iopub", {**kernel_header, "msg_type": "stream"}, request, {"text": secret})
    assert withhold_kernel_message(again, V1_SUBPROTOCOL, replies, "w") is None
    # replies keep their status only; each type once per request
    reply = {"status": "ok", "execution_count": 3, "payload": [{"data": secret}], "x": secret}
    raw = v1("shell", {"msg_type": "execute_reply", "msg_id": secret}, request, reply)
    out = withhold_kernel_message(raw, V1_SUBPROTOCOL, replies, "w")
    assert out is not None and secret.encode() not in out
    assert down(out)[3] == {  # type: ignore[arg-type]
        "status": "ok",
        "execution_count": 3,
        "payload": [],
        "user_expressions": {},
    }
    assert withhold_kernel_message(raw, V1_SUBPROTOCOL, replies, "w") is None
    for state in ("busy", "idle"):
        st = v1("iopub", {"msg_type": "status"}, request, {"execution_state": state, "s": secret})
        got = withhold_kernel_message(st, V1_SUBPROTOCOL, replies, "w")
        assert got is not None and down(got)[3] == {"execution_state": state}  # type: ignore[arg-type]
        assert withhold_kernel_message(st, V1_SUBPROTOCOL, replies, "w") is None
    # a message answering no request of this connection, or of an unknown type: dropped
    orphan = v1("iopub", {"msg_type": "status"}, {"msg_id": "nope"}, {"execution_state": "idle"})
    assert withhold_kernel_message(orphan, V1_SUBPROTOCOL, replies, "w") is None
    comm = v1("iopub", {"msg_type": "comm_msg"}, request, {"data": secret})
    assert withhold_kernel_message(comm, V1_SUBPROTOCOL, replies, "w") is None


def test_withheld_legacy_json_message() -> None:
    replies = KernelReplies()
    request = {"msg_id": "r", "msg_type": "execute_request"}
    legacy = {"channel": "shell", "header": request, "content": {"code": "1"}}
    replies.remember(parse_kernel_message(json.dumps(legacy), None))
    msg = {
        "channel": "iopub",
        "header": {"msg_type": "execute_result", "msg_id": "k"},
        "parent_header": request,
        "content": {"data": {"text/plain": "SECRET"}, "execution_count": 1},
    }
    out = withhold_kernel_message(json.dumps(msg), None, replies, "withheld")
    assert isinstance(out, str) and "SECRET" not in out
    assert json.loads(out)["content"]["text"] == "withheld\n"
    assert json.loads(terminal_notice("n")) == ["stdout", "\r\nn\r\n"]
