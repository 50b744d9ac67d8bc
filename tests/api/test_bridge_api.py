"""``/api/bridge/...``: the identity a bridge vouches for is accepted only with the bridge token,
and the permit is re-checked by the control plane on every request (both store backends)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from tests.governance.fakes import fake_version

TOKEN = "b" * 64
ADMIN = pj.Actor("ctl", "data_controller")


@pytest.fixture
def bridge(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, str]]]:
    """alice may open project ``cohort`` (snds v1); bob is a member without a permit."""
    fake_version(hub)
    tokens = {}
    with hub.transaction() as s:
        for name, role in (("alice", "researcher"), ("bob", "researcher"), ("adm", "admin")):
            tokens[name] = issue_token(s, create_user(s, name, role, actor="test"), actor="test")
        create_user(s, "ctl", "data_controller", actor="test")
        pj.create_project(s, "cohort", title="C", purpose="P", actor=ADMIN)
        pj.create_project(s, "other", title="O", purpose="P", actor=ADMIN)
        pj.add_member(s, "cohort", "alice", role="lead", actor=ADMIN)
        pj.add_member(s, "cohort", "bob", role="member", actor=ADMIN)
        pj.grant_permit(
            s,
            "cohort",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=3),
            actor=ADMIN,
        )
    with TestClient(create_app(hub.data_dir, bridge_token=TOKEN)) as client:
        yield client, hub, tokens


def _as(user: str, project: str, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    h = {"X-HDH-User": user, "X-HDH-Project": project, **extra}
    if token is not None:
        h["X-HDH-Bridge"] = token
    return h


def test_whoami_with_the_bridge_token(bridge: Any) -> None:
    client, _hub, _ = bridge
    r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["user"], body["project"]) == ("alice", "cohort")
    assert [(m["dataset"], m["version"]) for m in body["mounts"]] == [("snds", "v1")]


def test_missing_or_bad_bridge_token_is_refused(bridge: Any) -> None:
    client, _hub, tokens = bridge
    r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort", token=None))
    assert r.status_code == 401
    for bad in ("guessed", TOKEN[:-1], TOKEN + "0", TOKEN.upper(), ""):
        r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort", token=bad))
        assert r.status_code in (401, 403), (bad, r.text)
    # a user's (even an admin's) bearer token is no bridge token
    bearer = {"Authorization": f"Bearer {tokens['adm']}"}
    r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort", token=None, **bearer))
    assert r.status_code == 401
    r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort", token=tokens["adm"]))
    assert r.status_code == 403 and r.json()["detail"] == "invalid bridge token"


def test_valid_token_but_no_permit_is_403_with_the_reason(bridge: Any) -> None:
    client, hub, _ = bridge
    r = client.get("/api/bridge/whoami", headers=_as("bob", "cohort"))
    assert r.status_code == 403 and r.json()["reason"] == "not_covered", r.text
    r = client.get("/api/bridge/whoami", headers=_as("alice", "other"))
    assert r.status_code == 403 and r.json()["reason"] == "not_a_member", r.text
    r = client.get("/api/bridge/whoami", headers=_as("mallory", "cohort"))
    assert r.status_code == 403, r.text
    r = client.get("/api/bridge/whoami", headers=_as("alice", "nope"))
    assert r.status_code == 404, r.text
    r = client.get("/api/bridge/whoami", headers={"X-HDH-Bridge": TOKEN})
    assert r.status_code == 400
    # revocation takes effect on the next request: nothing is cached
    with hub.transaction() as s:
        permit = pj.active_permit(s, "alice", "cohort")
        pj.revoke_permit(s, permit.id, reason="end of study", actor=ADMIN)
    r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort"))
    assert r.status_code == 403 and r.json()["reason"] == "revoked", r.text
    assert "end of study" in r.json()["detail"]


def test_no_bridge_token_configured_means_no_bridge(hub: Any) -> None:
    with TestClient(create_app(hub.data_dir)) as client:
        r = client.get("/api/bridge/whoami", headers=_as("alice", "cohort"))
        assert r.status_code == 503


def test_choosing_mounts_shows_in_the_sandbox_data_panel(bridge: Any) -> None:
    client, hub, tokens = bridge
    fake_version(hub, "snds", 2)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "cohort",
            members=["alice"],
            datasets=["snds/v1", "snds/v2"],
            expires_at=datetime.now(UTC) + timedelta(days=3),
            actor=ADMIN,
        )
    plan = client.get("/api/bridge/whoami", headers=_as("alice", "cohort")).json()
    assert [(m["version"], m["mounted"]) for m in plan["permitted"]] == [
        ("v1", False),
        ("v2", True),
    ]
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    r = client.put("/api/me/projects/cohort/mounts", json={"versions": ["snds/v1"]}, headers=alice)
    assert r.status_code == 200, r.text
    assert [m["version"] for m in r.json()["mounts"]] == ["v1"]
    plan = client.get("/api/bridge/whoami", headers=_as("alice", "cohort")).json()
    assert [(m["version"], m["mounted"]) for m in plan["permitted"]] == [
        ("v1", True),
        ("v2", False),
    ]
    # a version outside the permit, or someone else's sandbox: refused, nothing changed
    r = client.put("/api/me/projects/cohort/mounts", json={"versions": ["snds/v9"]}, headers=alice)
    assert r.status_code == 422 and "snds/v9 is not in permit" in r.json()["detail"]
    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    r = client.put("/api/me/projects/cohort/mounts", json={"versions": ["snds/v2"]}, headers=bob)
    assert r.status_code == 403
    me = client.get("/api/bridge/whoami", headers=_as("alice", "cohort")).json()
    assert [m["version"] for m in me["mounts"]] == ["v1"]
