"""``/api/bridge/applications``: from the catalogue browser, a project's lead requests access to
a dataset the permit does not cover (an amendment application, ``governance/applications.py``),
for the bridged project only and as the bridged user; the committee's opinion and the
authority's decision then add it to the permit. A member who does not lead is told who does.
On both store backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user
from jupyterlab_hdh.store.models import Application
from tests.governance.fakes import fake_version

TOKEN = "c" * 64
CTL = pj.Actor("ctl", "data_controller")
COMM = pj.Actor("comm", "committee")
ADM = pj.Actor("adm", "admin")
URL = "/api/bridge/applications"
BODY = {
    "dataset": "registry",
    "public_interest": "Measure how cancers are followed up after a diabetes diagnosis.",
    "methodology": "Retrospective cohort linking the registry to the SNDS, 2015-2024.",
}


@pytest.fixture
def desk(hub: Any) -> Iterator[tuple[TestClient, Any]]:
    """Project ``cohort`` (lead alice, member carol, both covered; snds) and project ``other``
    (lead olga; snds); dataset ``registry`` in the catalogue, in no permit; a committee
    member and an administrator."""
    fake_version(hub, "snds")
    fake_version(hub, "registry")
    with hub.transaction() as s:
        for name, role in (
            ("alice", "researcher"),
            ("carol", "researcher"),
            ("olga", "researcher"),
            ("ctl", "data_controller"),
            ("comm", "committee"),
            ("adm", "admin"),
        ):
            create_user(s, name, role, actor="test")
        for slug, lead, members in (("cohort", "alice", ["carol"]), ("other", "olga", [])):
            pj.create_project(s, slug, title=slug.title(), purpose=f"Purpose of {slug}", actor=CTL)
            pj.add_member(s, slug, lead, role="lead", actor=CTL)
            for m in members:
                pj.add_member(s, slug, m, role="member", actor=CTL)
            pj.grant_permit(
                s,
                slug,
                members=[lead, *members],
                datasets=["snds"],
                expires_at=datetime.now(UTC) + timedelta(days=30),
                actor=CTL,
            )
    with TestClient(create_app(hub.data_dir, bridge_token=TOKEN)) as client:
        yield client, hub


def _as(user: str, project: str = "cohort") -> dict[str, str]:
    return {"X-HDH-User": user, "X-HDH-Project": project, "X-HDH-Bridge": TOKEN}


def _apps(hub: Any) -> list[tuple[str, str, str, list[str], str]]:
    with hub.sessions() as s:
        return [
            (a.kind, a.project_slug, a.applicant, list(a.datasets), a.state)
            for a in s.query(Application).order_by(Application.id)
        ]


def test_the_lead_requests_access_and_the_decision_amends_the_permit(desk: Any) -> None:
    client, hub = desk
    access = client.get("/api/bridge/access/registry", headers=_as("alice")).json()
    assert access["state"] == "not_permitted" and access["you_lead"] is True

    r = client.post(URL, json=BODY, headers=_as("alice"))
    assert r.status_code == 201, r.text
    view = r.json()
    assert (view["kind"], view["project"], view["applicant"]) == ("amendment", "cohort", "alice")
    assert (view["state"], view["datasets"]) == ("submitted", ["registry"])
    assert view["title"] == "Add registry to project cohort"
    assert _apps(hub) == [("amendment", "cohort", "alice", ["registry"], "submitted")]
    with hub.sessions() as s:
        app = ap.get(s, view["id"])
        assert app.purpose == "Purpose of cohort"
        assert app.public_interest == BODY["public_interest"]
        assert app.methodology == BODY["methodology"]

    # the project's sandboxes (its lead's and its members') see the open request
    for user in ("alice", "carol"):
        listed = client.get(URL, headers=_as(user))
        assert listed.status_code == 200, listed.text
        assert [(a["id"], a["state"], a["datasets"]) for a in listed.json()] == [
            (view["id"], "submitted", ["registry"])
        ]

    with hub.transaction() as s:
        ap.give_opinion(s, view["id"], "favourable", "Proportionate.", actor=COMM)
    with hub.transaction() as s:
        ap.decide(s, view["id"], "favourable", reference="DEC-2026-7", actor=ADM)
    with hub.sessions() as s:
        permit = pj.active_permit(s, "alice", "cohort")
        assert {v.dataset.name for v in permit.dataset_versions} == {"snds", "registry"}
    access = client.get("/api/bridge/access/registry", headers=_as("carol")).json()
    assert access["state"] in ("permitted", "mounted") and access["you_lead"] is False
    listed = client.get(URL, headers=_as("alice")).json()
    assert [(a["state"], a["decision_reference"]) for a in listed] == [("approved", "DEC-2026-7")]


def test_a_member_who_does_not_lead_is_told_who_does(desk: Any) -> None:
    client, hub = desk
    assert (
        client.get("/api/bridge/access/registry", headers=_as("carol")).json()["you_lead"] is False
    )
    r = client.post(URL, json=BODY, headers=_as("carol"))
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert "alice" in detail and "lead" in detail and "cohort" in detail
    assert _apps(hub) == []


def test_a_dataset_the_permit_grants_already_is_refused(desk: Any) -> None:
    client, hub = desk
    r = client.post(URL, json={**BODY, "dataset": "snds"}, headers=_as("alice"))
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        "the permit of project cohort already covers snds (v1): nothing to request"
    )
    assert _apps(hub) == []


def test_refusals_are_one_clear_line_and_file_nothing(desk: Any) -> None:
    client, hub = desk
    r = client.post(URL, json={**BODY, "dataset": "nowhere"}, headers=_as("alice"))
    assert r.status_code == 422 and "no dataset 'nowhere'" in r.json()["detail"], r.text
    r = client.post(URL, json={**BODY, "methodology": "  "}, headers=_as("alice"))
    assert r.status_code == 422 and "methodology must not be empty" in r.json()["detail"]
    r = client.post(URL, json={"dataset": "registry"}, headers=_as("alice"))
    assert r.status_code == 422, r.text
    r = client.post(URL, json={**BODY, "dataset": "Registry"}, headers=_as("alice"))
    assert r.status_code == 422, r.text
    assert _apps(hub) == []
    # one open application per project: the next waits for it
    first = client.post(URL, json=BODY, headers=_as("alice")).json()
    fake_version(hub, "pmsi")
    r = client.post(URL, json={**BODY, "dataset": "pmsi"}, headers=_as("alice"))
    assert r.status_code == 409, r.text
    assert f"application #{first['id']} for project 'cohort' is still open" in r.json()["detail"]
    assert len(_apps(hub)) == 1


def test_always_for_the_callers_own_project_as_the_caller(desk: Any) -> None:
    client, hub = desk
    # the body never names the project, the applicant or the kind
    for extra in ({"project": "other"}, {"applicant": "olga"}, {"kind": "new"}):
        r = client.post(URL, json={**BODY, **extra}, headers=_as("alice"))
        assert r.status_code == 422, (extra, r.text)
    assert _apps(hub) == []
    # alice is no member of ``other``: the bridge's identity check answers first
    r = client.post(URL, json=BODY, headers=_as("alice", "other"))
    assert r.status_code in (403, 404), r.text
    assert _apps(hub) == []
    # olga files for her project; alice's sandbox does not see it, nor she alice's
    assert client.post(URL, json=BODY, headers=_as("olga", "other")).status_code == 201
    assert client.get(URL, headers=_as("alice")).json() == []
    assert client.post(URL, json=BODY, headers=_as("alice")).status_code == 201
    assert [a["project"] for a in client.get(URL, headers=_as("olga", "other")).json()] == ["other"]
    assert [(p, who) for _k, p, who, _d, _s in _apps(hub)] == [
        ("other", "olga"),
        ("cohort", "alice"),
    ]


def test_only_through_the_bridge(desk: Any) -> None:
    client, hub = desk
    assert client.post(URL, json=BODY).status_code == 401
    assert client.get(URL).status_code == 401
    bad = {**_as("alice"), "X-HDH-Bridge": "x" * 64}
    assert client.post(URL, json=BODY, headers=bad).status_code == 403
    assert _apps(hub) == []


ACCESS = "/api/bridge/access/registry"


def _request(client: TestClient, user: str, project: str = "cohort") -> Any:
    r = client.get(ACCESS, headers=_as(user, project))
    assert r.status_code == 200, r.text
    return r.json()["application"]


def test_the_access_answer_names_the_projects_open_request_until_decided(desk: Any) -> None:
    client, hub = desk
    assert _request(client, "alice") is None
    filed = client.post(URL, json=BODY, headers=_as("alice")).json()
    # every member's sandbox of the project sees it, on that dataset's badge only
    for user in ("alice", "carol"):
        shown = _request(client, user)
        assert shown is not None
        assert (shown["id"], shown["kind"], shown["state"], shown["title"]) == (
            filed["id"],
            "amendment",
            "submitted",
            "Add registry to project cohort",
        )
        assert shown["submitted_at"] == filed["submitted_at"] and shown["updated_at"]
    snds = client.get("/api/bridge/access/snds", headers=_as("alice")).json()
    assert snds["application"] is None
    # back with the applicant: still open
    with hub.transaction() as s:
        ap.give_opinion(s, filed["id"], "changes_requested", "Say which years.", actor=COMM)
    assert _request(client, "carol")["state"] == "changes_requested"
    # decided: no longer a pending request
    with hub.transaction() as s:
        ap.decide(s, filed["id"], "unfavourable", reference="DEC-2026-9", actor=ADM)
    assert _request(client, "alice") is None and _request(client, "carol") is None


def test_a_withdrawn_request_is_no_longer_shown(desk: Any) -> None:
    client, hub = desk
    filed = client.post(URL, json=BODY, headers=_as("alice")).json()
    assert _request(client, "alice")["id"] == filed["id"]
    with hub.transaction() as s:
        ap.withdraw(s, filed["id"], actor=pj.Actor("alice", "researcher"))
    assert _request(client, "alice") is None


def test_another_projects_request_never_shows(desk: Any) -> None:
    client, _hub = desk
    # olga's project ``other`` asks for registry: cohort's sandboxes see nothing of it
    theirs = client.post(URL, json=BODY, headers=_as("olga", "other")).json()
    assert _request(client, "olga", "other")["id"] == theirs["id"]
    assert _request(client, "alice") is None and _request(client, "carol") is None
    # once cohort asks too, each project sees its own request only
    ours = client.post(URL, json=BODY, headers=_as("alice")).json()
    assert ours["id"] != theirs["id"]
    assert _request(client, "alice")["id"] == ours["id"]
    assert _request(client, "olga", "other")["id"] == theirs["id"]
