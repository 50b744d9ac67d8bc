"""The API bridge passes the code audit view's one read, ``GET /api/bridge/audit/code`` with
its filters, and nothing else of the audit log (the admin routes stay out of reach)."""

from __future__ import annotations

import pytest

from jupyterlab_hdh.hub.bridge import BridgeRefused, check_request


@pytest.mark.parametrize(
    "target",
    [
        "/api/bridge/audit/code",
        "/api/bridge/audit/code?kind=cell&user=alice&limit=50&cursor=12",
        "/api/bridge/audit/code?since=2026-12-04T14%3A30&notebook=a%2Fb.ipynb",
    ],
)
def test_the_audit_view_read_passes(target: str) -> None:
    path, query = check_request("GET", target)
    assert path == "/api/bridge/audit/code" and path + (f"?{query}" if query else "") == target


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/api/bridge/audit/code"),
        ("PUT", "/api/bridge/audit/code"),
        ("DELETE", "/api/bridge/audit/code"),
        ("GET", "/api/audit/code"),
        ("GET", "/api/audit/events"),
        ("GET", "/api/audit/verify"),
        ("GET", "/api/projects/demo/audit/code"),
        ("GET", "/api/projects/other/audit/code"),
        ("GET", "/api/bridge/audit"),
        ("GET", "/api/bridge/audit/events"),
        ("GET", "/api/bridge/audit/code/other"),
        ("GET", "/api/bridge/audit/code/../../audit/events"),
        ("GET", "/api/bridge/audit/code/%2e%2e/%2e%2e/audit/events"),
        ("GET", "/api/bridge/audit//code"),
        ("GET", "/api/bridge/audit/code?project=other#x"),
        ("GET", "/api/bridge/audit/code?user=a b"),
        ("GET", "http://evil/api/bridge/audit/code"),
    ],
)
def test_nothing_else_of_the_audit_log(method: str, target: str) -> None:
    with pytest.raises(BridgeRefused):
        check_request(method, target)
