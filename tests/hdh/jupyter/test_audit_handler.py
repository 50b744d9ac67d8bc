"""``/hdh/audit/code``: the code audit view's route on a real Jupyter server (the sandbox's
extension, token authentication) in front of a fake API bridge: the filters pass through to
``/api/bridge/audit/code`` (and nothing else), the control plane's refusal comes back as is."""

from __future__ import annotations

from typing import Any

from tests.hdh.jupyter.test_catalogue_handlers import ANSWERS, Server, server  # noqa: F401

PAGE: dict[str, Any] = {
    "project": "demo",
    "events": [
        {
            "seq": 7,
            "ts": "2026-12-04T10:00:00.000000+00:00",
            "user": "alice",
            "project": "demo",
            "kind": "cell",
            "notebook": None,
            "kernel": "k1",
            "terminal": None,
            "code": "print(1)",
            "sha256": None,
            "verified": True,
        }
    ],
    "next_cursor": None,
    "chain": {"ok": True, "verified_to": 7, "broken_seq": None, "reason": ""},
    "limit": 100,
}


def test_the_filters_pass_through_to_the_bridge(server: Server) -> None:  # noqa: F811
    ANSWERS["/api/bridge/audit/code"] = PAGE
    server.calls.clear()
    r = server.get(
        "hdh/audit/code", kind="cell", user="alice", cursor="12", limit="50", other="x", since=""
    )
    assert r.status_code == 200, r.text
    assert r.json()["events"][0]["code"] == "print(1)"
    assert server.calls == [
        (
            "GET",
            "/api/bridge/audit/code",
            {"kind": "cell", "user": "alice", "cursor": "12", "limit": "50"},
        )
    ]


def test_a_refusal_comes_back_with_its_reason(server: Server) -> None:  # noqa: F811
    ANSWERS.pop("/api/bridge/audit/code", None)  # the fake bridge answers 404 with a detail
    r = server.get("hdh/audit/code")
    assert r.status_code == 404 and r.json()["detail"] == "no such thing"


def test_without_the_server_token_nothing(server: Server) -> None:  # noqa: F811
    r = server.get("hdh/audit/code", token=None)
    assert r.status_code in (401, 403)
    assert server.get("hdh/audit/code", token="wrong").status_code in (401, 403)
