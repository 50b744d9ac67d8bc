"""The code audit view's one sandbox route, ``GET /hdh/audit/code``: reads only, exactly that
path (the control plane decides who sees what)."""

from __future__ import annotations

import pytest

from jupyterlab_hdh.guard.policy import decide
from tests.guard.test_policy import P


def test_the_audit_view_reads_its_route() -> None:
    d = decide("GET", P + "hdh/audit/code", "kind=cell&user=alice&limit=50&cursor=12", {})
    assert d.allowed and d.rest == "hdh/audit/code" and d.kind == "http"


@pytest.mark.parametrize(
    ("method", "rest"),
    [
        ("POST", "hdh/audit/code"),
        ("PUT", "hdh/audit/code"),
        ("DELETE", "hdh/audit/code"),
        ("PATCH", "hdh/audit/code"),
        ("GET", "hdh/audit"),
        ("GET", "hdh/audit/events"),
        ("GET", "hdh/audit/verify"),
        ("GET", "hdh/audit/code/other-project"),
        ("GET", "hdh/audit/../audit/code"),
        ("GET", "hdh/audit/code%2F..%2Fevents"),
        ("GET", "hdh/audit//code"),
        ("GET", "hdh/audit/CODE"),
    ],
)
def test_nothing_else_under_audit(method: str, rest: str) -> None:
    assert not decide(method, P + rest, "", {}).allowed
