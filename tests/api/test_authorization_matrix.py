"""Who may call what: every route of the control plane's API × every role × their own
project or another's, in one table, asserted against the real app and store.

The callers: no token, an administrator, a data controller, a committee member, a reviewer,
alice (the lead of ``study`` and the author of its export requests), bob (a member of
``study``, not the author) and mallory (a researcher of another project). Every path names
``study`` or one of its requests, so for alice and bob it is their own project and for
mallory another's. A call that changes something runs on a fresh copy of the installation,
so no call depends on another's effect. "Allowed" is an answer other than 401 or 403 (the
body may still be refused, 404/409/422, for a reason that is not who asks); "denied" is 401,
403, or 404 where the route hides what the caller may not see. A route missing from the
table fails the test: a new route must say who may call it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.ingestion import ingest
from jupyterlab_hdh.paths import DataDir
from tests.egress import airlock as a

CALLERS = ("anonymous", "adm", "dan", "cora", "rita", "alice", "bob", "mallory")
EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {"anonymous"}
ADMIN = frozenset({"adm"})
CONTROLLERS = frozenset({"adm", "dan"})
REVIEWERS = frozenset({"rita", "cora"})  # a reviewer and a committee member
OVERSEERS = ADMIN | REVIEWERS
MEMBERS = frozenset({"alice", "bob"})
NOBODY: frozenset[str] = frozenset()
#: the hub's bridge token, which no person holds
BRIDGE_TOKEN = "b" * 64


@dataclass(frozen=True)
class World:
    root: Path
    tokens: dict[str, str]
    ids: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, raw_extract: Path) -> World:
    """snds v1 ingested; projects study (alice leads, bob) and other (mallory) with a permit
    on study for both, and four export requests of study by alice: a draft, one submitted,
    one reviewed (every output voted), one released; three applications by alice (with bob)
    for new projects: one submitted, one with changes requested, one with a favourable
    opinion."""
    root = tmp_path_factory.mktemp("authz") / "hdh"
    hub, _ = init_installation(DataDir.resolve(root))
    ingest(hub, raw_extract, "snds", actor="test")
    workspace = a.setup(hub)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "study",
            members=["alice", "bob"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=a.DAN,
        )
    for name in ("out.csv", "out2.csv", "out3.csv", "out4.csv", "out5.csv"):
        a.write(workspace, name)
    tokens = {}
    with hub.transaction() as s:
        accounts.create_user(s, "adm", "admin", actor="test")
        accounts.create_user(s, "carol", "researcher", actor="test")  # a member to add
        for name in ("adm", *a.USERS):
            tokens[name] = accounts.issue_token(s, accounts.get_user(s, name), actor="test")
        permit = pj.active_permit(s, "alice", "study").id
    with hub.transaction() as s:  # alice applies for three new projects, with bob
        applied, changes, opined = (
            ap.submit(s, _application(slug), actor=a.ALICE).id
            for slug in ("study-2", "study-3", "study-4")
        )
    with hub.transaction() as s:
        ap.give_opinion(s, changes, "changes_requested", "Say more.", actor=a.CORA)
        ap.give_opinion(s, opined, "favourable", "Sound.", actor=a.CORA)
    draft = a.draft(hub, ("out.csv", "output"))
    submitted = a.draft(hub, ("out2.csv", "output"))
    a.submit(hub, submitted)
    reviewed = a.draft(hub, ("out3.csv", "output"))
    a.submit(hub, reviewed)
    a.vote_all(hub, reviewed)
    released = a.draft(hub, ("out4.csv", "output"))
    a.submit(hub, released)
    a.vote_all(hub, released)
    approved = a.draft(hub, ("out5.csv", "output"))
    a.submit(hub, approved)
    a.vote_all(hub, approved)
    with hub.transaction() as s:
        m.approve(s, released, actor=a.RITA)
        m.approve(s, approved, actor=a.RITA)
    assert rel.release(hub, released, actor=a.RITA)
    with hub.sessions() as s:
        (released_file,) = rel.released_files(s, released, actor=a.ALICE)
    hub.close()
    ids = {
        "permit": permit,
        "draft": draft,
        "submitted": submitted,
        "reviewed": reviewed,
        "approved": approved,
        "released": released,
        "released_name": released_file["name"],
        "applied": applied,
        "changes": changes,
        "opined": opined,
    }
    return World(root, tokens, ids)


def _application(slug: str) -> ap.Draft:
    return ap.Draft(
        kind="new",
        project=slug,
        title="A study",
        purpose="Tests.",
        public_interest="Tests.",
        methodology="Tests.",
        datasets=("snds",),
        members=("bob",),
        duration_days=30,
    )


#: a new project's application, as a body
APPLICATION = {
    "kind": "new",
    "project": "new-study",
    "title": "A study",
    "purpose": "Tests.",
    "public_interest": "Tests.",
    "methodology": "Tests.",
    "datasets": ["snds"],
    "duration_days": 30,
}


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # as the app names it
    path: str  # with the world's values (``{draft}``…)
    allowed: frozenset[str]
    body: Any = None
    #: a 404 for an allowed caller is the resource's absence, not a refusal
    may_404: bool = False


def case(method: str, route: str, allowed: frozenset[str], path: str = "", **kw: Any) -> Case:
    return Case(method, route, path or route, allowed, **kw)


TABLE: tuple[Case, ...] = (
    # the catalogue is public: anyone, signed in or not
    case("GET", "/api/health", EVERYONE),
    case("GET", "/api/catalogue/datasets", EVERYONE),
    case("GET", "/api/catalogue/datasets/{name}", EVERYONE, "/api/catalogue/datasets/snds"),
    case(
        "GET",
        "/api/catalogue/datasets/{name}/versions/{version}",
        EVERYONE,
        "/api/catalogue/datasets/snds/versions/v1",
    ),
    case(
        "GET",
        "/api/catalogue/datasets/{name}/versions/{version}/quality",
        EVERYONE,
        "/api/catalogue/datasets/snds/versions/v1/quality",
        may_404=True,  # a catalogue-only version has no quality report
    ),
    case(
        "GET",
        "/api/catalogue/datasets/{name}/versions/{version}/tables/{table}",
        EVERYONE,
        "/api/catalogue/datasets/snds/versions/v1/tables/IR_BEN_R",
        may_404=True,
    ),
    case("GET", "/api/catalogue/search", EVERYONE, "/api/catalogue/search?q=snds"),
    # the public register: anyone, signed in or not
    case("GET", "/api/register", EVERYONE),
    case("GET", "/ui/register/audit/checkpoint.json", EVERYONE, may_404=True),  # none taken
    case("GET", "/ui/register/audit/public-key.pem", EVERYONE, may_404=True),
    case("GET", "/api/catalogue/dcat.jsonld", EVERYONE),
    case("GET", "/catalogue", EVERYONE),
    case("GET", "/catalogue/{name}/{version}", EVERYONE, "/catalogue/snds/v1"),
    case(
        "GET",
        "/catalogue/{name}/{version}/tables/{table}",
        EVERYONE,
        "/catalogue/snds/v1/tables/IR_BEN_R",
        may_404=True,
    ),
    # data controllers' work
    case(
        "POST",
        "/api/datasets/{name}/versions",
        CONTROLLERS,
        "/api/datasets/snds/versions",
        body={"source": "missing-folder"},
    ),
    case("POST", "/api/optout", CONTROLLERS, body={"identifier": "184037512345690"}),
    case("POST", "/api/optout/reapply", CONTROLLERS),
    case("GET", "/api/permits", CONTROLLERS),
    case(
        "POST",
        "/api/projects/{slug}/permits",
        CONTROLLERS,
        "/api/projects/study/permits",
        body={"members": ["alice"], "datasets": ["snds"], "days": 10},
    ),
    case(
        "POST",
        "/api/permits/{permit_id}/amend",
        CONTROLLERS,
        "/api/permits/{permit}/amend",
        body={"days": 60},
    ),
    case(
        "POST",
        "/api/permits/{permit_id}/revoke",
        CONTROLLERS,
        "/api/permits/{permit}/revoke",
        body={"reason": "ended"},
    ),
    # the audit log
    case("GET", "/api/audit/verify", ADMIN),
    case("GET", "/api/audit/events", ADMIN),
    case("GET", "/api/audit/code", ADMIN),
    case(
        "GET",
        "/api/projects/{slug}/audit/code",
        OVERSEERS | {"alice"},  # leads, reviewers who are not members, administrators
        "/api/projects/study/audit/code",
    ),
    # projects
    case("GET", "/api/projects", SIGNED_IN),
    case(
        "POST",
        "/api/projects",
        CONTROLLERS,
        body={"slug": "new-study", "title": "New", "purpose": "A study"},
    ),
    case("GET", "/api/projects/{slug}", CONTROLLERS | REVIEWERS | MEMBERS, "/api/projects/study"),
    case(
        "POST",
        "/api/projects/{slug}/members",
        CONTROLLERS | {"alice"},
        "/api/projects/study/members",
        body={"user": "carol"},
    ),
    case(
        "DELETE",
        "/api/projects/{slug}/members/{member}",
        CONTROLLERS | {"alice"},
        "/api/projects/study/members/bob",
    ),
    case(
        "GET",
        "/api/projects/{slug}/access",
        MEMBERS,  # may the caller open it now (a controller asks for others with ?user=)
        "/api/projects/study/access",
    ),
    case("GET", "/api/me/projects/{slug}/access", MEMBERS, "/api/me/projects/study/access"),
    case(
        "PUT",
        "/api/me/projects/{slug}/mounts",
        MEMBERS,
        "/api/me/projects/study/mounts",
        body={"versions": ["snds/v1"]},
    ),
    # the access desk: researchers apply, the committee gives opinions, an administrator
    # records the decision; the team, the committee and the overseers see an application
    case("POST", "/api/applications", MEMBERS | {"mallory"}, body=APPLICATION),
    case("GET", "/api/applications", SIGNED_IN),
    case(
        "GET",
        "/api/applications/{app_id}",
        CONTROLLERS | {"cora"} | MEMBERS,  # a reviewer is not the committee
        "/api/applications/{applied}",
    ),
    case(
        "POST",
        "/api/applications/{app_id}/opinion",
        {"cora"},  # an administrator records one only for a committee member (member=)
        "/api/applications/{applied}/opinion",
        body={"opinion": "favourable", "text": "Sound."},
    ),
    case(
        "POST",
        "/api/applications/{app_id}/revise",
        ADMIN | {"alice"},  # the applicant, not her team
        "/api/applications/{changes}/revise",
        body={"note": "Said more."},
    ),
    case(
        "POST",
        "/api/applications/{app_id}/withdraw",
        ADMIN | {"alice"},
        "/api/applications/{applied}/withdraw",
    ),
    case(
        "POST",
        "/api/applications/{app_id}/decide",
        ADMIN,
        "/api/applications/{opined}/decide",
        body={"decision": "favourable", "reference": "R-1"},
    ),
    # the API bridge: only the hub's bridge token, never a person's
    *(
        case(method, route, NOBODY, path, body=body)
        for method, route, path, body in (
            ("GET", "/api/bridge/whoami", "", None),
            ("GET", "/api/bridge/access/{dataset}", "/api/bridge/access/snds", None),
            ("GET", "/api/bridge/audit/code", "", None),
            ("GET", "/api/bridge/egress/checks", "", None),
            ("GET", "/api/bridge/egress/requests", "", None),
            ("POST", "/api/bridge/egress/requests", "", {"title": "t"}),
            ("GET", "/api/bridge/applications", "", None),
            (
                "POST",
                "/api/bridge/applications",
                "",
                {"dataset": "snds", "public_interest": "p", "methodology": "m"},
            ),
            (
                "GET",
                "/api/bridge/egress/requests/{request_id}",
                "/api/bridge/egress/requests/{draft}",
                None,
            ),
            (
                "POST",
                "/api/bridge/egress/requests/{request_id}/files",
                "/api/bridge/egress/requests/{draft}/files",
                {"path": "out.csv"},
            ),
            (
                "POST",
                "/api/bridge/egress/requests/{request_id}/submit",
                "/api/bridge/egress/requests/{draft}/submit",
                None,
            ),
            (
                "POST",
                "/api/bridge/egress/requests/{request_id}/withdraw",
                "/api/bridge/egress/requests/{draft}/withdraw",
                None,
            ),
        )
    ),
    # the airlock: members make requests, reviewers decide, members take released files
    case(
        "POST",
        "/api/egress/requests",
        MEMBERS,
        body={"project": "study", "title": "Table 2"},
    ),
    case("GET", "/api/egress/requests", SIGNED_IN),
    case(
        "GET",
        "/api/egress/requests/{request_id}",
        OVERSEERS | MEMBERS,
        "/api/egress/requests/{submitted}",
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/files",
        {"alice"},
        "/api/egress/requests/{draft}/files",
        body={"path": "out2.csv", "role": "output"},
    ),
    case(
        "DELETE",
        "/api/egress/requests/{request_id}/files/{path}",
        {"alice"},
        "/api/egress/requests/{draft}/files/out.csv",
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/submit",
        {"alice"},
        "/api/egress/requests/{draft}/submit",
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/withdraw",
        {"alice"},
        "/api/egress/requests/{submitted}/withdraw",
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/votes",
        REVIEWERS,
        "/api/egress/requests/{submitted}/votes",
        body={"path": "out2.csv", "decision": "approve"},
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/exceptions",
        REVIEWERS,
        "/api/egress/requests/{submitted}/exceptions",
        body={"path": "out2.csv", "reason": "checked by hand"},
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/comments",
        REVIEWERS | MEMBERS,
        "/api/egress/requests/{submitted}/comments",
        body={"body": "Please round the counts.", "visibility": "public"},
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/approve",
        REVIEWERS,  # an administrator oversees, and does not decide
        "/api/egress/requests/{reviewed}/approve",
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/return",
        REVIEWERS,
        "/api/egress/requests/{reviewed}/return",
        body={"reason": "Round the counts."},
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/reject",
        REVIEWERS,
        "/api/egress/requests/{reviewed}/reject",
        body={"reason": "Disclosive."},
    ),
    case(
        "POST",
        "/api/egress/requests/{request_id}/release",
        OVERSEERS,
        "/api/egress/requests/{approved}/release",
    ),
    case(
        "GET",
        "/api/egress/requests/{request_id}/released",
        MEMBERS,  # released files go to the project's members
        "/api/egress/requests/{released}/released",
    ),
    case(
        "GET",
        "/api/egress/requests/{request_id}/released/{name}",
        MEMBERS,
        "/api/egress/requests/{released}/released/{released_name}",
    ),
    case(
        "GET",
        "/api/egress/requests/{request_id}/review",
        OVERSEERS,
        "/api/egress/requests/{submitted}/review",
    ),
    case("GET", "/api/egress/notifications", SIGNED_IN),
    case("POST", "/api/egress/notifications/read", SIGNED_IN),
)


def _copy(world: World, tmp: Path) -> DataDir:
    target = tmp / "hdh"
    shutil.copytree(world.root, target, symlinks=True)
    return DataDir.resolve(target)


def _call(world: World, data_dir: DataDir, c: Case, who: str) -> int:
    headers = {} if who == "anonymous" else {"Authorization": f"Bearer {world.tokens[who]}"}
    path = c.path.format(**world.ids)
    with TestClient(create_app(data_dir, bridge_token=BRIDGE_TOKEN)) as client:
        kw: dict[str, Any] = {"json": c.body} if c.body is not None else {}
        return client.request(c.method, path, headers=headers, **kw).status_code


def _observe(world: World, tmp: Path) -> Iterator[tuple[Case, str, int]]:
    shared = DataDir.resolve(world.root)
    for i, c in enumerate(TABLE):
        for who in CALLERS:
            if c.method == "GET":
                yield c, who, _call(world, shared, c, who)
            else:  # a fresh copy: no call sees another's effect
                yield c, who, _call(world, _copy(world, tmp / f"{i}-{who}"), c, who)


def test_every_route_says_who_may_call_it(world: World) -> None:
    spec = create_app(DataDir.resolve(world.root)).openapi()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    table = {(c.method, c.route) for c in TABLE}
    assert routes - table == set(), "routes without a row in the table"
    assert table - routes == set(), "rows for routes that do not exist"
    assert len(table) == len(TABLE)


def test_who_may_call_what(world: World, tmp_path: Path) -> None:
    wrong = []
    seen = []
    for c, who, status in _observe(world, tmp_path):
        seen.append(f"{c.method:6} {c.route:60} {who:9} {status}")
        refused = status in (401, 403) or (status == 404 and not c.may_404)
        if who in c.allowed and refused:
            wrong.append(f"{c.method} {c.route} as {who}: {status}, but it is allowed")
        if who not in c.allowed and not refused:
            wrong.append(f"{c.method} {c.route} as {who}: {status}, but it is denied")
    if os.environ.get("HDH_SHOW_MATRIX"):
        print("\n".join(seen))
    assert wrong == []
