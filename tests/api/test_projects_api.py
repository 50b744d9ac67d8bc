"""Projects and permits over the API: roles by token, domain errors as 403/404/409/422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from jupyterlab_hdh.ingestion import ingest
from jupyterlab_hdh.store.models import AuditEvent
from tests.governance.fakes import fake_version

USERS = (
    ("adm", "admin"),
    ("ctl", "data_controller"),
    ("alice", "researcher"),
    ("bob", "researcher"),
    ("eve", "researcher"),
    ("rev", "reviewer"),
)


def _client(hub, ingest_from: Path | None):
    if ingest_from is not None:
        ingest(hub, ingest_from, "snds", actor="test")
    else:
        fake_version(hub)
    tokens = {}
    with hub.transaction() as s:
        for name, role in USERS:
            tokens[name] = issue_token(s, create_user(s, name, role, actor="test"), actor="test")
    with TestClient(create_app(hub.data_dir)) as client:

        def call(method: str, path: str, who: str | None, **kw):
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
            return client.request(method, path, headers=headers, **kw)

        yield call, hub


@pytest.fixture
def api(hub):
    """A request helper and the hub; snds v1 is a catalogue row without files."""
    yield from _client(hub, None)


@pytest.fixture
def api_ingested(hub, raw_extract: Path):
    """The same, with snds v1 really ingested from the raw extract."""
    yield from _client(hub, raw_extract)


def _setup(call) -> None:
    r = call(
        "POST",
        "/api/projects",
        "ctl",
        json={"slug": "cohort", "title": "Cohorte", "purpose": "Étude"},
    )
    assert r.status_code == 201, r.text
    lead = {"user": "alice", "role": "lead"}
    assert call("POST", "/api/projects/cohort/members", "ctl", json=lead).status_code == 201
    bob = {"user": "bob"}  # added by the lead
    assert call("POST", "/api/projects/cohort/members", "alice", json=bob).status_code == 201


def _grant(call, who: str = "ctl", **body):
    payload = {"members": ["alice"], "datasets": ["snds"], "days": 30, **body}
    return call("POST", "/api/projects/cohort/permits", who, json=payload)


def test_the_access_flow_over_the_api(api_ingested) -> None:
    call, hub = api_ingested
    _setup(call)
    r = call("GET", "/api/me/projects/cohort/access", "alice")
    assert r.status_code == 403 and r.json()["reason"] == "no_permit"
    r = _grant(call, members=["alice", "bob"], datasets=["snds/v1"])
    assert r.status_code == 201, r.text
    permit = r.json()
    assert permit["status"] == "active" and permit["members"] == ["alice", "bob"]
    r = call("GET", "/api/me/projects/cohort/access", "alice")
    assert r.status_code == 200, r.text
    (mount,) = r.json()["mounts"]
    assert mount == {
        "dataset": "snds",
        "version": "v1",
        "path": str(hub.data_dir.datasets / "snds" / "v1"),
    }
    # the spawner (a service with an admin token) asks about someone else
    assert call("GET", "/api/projects/cohort/access?user=bob", "adm").status_code == 200
    r = call("GET", "/api/projects/cohort/access?user=eve", "adm")
    assert r.status_code == 403 and r.json()["reason"] == "not_a_member"
    # a researcher may not ask about someone else
    assert call("GET", "/api/projects/cohort/access?user=bob", "alice").status_code == 403
    assert call("GET", "/api/projects/cohort/access", "alice").status_code == 200
    r = call("POST", f"/api/permits/{permit['id']}/revoke", "adm", json={"reason": "study over"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    r = call("GET", "/api/me/projects/cohort/access", "alice")
    assert r.status_code == 403 and r.json()["reason"] == "revoked"
    assert "by adm because: study over" in r.json()["detail"]
    r = call("GET", "/api/me/projects/nope/access", "alice")
    assert r.status_code == 404 and r.json()["reason"] == "unknown_project"
    with hub.sessions() as s:
        assert verify(s).ok
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    assert actions[-5:] == [
        "project.create",
        "project.member.add",
        "project.member.add",
        "permit.grant",
        "permit.revoke",
    ]


def test_researchers_cannot_grant_or_revoke_or_create(api) -> None:
    call, _ = api
    _setup(call)
    for who in ("alice", "rev"):
        r = _grant(call, who)
        assert r.status_code == 403 and "needs data_controller or admin" in r.json()["detail"]
    assert _grant(call, None).status_code == 401
    permit_id = _grant(call).json()["id"]
    r = call("POST", f"/api/permits/{permit_id}/revoke", "alice", json={"reason": "x"})
    assert r.status_code == 403
    r = call("POST", "/api/projects", "alice", json={"slug": "mine", "title": "t", "purpose": "p"})
    assert r.status_code == 403
    # bob is a member, not the lead: cannot change members
    r = call("POST", "/api/projects/cohort/members", "bob", json={"user": "eve"})
    assert r.status_code == 403 and "lead" in r.json()["detail"]
    assert call("GET", "/api/permits", "alice").status_code == 403
    listed = call("GET", "/api/permits?project=cohort", "ctl").json()
    assert [p["id"] for p in listed] == [permit_id]


def test_researchers_see_only_their_projects(api) -> None:
    call, _ = api
    _setup(call)
    r = call("POST", "/api/projects", "adm", json={"slug": "other", "title": "t", "purpose": "p"})
    assert r.status_code == 201
    assert [p["slug"] for p in call("GET", "/api/projects", "alice").json()] == ["cohort"]
    assert call("GET", "/api/projects", "eve").json() == []
    assert [p["slug"] for p in call("GET", "/api/projects", "ctl").json()] == ["cohort", "other"]
    assert call("GET", "/api/projects", None).status_code == 401
    assert call("GET", "/api/projects/cohort", "eve").status_code == 403
    detail = call("GET", "/api/projects/cohort", "alice").json()
    assert detail["members"] == [
        {"user": "alice", "role": "lead"},
        {"user": "bob", "role": "member"},
    ]
    assert call("GET", "/api/projects/nope", "ctl").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"members": ["eve"]}, 422, "'eve' is not a member"),
        ({"datasets": ["nope"]}, 422, "no dataset 'nope'"),
        ({"datasets": ["snds/v7"]}, 422, "no version v7"),
        ({"members": []}, 422, ""),
        ({"days": None}, 422, "exactly one"),
        ({"days": None, "expires_at": "2020-01-01T00:00:00Z"}, 422, "not in the future"),
        ({"days": None, "expires_at": "2030-01-01T00:00:00"}, 422, ""),
    ],
)
def test_bad_grants_are_refused(api, body: dict, status: int, message: str) -> None:
    call, hub = api
    _setup(call)
    r = _grant(call, **body)
    assert r.status_code == status and message in r.text and "Traceback" not in r.text
    with hub.sessions() as s:
        assert pj.permits(s) == []


@pytest.mark.parametrize("slug", ["..", "a/b", "a\x00b", "UPPER", "c\u043ehort", "x" * 40])
def test_bad_slugs_are_refused(api, slug: str) -> None:
    call, hub = api
    r = call("POST", "/api/projects", "ctl", json={"slug": slug, "title": "t", "purpose": "p"})
    assert r.status_code == 422, r.text
    with hub.sessions() as s:
        assert pj.projects_of(s) == []


def test_conflicts_and_unknowns(api) -> None:
    call, _ = api
    _setup(call)
    body = {"slug": "cohort", "title": "t", "purpose": "p"}
    assert call("POST", "/api/projects", "ctl", json=body).status_code == 409
    r = call("POST", "/api/projects/cohort/members", "ctl", json={"user": "bob"})
    assert r.status_code == 409
    r = call("POST", "/api/projects/cohort/members", "ctl", json={"user": "rev"})
    assert r.status_code == 422 and "only researchers" in r.json()["detail"]
    r = call("POST", "/api/projects/nope/members", "ctl", json={"user": "bob"})
    assert r.status_code == 404
    assert call("DELETE", "/api/projects/cohort/members/eve", "ctl").status_code == 404
    assert call("DELETE", "/api/projects/cohort/members/bob", "alice").status_code == 204
    r = call("POST", "/api/permits/99/revoke", "ctl", json={"reason": "x"})
    assert r.status_code == 404
    permit_id = _grant(call).json()["id"]
    revoke = f"/api/permits/{permit_id}/revoke"
    assert call("POST", revoke, "ctl", json={"reason": "a"}).status_code == 200
    assert call("POST", revoke, "ctl", json={"reason": "a"}).status_code == 409


def test_a_second_grant_supersedes_the_first(api) -> None:
    call, _ = api
    _setup(call)
    first = _grant(call, members=["alice", "bob"]).json()["id"]
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    second = _grant(call, days=None, expires_at=expires).json()["id"]
    permits = {p["id"]: p for p in call("GET", "/api/permits", "ctl").json()}
    assert permits[first]["status"] == "revoked"
    assert permits[first]["revoke_reason"] == f"superseded by permit #{second}"
    assert call("GET", "/api/me/projects/cohort/access", "alice").json()["permit"] == second
    r = call("GET", "/api/me/projects/cohort/access", "bob")
    assert r.status_code == 403 and r.json()["reason"] == "not_covered"


def test_project_routes_are_in_the_openapi_spec(api) -> None:
    call, _ = api
    paths = call("GET", "/api/openapi.json", None).json()["paths"]
    assert {
        "/api/projects",
        "/api/projects/{slug}/permits",
        "/api/permits/{permit_id}/revoke",
        "/api/me/projects/{slug}/access",
    } <= set(paths)


def test_a_permit_is_amended_over_the_api(api) -> None:
    call, _hub = api
    _setup(call)
    pid = _grant(call).json()["id"]
    r = call("POST", f"/api/permits/{pid}/amend", "ctl", json={"add_members": ["bob"], "days": 60})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == pid and r.json()["members"] == ["alice", "bob"]
    r = call("POST", f"/api/permits/{pid}/amend", "ctl", json={"remove_members": ["eve"]})
    assert r.status_code == 422 and "'eve' is not covered" in r.json()["detail"]
    r = call("POST", f"/api/permits/{pid}/amend", "ctl", json={"days": 1, "expires_at": None})
    assert r.status_code == 200
    both = {"days": 3, "expires_at": "2030-01-01T00:00:00Z"}
    r = call("POST", f"/api/permits/{pid}/amend", "ctl", json=both)
    assert r.status_code == 422 and "at most one" in r.text
    assert (
        call("POST", f"/api/permits/{pid}/revoke", "ctl", json={"reason": "x"}).status_code == 200
    )
    r = call("POST", f"/api/permits/{pid}/amend", "ctl", json={"days": 3})
    assert r.status_code == 409 and "renewed by a new one" in r.json()["detail"]
