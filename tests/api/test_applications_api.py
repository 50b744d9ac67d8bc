"""The access desk over the API (issue 14, item 1): a researcher applies, a committee member
gives an opinion, an administrator records the decision, and the applicant's sandbox may
open the project; who may see what, and bad input refused with a clear 4xx that changes
nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.application_models import ApplicationOut, ApplicationSummaryOut
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from jupyterlab_hdh.store.models import (
    Application,
    ApplicationOpinion,
    AuditEvent,
    Notification,
    User,
)
from tests.governance.fakes import fake_version

USERS = (
    ("adm", "admin"),
    ("ctl", "data_controller"),
    ("alice", "researcher"),  # the applicant
    ("bob", "researcher"),  # a member of her team
    ("eve", "researcher"),  # outside the team
    ("cora", "committee"),
    ("rev", "reviewer"),
)


@pytest.fixture
def api(hub):
    """A request helper and the hub; snds v1 is a catalogue row without files."""
    fake_version(hub)
    tokens = {}
    with hub.transaction() as s:
        for name, role in USERS:
            tokens[name] = issue_token(s, create_user(s, name, role, actor="test"), actor="test")
    with TestClient(create_app(hub.data_dir)) as client:

        def call(method: str, path: str, who: str | None, **kw: Any):
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
            return client.request(method, path, headers=headers, **kw)

        yield call, hub


def _body(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "new",
        "project": "diabetes",
        "title": "Diabète et insuffisance rénale",
        "purpose": "Mesurer l'incidence de l'insuffisance rénale.",
        "public_interest": "Adapter le dépistage.",
        "methodology": "Cohorte rétrospective, SNDS.",
        "datasets": ["snds"],
        "members": ["bob"],
        "duration_days": 365,
        **kw,
    }


def _other(**kw: Any) -> dict[str, Any]:
    """An application for another project than :func:`_apply`'s (which stays open)."""
    return _body(project="second", **kw)


def _apply(call) -> int:
    r = call("POST", "/api/applications", "alice", json=_body())
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _state(hub: Any) -> dict[str, Any]:
    """Everything a refused call must leave as it was."""
    with hub.sessions() as s:
        return {
            "apps": [(a.id, a.state, a.round, a.title) for a in s.query(Application)],
            "opinions": s.query(ApplicationOpinion).count(),
            "projects": [p.slug for p in pj.projects_of(s)],
            "permits": len(pj.permits(s)),
            "audit": s.query(AuditEvent).count(),
            "notifications": s.query(Notification).count(),
        }


def test_from_application_to_access_over_the_api(api) -> None:
    call, hub = api
    r = call("POST", "/api/applications", "alice", json=_body())
    assert r.status_code == 201, r.text
    app = r.json()
    assert set(app) == set(ApplicationOut.model_fields)
    assert app["state"] == "submitted" and app["applicant"] == app["submitted_by"] == "alice"
    assert app["compute_profile"] == "cpu" and app["actions"] == ["withdraw"]
    app_id = app["id"]
    # the committee is told, and sees what it may do
    r = call("GET", f"/api/applications/{app_id}", "cora")
    assert r.status_code == 200 and r.json()["actions"] == ["opinion"]
    (line,) = call("GET", "/api/applications?state=submitted", "cora").json()
    assert set(line) == set(ApplicationSummaryOut.model_fields)
    assert line["id"] == app_id and line["project"] == "diabetes"
    assert call("GET", "/api/applications?state=approved", "cora").json() == []
    r = call(
        "POST",
        f"/api/applications/{app_id}/opinion",
        "cora",
        json={"opinion": "favourable", "text": "Méthode solide."},
    )
    assert r.status_code == 200, r.text
    assert r.json()["opinions"][0]["member"] == "cora"
    # the applicant reads the opinion without its author's name
    seen = call("GET", f"/api/applications/{app_id}", "alice").json()
    assert seen["opinions"] == [
        {
            "member": None,
            "opinion": "favourable",
            "text": "Méthode solide.",
            "round": 1,
            "at": seen["opinions"][0]["at"],
        }
    ]
    # outside the team and the committee: as if it did not exist
    for who in ("eve", "rev"):
        r = call("GET", f"/api/applications/{app_id}", who)
        assert r.status_code == 404 and r.json()["detail"] == f"no application #{app_id}"
        assert call("GET", "/api/applications", who).json() == []
        r = call("POST", f"/api/applications/{app_id}/withdraw", who)
        assert r.status_code == 404
    assert call("GET", "/api/applications", None).status_code == 401
    r = call("GET", "/api/me/projects/diabetes/access", "alice")
    assert r.status_code == 404 and r.json()["reason"] == "unknown_project"
    # the authority's decision, recorded by an administrator, issues the permit
    decision = {"decision": "favourable", "reference": "CNIL DR-2027-042"}
    r = call("POST", f"/api/applications/{app_id}/decide", "adm", json=decision)
    assert r.status_code == 200, r.text
    decided = r.json()
    assert decided["state"] == "approved" and decided["decided_by"] == "adm"
    assert decided["decision_reference"] == "CNIL DR-2027-042" and decided["actions"] == []
    permit = decided["permit"]
    project = call("GET", "/api/projects/diabetes", "alice").json()
    assert project["members"] == [
        {"user": "alice", "role": "lead"},
        {"user": "bob", "role": "member"},
    ]
    assert [p["id"] for p in project["permits"]] == [permit]
    r = call("GET", "/api/projects/diabetes/access", "alice")
    assert r.status_code == 200, r.text
    assert r.json()["permit"] == permit
    assert call("GET", "/api/projects/diabetes/access", "bob").json()["permit"] == permit
    with hub.sessions() as s:
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
        told = {n.user_name for n in s.query(Notification).filter_by(kind="application_decided")}
    assert actions[-2:] == ["permit.grant", "application.decide"]
    assert told == {"alice", "bob"}


def test_changes_requested_revised_then_withdrawn(api) -> None:
    call, _hub = api
    app_id = _apply(call)
    # an administrator records the opinion of a committee member
    opinion = {"opinion": "changes_requested", "text": "Précisez la cohorte.", "member": "cora"}
    r = call("POST", f"/api/applications/{app_id}/opinion", "adm", json=opinion)
    assert r.status_code == 200 and r.json()["state"] == "changes_requested"
    r = call("GET", f"/api/applications/{app_id}", "alice")
    assert r.json()["actions"] == ["revise", "withdraw"]
    decision = {"decision": "favourable", "reference": "R-1"}
    r = call("POST", f"/api/applications/{app_id}/decide", "adm", json=decision)
    assert r.status_code == 409 and "revises it first" in r.json()["detail"]
    revision = {"methodology": "Cohorte 2015-2024, type 2.", "note": "Précisé."}
    r = call("POST", f"/api/applications/{app_id}/revise", "bob", json=revision)
    assert r.status_code == 403  # a member of the team, not the applicant
    r = call("POST", f"/api/applications/{app_id}/revise", "alice", json=revision)
    assert r.status_code == 200, r.text
    assert r.json()["round"] == 2 and r.json()["state"] == "submitted"
    assert r.json()["methodology"] == "Cohorte 2015-2024, type 2."
    r = call("POST", f"/api/applications/{app_id}/withdraw", "alice")
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    assert call("POST", f"/api/applications/{app_id}/withdraw", "alice").status_code == 409


OK = {"opinion": "favourable", "text": "ok"}
DECIDE = {"decision": "favourable", "reference": "R"}


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status", "message"),
    [
        ("alice", "POST", "", _other(datasets=["nope"]), 422, "no dataset 'nope'"),
        ("alice", "POST", "", _other(members=["zed"]), 422, "'zed' has no account"),
        ("alice", "POST", "", _other(kind="other"), 422, "kind: Input should be"),
        ("alice", "POST", "", _other(extra="x"), 422, "extra: Extra inputs"),
        ("alice", "POST", "", _other(applicant="eve"), 403, "only an administrator"),
        ("adm", "POST", "/{id}/decide", DECIDE, 409, "no opinion of the committee"),
        ("ctl", "POST", "/{id}/decide", DECIDE, 403, "an administrator does"),
        ("bob", "POST", "/{id}/opinion", OK, 403, "not a committee member"),
        ("adm", "GET", "/999", None, 404, "no application #999"),
        ("adm", "GET", "/99999999999999999999", None, 422, "app_id: Input should be less"),
        ("cora", "POST", "/999/opinion", OK, 404, "no application #999"),
    ],
)
def test_bad_calls_are_refused_and_change_nothing(
    api, who: str, method: str, path: str, body: Any, status: int, message: str
) -> None:
    call, hub = api
    app_id = _apply(call)
    before = _state(hub)
    kw = {"json": body} if body is not None else {}
    r = call(method, "/api/applications" + path.format(id=app_id), who, **kw)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"], r.json()
    assert _state(hub) == before


def test_a_committee_member_of_the_team_gives_no_opinion(api) -> None:
    call, hub = api
    app_id = _apply(call)
    with hub.transaction() as s:  # bob, in the team, joined the committee meanwhile
        s.query(User).filter_by(name="bob").one().role = "committee"
    before = _state(hub)
    opinion = {"opinion": "favourable", "text": "mine"}
    r = call("POST", f"/api/applications/{app_id}/opinion", "bob", json=opinion)
    assert r.status_code == 403 and "conflict of interest" in r.json()["detail"]
    assert _state(hub) == before


def test_application_routes_are_in_the_openapi_spec(api) -> None:
    call, _ = api
    doc = call("GET", "/api/openapi.json", None).json()
    paths = doc["paths"]
    assert {
        "/api/applications",
        "/api/applications/{app_id}",
        "/api/applications/{app_id}/opinion",
        "/api/applications/{app_id}/revise",
        "/api/applications/{app_id}/withdraw",
        "/api/applications/{app_id}/decide",
    } <= set(paths)
    assert paths["/api/applications"]["post"]["tags"] == ["applications"]
