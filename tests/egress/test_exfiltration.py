"""Insider attacks on the airlock (issue 8, item 3): a kernel must not get data out of its
sandbox by writing it where the control plane shows it back to the requester.

1. A rendering shown to the requester: the kernel writes data into a notebook (base64 in
   markdown cells) and a table (flagged cells, labels), adds them to a draft through the API
   bridge, and the requester reads them back from outside the sandbox. Every route the
   requester (or another member of the project) can reach is tried; no byte of the data may
   come back. Reviewers and administrators still get the rendering.
2. Request fields: free text the kernel sets through the bridge (title, a file's path,
   context and controls, a withdrawal's reason) is short and typed: over-long or multi-line
   values are refused with a one-line 422 and nothing is stored; daily quotas bound how many
   requests and file additions a project makes.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hdh.airlock import describe
from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import settings as airlock_settings
from jupyterlab_hdh.egress.errors import InvalidFile, LimitExceeded
from jupyterlab_hdh.egress.render import review_page
from jupyterlab_hdh.egress.snapshot import blob_path
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.store.models import AuditEvent, EgressRequest, User
from tests.egress import airlock
from tests.egress.test_api import TOKEN, _bridge, _browser, _HubLogin, _ok, _world

# what the kernel tries to get out: random bytes, base64 in markdown cells of a notebook ...
SECRET = os.urandom(3000)
B64 = base64.b64encode(SECRET).decode()
# ... and values of a table that the checks flag (the flag messages and locations quote them)
LABEL, FORMULA, COLUMN = "EXFILLABELq7Zk", "EXFILFORMULAw3Rt", "EXFILCOLUMNp9Xs"
TABLE = f'region,{COLUMN}\n{LABEL},3\nnorth,120\n"=HYPERLINK(""{FORMULA}"")",40\n'


def _notebook() -> str:
    nb = nbformat.v4.new_notebook()
    chunk = 500
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"![x](data:application/octet-stream;base64,{B64[i : i + chunk]})"
        )
        for i in range(0, len(B64), chunk)
    ]
    nb.cells.append(nbformat.v4.new_code_cell("print('analysis')"))
    return nbformat.writes(nb)


def _leaks(text: str) -> list[str]:
    """Which pieces of the data ``text`` gives back (any 24 consecutive base64 characters,
    or one of the table's flagged values)."""
    found = [w for w in (LABEL, FORMULA, COLUMN) if w in text]
    pieces = {B64[i : i + 24] for i in range(0, len(B64) - 24, 12)}
    if any(p in text for p in pieces):
        found.append("base64 of the notebook")
    return found


@pytest.fixture
def world(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, dict[str, str]]]]:
    """The airlock's users (plus an administrator, ``ada``), alice's permit on ``study``, and
    the app with the API bridge and the browser pages."""
    auth = _world(hub)
    with hub.transaction() as s:
        accounts.create_user(s, "ada", "admin", actor="test")
        ada = s.scalar(select(User).where(User.name == "ada"))
        auth["ada"] = {"Authorization": f"Bearer {accounts.issue_token(s, ada, actor='test')}"}
    airlock.grant(hub)
    ws = hub.data_dir.workspace("study")
    airlock.write(ws, "nb/data.ipynb", _notebook())
    airlock.write(ws, "out/table.csv", TABLE)
    app = create_app(hub.data_dir, bridge_token=TOKEN, browser_auth=_HubLogin())
    with TestClient(app) as client:
        yield client, hub, auth


def _new(client: TestClient, me: dict[str, str]) -> int:
    r = client.post("/api/bridge/egress/requests", json={"title": "t"}, headers=me)
    return int(_ok(r, 201)["id"])


def _requester_routes(client: TestClient, auth: Any, rid: int) -> dict[str, Any]:
    """What every route the requester (alice) and another member (bob) can reach answers."""
    me = _bridge("alice", "study")
    out: dict[str, Any] = {}
    for who in ("alice", "bob"):
        h = auth[who]
        out[f"{who} REST list"] = client.get("/api/egress/requests", headers=h)
        out[f"{who} REST list of study"] = client.get(
            "/api/egress/requests?project=study", headers=h
        )
        out[f"{who} REST view"] = client.get(f"/api/egress/requests/{rid}", headers=h)
        out[f"{who} REST review"] = client.get(f"/api/egress/requests/{rid}/review", headers=h)
        out[f"{who} REST released"] = client.get(f"/api/egress/requests/{rid}/released", headers=h)
        out[f"{who} notifications"] = client.get("/api/egress/notifications", headers=h)
        out[f"{who} UI list"] = client.get("/ui/egress/", headers=_browser(client, who))
        out[f"{who} UI page"] = client.get(
            f"/ui/egress/requests/{rid}", headers=_browser(client, who)
        )
        out[f"{who} UI page (hub prefix)"] = client.get(
            f"/services/hdh/ui/egress/requests/{rid}", headers=_browser(client, who)
        )
    out["bridge list"] = client.get("/api/bridge/egress/requests", headers=me)
    out["bridge view"] = client.get(f"/api/bridge/egress/requests/{rid}", headers=me)
    return out


def _assert_nothing_comes_back(answers: dict[str, Any]) -> None:
    leaked = {
        route: _leaks(r.text) for route, r in answers.items() if _leaks(r.text)
    }  # fmt: skip
    assert leaked == {}, leaked
    review = [k for k in answers if k.endswith("REST review")]
    for route in review:  # the review page is refused to members, with a one-line reason
        r = answers[route]
        assert r.status_code == 403, (route, r.text)
        assert "reviewers" in r.json()["detail"] and "\n" not in r.json()["detail"]
    for route in [k for k in answers if "UI page" in k]:
        assert answers[route].status_code == 200, route
        assert "shown to the reviewers only" in answers[route].text


def test_a_draft_with_data_in_a_notebook_is_never_rendered_to_the_requester(world: Any) -> None:
    client, hub, auth = world
    me = _bridge("alice", "study")
    created = _ok(
        client.post("/api/bridge/egress/requests", json={"title": "my analysis"}, headers=me), 201
    )
    rid = created["id"]
    answers = {"bridge create": created}
    for path, role in (("nb/data.ipynb", "code"), ("out/table.csv", "output")):
        r = client.post(
            f"/api/bridge/egress/requests/{rid}/files",
            json={"path": path, "role": role},
            headers=me,
        )
        answers[f"bridge add {path}"] = _ok(r, 201)
    assert airlock.state(hub, rid) == "draft"
    routes = _requester_routes(client, auth, rid)
    _assert_nothing_comes_back(routes)
    assert not any(_leaks(json.dumps(a)) for a in answers.values())
    # the administrator sees the draft rendered (reviewers see no draft at all)
    page = client.get(f"/api/egress/requests/{rid}/review", headers=auth["ada"])
    assert page.status_code == 200 and "base64 of the notebook" in _leaks(page.text)
    assert client.get(f"/api/egress/requests/{rid}/review", headers=auth["rita"]).status_code == 404


def test_submitted_and_decided_requests_stay_unrendered_for_members(world: Any) -> None:
    client, hub, auth = world
    me = _bridge("alice", "study")
    rid = _ok(client.post("/api/bridge/egress/requests", json={"title": "t"}, headers=me), 201)[
        "id"
    ]
    for path, role in (("nb/data.ipynb", "code"), ("out/table.csv", "output")):
        _ok(client.post(f"/api/bridge/egress/requests/{rid}/files",
                        json={"path": path, "role": role}, headers=me), 201)  # fmt: skip
    submitted = _ok(client.post(f"/api/bridge/egress/requests/{rid}/submit", json={}, headers=me))
    assert _leaks(json.dumps(submitted)) == []
    [table] = [f for f in submitted["files"] if f["path"] == "out/table.csv"]
    report = table["check_report"]
    # the requester learns that and where (row) the checks flagged, never the values
    assert table["check_status"] == "fail" and report["redacted"] is True
    assert report["flag_counts"] == {"formula-injection": 1, "threshold": 1}
    assert {json.dumps(f["location"]) for f in report["flags"]} <= {
        '{"row": 1}', '{"row": 3}', '{"row": 4}', "{}"
    }  # fmt: skip
    assert "shown to the reviewers only" in describe(submitted)
    _assert_nothing_comes_back(_requester_routes(client, auth, rid))
    # reviewers and the administrator keep the rendering and the full check report
    for who in ("rita", "ada"):
        page = client.get(f"/api/egress/requests/{rid}/review", headers=auth[who])
        assert page.status_code == 200, page.text
        assert {"base64 of the notebook", LABEL, FORMULA} <= set(_leaks(page.text)), who
        ui = client.get(f"/ui/egress/requests/{rid}", headers=_browser(client, who))
        assert "base64 of the notebook" in _leaks(ui.text), who
        view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth[who]))
        assert LABEL in json.dumps(view), who
    # once decided (returned), members still get no rendering
    airlock.vote_all(hub, rid, "changes")
    with hub.transaction() as s:
        m.return_request(s, rid, actor=airlock.RITA, reason="please round")
    _assert_nothing_comes_back(_requester_routes(client, auth, rid))


def test_the_cli_html_page_of_a_member_renders_nothing(world: Any) -> None:
    """``hdh egress show --as alice --html`` builds the page from the member's view."""
    _client, hub, _auth = world
    rid = airlock.draft(hub, ("nb/data.ipynb", "code"), ("out/table.csv", "output"))
    airlock.submit(hub, rid)
    read: list[str] = []

    def blob(sha256: str) -> bytes | None:
        read.append(sha256)
        return blob_path(hub.data_dir.egress_blobs, sha256).read_bytes()

    with hub.sessions() as s:
        page = review_page(m.get_request(s, rid, actor=airlock.ALICE), blob)
        assert _leaks(page) == [] and read == []
        page = review_page(m.get_request(s, rid, actor=airlock.RITA), lambda _: None)
        assert LABEL in page  # the reviewer's checks show the flagged cell


# --- request fields ---------------------------------------------------------------------------


def _counts(hub: Any) -> tuple[int, int]:
    with hub.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(EgressRequest)) or 0,
            s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def _refused(r: Any, words: str, status: int = 422) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail, detail
    assert words in detail, detail


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("x" * 201, "title: String should have at most 200 characters"),
        ("line one\nline two", "title: must be one line"),
        ("a\x1b[31mred", "title: must be one line"),
        ("", "title: String should have at least 1 character"),
    ],
)
def test_a_long_or_multiline_title_is_refused_and_nothing_is_stored(
    world: Any, title: str, words: str
) -> None:
    client, hub, auth = world
    before = _counts(hub)
    _refused(client.post("/api/bridge/egress/requests", json={"title": title},
                         headers=_bridge("alice", "study")), words)  # fmt: skip
    _refused(client.post("/api/egress/requests", json={"project": "study", "title": title},
                         headers=auth["alice"]), words)  # fmt: skip
    assert _counts(hub) == before


LONG = "y" * 1001


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"controls": LONG}, "controls: String should have at most 1000 characters"),
        ({"controls": "ok\x00"}, "controls: must not hold control characters"),
        ({"context": LONG}, "context: String should have at most 1000 characters"),
        ({"context": {"description": LONG}}, "context.description: String should have at most"),
        ({"context": {"population": "p" * 201}}, "context.population: String should have at most"),
        ({"context": {"population": "a\nb"}}, "context.population: must be one line"),
        ({"context": {"variables": ["v"] * 51}}, "context.variables: List should have at most 50"),
        ({"context": {"variables": ["v" * 65]}}, "context.variables.0: String should have at most"),
        (
            {"context": {"degrees_of_freedom": 10**12}},
            "context.degrees_of_freedom: Input should be",
        ),
        ({"context": {"degrees_of_freedom": "3"}}, "context.degrees_of_freedom: Input should be"),
        ({"context": {"secret": "x"}}, "context.secret: Extra inputs are not permitted"),
        (  # each field within its bound, but too much text in all: the domain's check
            {"context": {"population": "p" * 200, "description": "d" * 900}},
            "the context holds 1100 characters of text, more than 1000 in all",
        ),
        ({"path": "out/" + "t" * 252 + ".csv"}, "path: String should have at most 255"),
        ({"path": "out/t\n.csv"}, "path: must be one line"),
    ],
)
def test_long_or_untyped_file_fields_are_refused_and_nothing_is_stored(
    world: Any, body: dict[str, Any], words: str
) -> None:
    client, hub, auth = world
    me = _bridge("alice", "study")
    rid = _ok(client.post("/api/bridge/egress/requests", json={"title": "t"}, headers=me), 201)[
        "id"
    ]
    before = _counts(hub)
    full = {"path": "out/table.csv", "role": "output", **body}
    _refused(client.post(f"/api/bridge/egress/requests/{rid}/files", json=full, headers=me), words)
    _refused(client.post(f"/api/egress/requests/{rid}/files", json=full, headers=auth["alice"]),
             words)  # fmt: skip
    assert _counts(hub) == before
    assert _ok(client.get(f"/api/bridge/egress/requests/{rid}", headers=me))["files"] == []


def test_a_long_withdrawal_reason_is_refused_through_the_bridge(world: Any) -> None:
    client, hub, _auth = world
    me = _bridge("alice", "study")
    rid = _ok(client.post("/api/bridge/egress/requests", json={"title": "t"}, headers=me), 201)[
        "id"
    ]
    before = _counts(hub)
    _refused(client.post(f"/api/bridge/egress/requests/{rid}/withdraw", json={"reason": LONG},
                         headers=me), "reason: String should have at most 1000")  # fmt: skip
    assert _counts(hub) == before and airlock.state(hub, rid) == "draft"


def test_the_domain_refuses_the_same_fields_for_every_caller(hub: Any) -> None:
    """The CLI and any other caller of the workflow meet the same bounds."""
    ws = airlock.setup(hub)
    airlock.write(ws, "t.csv")
    rid = airlock.draft(hub)
    with hub.sessions() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    cases: list[dict[str, Any]] = [
        {"controls": LONG},
        {"context": {"description": LONG}},
        {"context": {"population": "a\nb"}},
        {"context": {"variables": ["v"] * 51}},
        {"context": {"degrees_of_freedom": 10**12}},
        {"context": {"population": "p" * 200, "description": "d" * 900}},
    ]
    for kwargs in cases:
        with hub.transaction() as s, pytest.raises(InvalidFile):
            m.add_file(s, hub.data_dir, rid, "t.csv", role="output", actor=airlock.ALICE, **kwargs)
    for path in ("t" * 256, "t.csv\n"):
        with hub.transaction() as s, pytest.raises(InvalidFile, match="path"):
            m.add_file(s, hub.data_dir, rid, path, role="output", actor=airlock.ALICE)
    for title in ("x" * 201, "two\nlines"):
        with hub.transaction() as s, pytest.raises(InvalidFile, match="title"):
            m.create_request(s, "study", title=title, actor=airlock.ALICE)
    with hub.transaction() as s, pytest.raises(InvalidFile, match="reason"):
        m.withdraw(s, rid, actor=airlock.ALICE, reason=LONG)
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert airlock.state(hub, rid) == "draft"


# --- daily quotas -------------------------------------------------------------------------------


def test_daily_quotas_of_requests_and_file_additions(world: Any) -> None:
    client, hub, auth = world
    (hub.data_dir.root / "airlock.toml").write_text(
        "[limits]\nmax_requests_per_day = 2\nmax_file_additions_per_day = 3\n"
    )
    settings = airlock_settings.load_settings(hub.data_dir)
    assert settings.quotas == airlock_settings.Quotas(2, 3)
    assert settings.to_dict()["limits"]["max_requests_per_day"] == 2
    me = _bridge("alice", "study")
    first = _ok(client.post("/api/bridge/egress/requests", json={"title": "a"}, headers=me), 201)
    _ok(client.post("/api/egress/requests", json={"project": "study", "title": "b"},
                    headers=auth["alice"]), 201)  # fmt: skip
    before = _counts(hub)
    _refused(client.post("/api/bridge/egress/requests", json={"title": "c"}, headers=me),
             "daily quota of 2", 429)  # fmt: skip
    _refused(client.post("/api/egress/requests", json={"project": "study", "title": "c"},
                         headers=auth["bob"]), "daily quota of 2", 429)  # fmt: skip
    assert _counts(hub) == before
    # additions and replacements count, in any request of the project; removing does not undo
    url = f"/api/bridge/egress/requests/{first['id']}/files"
    for _ in range(3):
        _ok(client.post(url, json={"path": "out/table.csv"}, headers=me), 201)
    before = _counts(hub)
    _refused(client.post(url, json={"path": "nb/data.ipynb"}, headers=me),
             "already added or replaced 3 files", 429)  # fmt: skip
    assert _counts(hub) == before
    # another project's quota is its own
    airlock.write(hub.data_dir.workspace("other"), "x.csv")
    with hub.transaction() as s:
        req = m.create_request(s, "other", title="x", actor=airlock.MALLORY)
        m.add_file(s, hub.data_dir, req.id, "x.csv", role="output", actor=airlock.MALLORY)


def test_quotas_default_and_the_domains_quota_error_is_a_limit(hub: Any) -> None:
    quotas = airlock_settings.Quotas
    assert quotas(max_requests_per_day=20, max_file_additions_per_day=200) == (
        airlock_settings.DEFAULT_QUOTAS
    )
    assert issubclass(m.QuotaExceeded, LimitExceeded) and m.QuotaExceeded.http_status == 429
    airlock.setup(hub)
    one = quotas(max_requests_per_day=1, max_file_additions_per_day=1)
    with hub.transaction() as s:
        m.create_request(s, "study", title="a", actor=airlock.ALICE, quotas=one)
    with hub.transaction() as s, pytest.raises(m.QuotaExceeded, match="study"):
        m.create_request(s, "study", title="b", actor=airlock.BOB, quotas=one)


def test_a_redacted_report_keeps_no_text_of_the_file() -> None:
    report = {
        "name": f"{LABEL}.csv",
        "kind": "table",
        "status": "fail",
        "summary": "table: 3 flag(s)",
        "evidence": "acro",
        "error": f"the automated checks could not run: ValueError: {FORMULA}",
        "flags": [
            {
                "rule": "threshold",
                "message": f"count 3 ({LABEL})",
                "severity": "fail",
                "location": {"row": 2, "column": COLUMN, "labels": {"region": LABEL}},
            },
            {
                "rule": f"acro-{COLUMN}",
                "message": "x",
                "severity": "review",
                "location": {"acro_cell": [1, 2], "row": True},
            },
            {
                "rule": "threshold",
                "message": "1,234 more threshold flag(s) not listed",
                "severity": "fail",
                "location": {},
            },
        ],  # fmt: skip
    }
    out = m.requester_report(report)
    assert out is not None and _leaks(json.dumps(out)) == []
    assert out["flag_counts"] == {"threshold": 2, "other": 1}
    assert [f["location"] for f in out["flags"]] == [{"row": 2}, {}, {}]
    assert out["flags"][2]["message"] == "1,234 more threshold flag(s) not listed"
    assert re.fullmatch(r"table: 3 flag\(s\): threshold x2, other x1", out["summary"])
    assert out["status"] == "fail" and out["evidence"] == "acro" and "name" not in out
    assert m.requester_report(None) is None
