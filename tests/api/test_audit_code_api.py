"""The code audit view's API: a project's audited code (cells, terminal lines, saved files)
for its leads, the reviewers who may review it and administrators, refused with the reason
to everyone else; the admin-wide variant; filters, pages and the chain's state, on both
store backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.routes.audit import WHO_MAY_SEE
from jupyterlab_hdh.audit import record
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from jupyterlab_hdh.store.models import User
from tests.governance.fakes import fake_version

ADMIN = pj.Actor("ctl", "data_controller")
TOKEN = "b" * 64
USERS = (
    ("alice", "researcher"),  # lead of cohort
    ("bob", "researcher"),  # member of cohort
    ("dan", "researcher"),  # lead of other
    ("rita", "reviewer"),  # reviewer, member of no project
    ("rob", "researcher"),  # a member of cohort, then made a reviewer: never reviews it
    ("adm", "admin"),
    ("ctl", "data_controller"),
)


def _cell(s: Any, user: str, project: str, code: str, kernel: str = "k1") -> None:
    record(
        s,
        actor=user,
        action="code.execute",
        target=f"project:{project}/kernel:{kernel}",
        details={"user": user, "project": project, "kernel_id": kernel, "code": code},
    )


@pytest.fixture
def api(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, str]]]:
    fake_version(hub)
    tokens: dict[str, str] = {}
    with hub.transaction() as s:
        for name, role in USERS:
            user = create_user(s, name, role, actor="test")
            tokens[name] = issue_token(s, user, actor="test")
        pj.create_project(s, "cohort", title="C", purpose="P", actor=ADMIN)
        pj.create_project(s, "other", title="O", purpose="P", actor=ADMIN)
        pj.add_member(s, "cohort", "alice", role="lead", actor=ADMIN)
        pj.add_member(s, "cohort", "bob", role="member", actor=ADMIN)
        pj.add_member(s, "cohort", "rob", role="member", actor=ADMIN)
        pj.add_member(s, "other", "dan", role="lead", actor=ADMIN)
        s.scalar(sa.select(User).where(User.name == "rob")).role = "reviewer"
        pj.grant_permit(
            s,
            "cohort",
            members=["alice", "bob"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=3),
            actor=ADMIN,
        )
        _cell(s, "alice", "cohort", "print('alice 1')")
        _cell(s, "bob", "cohort", "print('bob 1')", kernel="k2")
        record(
            s,
            actor="bob",
            action="terminal.input",
            target="project:cohort/terminal:1",
            details={"user": "bob", "project": "cohort", "input": "ls /data\r", "sha256": "x"},
        )
        record(
            s,
            actor="alice",
            action="file.save",
            target="project:cohort/file:analysis.ipynb",
            details={"user": "alice", "project": "cohort", "path": "analysis.ipynb", "size": 12},
        )
        _cell(s, "dan", "other", "print('secret of other')", kernel="k9")
        # not code: never listed
        record(s, actor="alice", action="kernel.request", target="project:cohort/kernel:k1")
    with TestClient(create_app(hub.data_dir, bridge_token=TOKEN)) as client:
        yield client, hub, tokens


def _get(client: TestClient, tokens: dict[str, str], who: str, url: str, **params: Any) -> Any:
    return client.get(url, params=params, headers={"Authorization": f"Bearer {tokens[who]}"})


COHORT = "/api/projects/cohort/audit/code"


@pytest.mark.parametrize("who", ["alice", "rita", "adm"])
def test_the_lead_a_reviewer_and_an_administrator_see_the_project_code(api: Any, who: str) -> None:
    client, _hub, tokens = api
    r = _get(client, tokens, who, COHORT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["project"] == "cohort"
    got = [(e["user"], e["kind"], e["code"]) for e in body["events"]]
    assert got == [
        ("alice", "save", "saved analysis.ipynb (12 bytes)"),
        ("bob", "terminal", "ls /data\r"),
        ("bob", "cell", "print('bob 1')"),
        ("alice", "cell", "print('alice 1')"),
    ]
    newest = body["events"]
    assert newest[0]["notebook"] == "analysis.ipynb" and newest[1]["terminal"] == "1"
    assert newest[3]["kernel"] == "k1" and all(e["verified"] for e in newest)
    assert body["chain"]["ok"] and body["chain"]["broken_seq"] is None
    assert body["chain"]["verified_to"] >= newest[0]["seq"]
    assert body["next_cursor"] is None
    assert "secret of other" not in r.text


@pytest.mark.parametrize(
    ("who", "extra"),
    [
        ("bob", ""),  # a plain member
        ("dan", ""),  # the lead of another project
        ("rob", "never reviews a project they are a member of"),  # a reviewer, but a member
        ("ctl", ""),  # the data controller
    ],
)
def test_everyone_else_is_refused_with_the_reason(api: Any, who: str, extra: str) -> None:
    client, _hub, tokens = api
    r = _get(client, tokens, who, COHORT)
    assert r.status_code == 403, r.text
    assert WHO_MAY_SEE in r.json()["detail"] and extra in r.json()["detail"]
    assert "print(" not in r.text


def test_without_a_token_or_for_a_missing_project(api: Any) -> None:
    client, _hub, tokens = api
    assert client.get(COHORT).status_code == 401
    assert _get(client, tokens, "adm", "/api/projects/nope/audit/code").status_code == 404
    assert _get(client, tokens, "adm", "/api/projects/Bad!/audit/code").status_code in (404, 422)


def test_the_lead_of_another_project_sees_only_their_own(api: Any) -> None:
    client, _hub, tokens = api
    r = _get(client, tokens, "dan", "/api/projects/other/audit/code")
    assert r.status_code == 200, r.text
    assert [e["code"] for e in r.json()["events"]] == ["print('secret of other')"]


def test_filters(api: Any) -> None:
    client, _hub, tokens = api
    r = _get(client, tokens, "alice", COHORT, user="bob")
    assert {e["user"] for e in r.json()["events"]} == {"bob"}
    r = _get(client, tokens, "alice", COHORT, kind="cell")
    assert [e["code"] for e in r.json()["events"]] == ["print('bob 1')", "print('alice 1')"]
    r = _get(client, tokens, "alice", COHORT, kind="terminal", user="alice")
    assert r.json()["events"] == []
    r = _get(client, tokens, "alice", COHORT, notebook="analysis.ipynb")
    assert [e["kind"] for e in r.json()["events"]] == ["save"]
    today = datetime.now(UTC).date()
    r = _get(client, tokens, "alice", COHORT, since=str(today), until=str(today))
    assert len(r.json()["events"]) == 4
    r = _get(client, tokens, "alice", COHORT, until=str(today - timedelta(days=1)))
    assert r.json()["events"] == []
    assert _get(client, tokens, "alice", COHORT, since="yesterday").status_code == 422
    assert _get(client, tokens, "alice", COHORT, kind="kernel").status_code == 422


def test_cells_by_notebook_and_template_runs(api: Any) -> None:
    """The guard's ``path`` on a cell is its notebook (the ``notebook`` filter matches it);
    the launcher's copies (``template.run``) and the terminal's ``hdh template run`` lines
    are the ``template`` kind, and that line is no longer a plain terminal line."""
    client, hub, tokens = api
    with hub.transaction() as s:
        for code, path in (("a = 1", "work/a.ipynb"), ("b = 1", "work/b.ipynb"), ("c = 1", None)):
            record(
                s,
                actor="alice",
                action="code.execute",
                target="project:cohort/kernel:k5",
                details={
                    "user": "alice",
                    "project": "cohort",
                    "kernel_id": "k5",
                    "code": code,
                    "path": path,
                },
            )
        record(
            s,
            actor="alice",
            action="template.run",
            target="project:cohort/template:mi-pathway",
            details={
                "user": "alice",
                "project": "cohort",
                "template": "mi-pathway",
                "mode": "copy",
                "parameters": {},
                "path": "templates/mi-pathway.ipynb",
            },
        )
        record(
            s,
            actor="bob",
            action="terminal.input",
            target="project:cohort/terminal:2",
            details={
                "user": "bob",
                "project": "cohort",
                "input": "hdh template run mi-pathway --output out\r",
                "sha256": "x",
            },
        )
    r = _get(client, tokens, "alice", COHORT, notebook="work/a.ipynb")
    got = [(e["kind"], e["code"], e["notebook"]) for e in r.json()["events"]]
    assert got == [("cell", "a = 1", "work/a.ipynb")]
    r = _get(client, tokens, "alice", COHORT, kind="cell", user="alice")
    by_code = {e["code"]: (e["notebook"], e["kernel"]) for e in r.json()["events"]}
    assert by_code["b = 1"] == ("work/b.ipynb", "k5") and by_code["c = 1"] == (None, "k5")
    r = _get(client, tokens, "alice", COHORT, kind="template")
    runs = [(e["user"], e["kind"], e["code"], e["notebook"]) for e in r.json()["events"]]
    assert runs == [
        ("bob", "template", "hdh template run mi-pathway --output out\r", None),
        (
            "alice",
            "template",
            "template mi-pathway copied to templates/mi-pathway.ipynb",
            "templates/mi-pathway.ipynb",
        ),
    ]
    r = _get(client, tokens, "alice", COHORT, kind="terminal")
    assert [e["code"] for e in r.json()["events"]] == ["ls /data\r"]
    r = _get(client, tokens, "alice", COHORT, user="bob")
    kinds = [(e["kind"], e["terminal"]) for e in r.json()["events"]]
    assert kinds[0] == ("template", "2") and ("terminal", "1") in kinds


def test_pages_are_bounded_and_follow_the_cursor(api: Any) -> None:
    client, _hub, tokens = api
    assert _get(client, tokens, "alice", COHORT, limit=501).status_code == 422
    assert _get(client, tokens, "alice", COHORT, limit=0).status_code == 422
    seen: list[str] = []
    cursor = 0
    for _ in range(5):
        body = _get(client, tokens, "alice", COHORT, limit=3, cursor=cursor).json()
        seen += [e["code"] for e in body["events"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert len(seen) == 4 and seen[-1] == "print('alice 1')"
    first = _get(client, tokens, "alice", COHORT, limit=3).json()
    assert len(first["events"]) == 3 and first["next_cursor"] == first["events"][-1]["seq"]


def test_administrators_see_every_project_with_filters(api: Any) -> None:
    client, _hub, tokens = api
    r = _get(client, tokens, "adm", "/api/audit/code")
    assert r.status_code == 200, r.text
    assert {e["project"] for e in r.json()["events"]} == {"cohort", "other"}
    r = _get(client, tokens, "adm", "/api/audit/code", project="other", kind="cell")
    assert [e["code"] for e in r.json()["events"]] == ["print('secret of other')"]
    for who in ("alice", "rita", "ctl"):
        assert _get(client, tokens, who, "/api/audit/code").status_code == 403


def _drop_guards(session: Any) -> None:
    if session.bind.dialect.name == "postgresql":
        session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    else:
        session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


def test_a_broken_chain_is_reported_and_marks_the_events_after_it(api: Any) -> None:
    client, hub, tokens = api
    body = _get(client, tokens, "alice", COHORT).json()
    bob_cell = next(e for e in body["events"] if e["code"] == "print('bob 1')")
    with hub.transaction() as s:
        _drop_guards(s)
        s.execute(
            sa.text("UPDATE audit_events SET actor = 'eve' WHERE seq = :n"), {"n": bob_cell["seq"]}
        )
    body = _get(client, tokens, "alice", COHORT).json()
    chain = body["chain"]
    assert not chain["ok"] and chain["broken_seq"] == bob_cell["seq"]
    assert chain["verified_to"] == bob_cell["seq"] - 1 and "altered" in chain["reason"]
    verified = {e["code"]: e["verified"] for e in body["events"]}
    assert verified["print('alice 1')"] and not verified["print('bob 1')"]
    assert not verified["ls /data\r"]


# ------------------------------------------------------------------ through the bridge


def _bridged(user: str, project: str = "cohort") -> dict[str, str]:
    return {"X-HDH-User": user, "X-HDH-Project": project, "X-HDH-Bridge": TOKEN}


def test_through_the_bridge_the_lead_sees_the_sandbox_project_only(api: Any) -> None:
    client, _hub, _tokens = api
    r = client.get("/api/bridge/audit/code", headers=_bridged("alice"), params={"kind": "cell"})
    assert r.status_code == 200, r.text
    assert [e["code"] for e in r.json()["events"]] == ["print('bob 1')", "print('alice 1')"]
    assert "secret of other" not in r.text
    # a project asked for in the query is not the sandbox's: ignored, never another project
    r = client.get("/api/bridge/audit/code", headers=_bridged("alice"), params={"project": "other"})
    assert r.status_code == 200 and r.json()["project"] == "cohort"
    assert "secret of other" not in r.text


def test_through_the_bridge_a_plain_member_is_refused(api: Any) -> None:
    client, _hub, tokens = api
    r = client.get("/api/bridge/audit/code", headers=_bridged("bob"))
    assert r.status_code == 403 and r.json()["detail"] == WHO_MAY_SEE
    # no bridge token, a user's token, another project (no permit there): refused
    assert client.get("/api/bridge/audit/code").status_code == 401
    bearer = {"Authorization": f"Bearer {tokens['adm']}"}
    assert client.get("/api/bridge/audit/code", headers=bearer).status_code == 401
    r = client.get("/api/bridge/audit/code", headers=_bridged("alice", "other"))
    assert r.status_code == 403 and "secret" not in r.text
    r = client.get("/api/bridge/audit/code", headers=_bridged("dan", "other"))
    assert r.status_code == 403  # dan leads other but holds no permit: no sandbox there
