"""The review widget's control plane, through the real app (the hub's OAuth session lookup
replaced by a cookie naming the user, ``test_api._HubLogin``; the real hub is in
``tests/api/test_review_browser_api.py``).

``GET <prefix>ui/api/session`` says who the browser is (401 JSON with ``login_url``, never a
redirect); the airlock's JSON API takes the pages' cookie under the service prefix only with
that session's ``X-HDH-Token`` (a cookie alone, a wrong or another session's token: 401,
nothing changes), never directly on the API port, never on other routes nor the bridge's;
the queue tells each reviewer what awaits them and who voted (names, never decisions); one
file's rendering is a sandboxed, framable-by-the-lab document of inert HTML, for the
request's reviewers and administrators only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.egress.snapshot import blob_path
from jupyterlab_hdh.governance import accounts
from tests.egress import airlock
from tests.egress.test_api import TOKEN, _bridge, _draft, _HubLogin, _ok, _world
from tests.egress.test_render import SAFE_IMG_SRC, XSS, _hostile_notebook, inspect

PREFIX = "/services/hdh/"
API = f"{PREFIX}api/egress/requests"
CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'sha256-{}'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


@pytest.fixture
def site(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, dict[str, str]]]]:
    auth = _world(hub)
    with hub.transaction() as s:
        accounts.create_user(s, "ada", "admin", actor="test")
    app = create_app(hub.data_dir, bridge_token=TOKEN, browser_auth=_HubLogin())
    with TestClient(app) as client:
        yield client, hub, auth


def cookie(who: str) -> dict[str, str]:
    return {"Cookie": f"hdh-session={who}"}


def session(client: TestClient, who: str) -> dict[str, Any]:
    r = client.get(f"{PREFIX}ui/api/session", headers=cookie(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def browser(client: TestClient, who: str) -> dict[str, str]:
    """What the widget sends: the hub cookie and the session's token."""
    return {**cookie(who), "X-HDH-Token": session(client, who)["token"]}


def _submitted(client: TestClient, auth: Any) -> int:
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    return rid


def _refused(r: Any) -> str:
    """A 401 in the API's one JSON shape, never a redirect to a login page."""
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json" and "location" not in r.headers
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return str(detail)


# --- the session ------------------------------------------------------------------------------


def test_the_session_says_who_the_browser_is(site: Any) -> None:
    client, _hub, _auth = site
    rita = session(client, "rita")
    assert {k: rita[k] for k in ("user", "role", "may_review", "lang", "pages")} == {
        "user": "rita",
        "role": "reviewer",
        "may_review": True,
        "lang": "en",
        "pages": "/services/hdh/ui/egress/",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", rita["token"])
    assert session(client, "cora")["may_review"] is True  # committee
    assert session(client, "ada")["may_review"] is True  # administrator
    alice = session(client, "alice")
    assert (alice["role"], alice["may_review"]) == ("researcher", False)
    assert alice["token"] != rita["token"]  # one per session
    fr = client.get(
        f"{PREFIX}ui/api/session", headers={**cookie("rita"), "Accept-Language": "fr-FR,fr"}
    )
    assert fr.json()["lang"] == "fr" and fr.headers["cache-control"] == "no-store"


def test_without_a_session_it_is_401_with_the_page_to_sign_in_at(site: Any) -> None:
    client, _hub, _auth = site
    r = client.get(f"{PREFIX}ui/api/session", follow_redirects=False)
    _refused(r)
    assert r.json()["login_url"] == "/services/hdh/ui/egress/"
    assert r.headers["cache-control"] == "no-store"


# --- the JSON API from the browser -----------------------------------------------------------


def test_a_reviewer_lists_views_votes_and_comments_with_cookie_and_token(site: Any) -> None:
    client, hub, auth = site
    rid = _submitted(client, auth)
    rita = browser(client, "rita")
    [row] = _ok(client.get(API, headers=rita))
    assert row["id"] == rid and row["awaiting_me"] is True and row["reviewers"] == []
    view = _ok(client.get(f"{API}/{rid}", headers=rita))
    assert view["viewer"] == "reviewer" and view["files"][0]["path"] == "out/table.csv"
    _ok(
        client.post(
            f"{API}/{rid}/comments",
            json={"body": "looks fine", "visibility": "private"},
            headers=rita,
        ),
        201,
    )
    vote = {"path": "out/table.csv", "decision": "approve", "exception_reason": "counts > 100"}
    result = _ok(client.post(f"{API}/{rid}/votes", json=vote, headers=rita), 201)
    assert result["state"] == "partially_reviewed"
    raj = browser(client, "raj")
    _ok(client.post(f"{API}/{rid}/votes", json=vote, headers=raj), 201)
    done = _ok(client.post(f"{API}/{rid}/approve", json={}, headers=raj))
    assert done["state"] == "approved" and done["decided_by"] == "raj"
    assert airlock.state(hub, rid) == "approved"
    # the bearer token keeps working, under the prefix too
    assert _ok(client.get(f"{API}/{rid}", headers=auth["rita"]))["state"] == "approved"
    assert _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["rita"]))["id"] == rid


def test_a_cookie_without_the_sessions_token_changes_nothing(site: Any) -> None:
    """CSRF: a page of another site can make the browser send the cookie, never the header
    (nor read the session's token): every such request is refused before any step."""
    client, hub, auth = site
    rid = _submitted(client, auth)
    vote = {"path": "out/table.csv", "decision": "approve"}
    rita_token = session(client, "rita")["token"]
    raj_token = session(client, "raj")["token"]
    forged = {
        "cookie alone": cookie("rita"),
        "empty token": {**cookie("rita"), "X-HDH-Token": ""},
        "wrong token": {**cookie("rita"), "X-HDH-Token": "0" * 64},
        "another session's token": {**cookie("rita"), "X-HDH-Token": raj_token},
        "token without cookie": {"X-HDH-Token": rita_token},
    }
    for why, headers in forged.items():
        for method, url, body in (
            ("GET", API, None),
            ("GET", f"{API}/{rid}", None),
            ("POST", f"{API}/{rid}/votes", vote),
            ("POST", f"{API}/{rid}/comments", {"body": "forged", "visibility": "public"}),
            ("POST", f"{API}/{rid}/reject", {"reason": "forged"}),
        ):
            r = client.request(method, url, json=body, headers=headers, follow_redirects=False)
            assert r.status_code == 401, (why, method, url, r.text)
            _refused(r)
    assert "X-HDH-Token" in _refused(client.get(API, headers=cookie("rita")))
    assert "does not match" in _refused(
        client.get(API, headers={**cookie("rita"), "X-HDH-Token": raj_token})
    )
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["rita"]))
    assert view["state"] == "submitted" and view["files"][0]["vote_count"] == 0
    assert view["comments"] == []


def test_direct_requests_and_other_routes_stay_bearer_only(site: Any) -> None:
    client, _hub, auth = site
    rid = _submitted(client, auth)
    rita = browser(client, "rita")
    # on 127.0.0.1:PORT (no service prefix), the cookie is never looked at
    _refused(client.get("/api/egress/requests", headers=rita))
    _refused(client.get(f"/api/egress/requests/{rid}", headers=rita))
    # only the airlock's routes take a browser session
    ada = browser(client, "ada")
    for url in ("api/audit/events", "api/me/projects/study/access", "api/permits"):
        assert client.get(PREFIX + url, headers=ada).status_code == 401, url
    # the bridge's routes never take a cookie
    alice = {**browser(client, "alice"), **_bridge("alice", "study", None)}
    for url in ("api/bridge/egress/requests", "api/bridge/whoami", "api/bridge/access/snds"):
        r = client.get(PREFIX + url, headers=alice)
        assert r.status_code in (401, 403), (url, r.text)
        assert "bridge" in r.json()["detail"]
    # a bearer token decides when there is one (a bad one is not rescued by the cookie)
    r = client.get(API, headers={**rita, "Authorization": "Bearer nope"})
    assert _refused(r) == "invalid token"


def test_a_disabled_account_is_refused_as_with_a_bearer_token(site: Any) -> None:
    client, hub, auth = site
    _submitted(client, auth)
    rita = browser(client, "rita")
    with hub.transaction() as s:
        accounts.set_disabled(s, "rita", True, actor="test")
    assert "disabled" in _refused(client.get(API, headers=rita))
    r = client.get(f"{PREFIX}ui/api/session", headers=cookie("rita"))
    assert "disabled" in _refused(r)
    assert client.get(API, headers=auth["rita"]).status_code == 401


# --- the queue --------------------------------------------------------------------------------


def test_the_queue_says_what_awaits_whom_and_who_voted_never_how(site: Any) -> None:
    client, hub, auth = site
    workspace = hub.data_dir.workspace("study")
    airlock.write(workspace, "out/second.csv", "region,count\neast,130\nwest,160\n")
    rid = airlock.draft(hub, ("out/table.csv", "output"), ("out/second.csv", "output"))
    draft = airlock.draft(hub, ("out/table.csv", "output"))

    def row(who: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        rows = _ok(client.get(API, headers=headers or browser(client, who)))
        return next(r for r in rows if r["id"] == rid)

    before = row("alice", auth["alice"])
    assert before["submitted_at"] is None and before["awaiting_me"] is False
    airlock.submit(hub, rid)
    first = row("rita")
    assert first["awaiting_me"] is True and first["reviewers"] == []
    assert first["submitted_at"] is not None and first["submitted_at"] >= first["created_at"]
    vote = {"path": "out/table.csv", "decision": "reject"}
    _ok(client.post(f"{API}/{rid}/votes", json=vote, headers=browser(client, "rita")), 201)
    assert row("rita")["awaiting_me"] is True  # out/second.csv still awaits her vote
    _ok(
        client.post(
            f"{API}/{rid}/votes",
            json={"path": "out/second.csv", "decision": "changes"},
            headers=browser(client, "rita"),
        ),
        201,
    )
    rita, raj, cora = row("rita"), row("raj"), row("cora")
    assert rita["awaiting_me"] is False and raj["awaiting_me"] is True
    assert rita["reviewers"] == raj["reviewers"] == cora["reviewers"] == ["rita"]
    for r in (rita, raj, cora):
        assert "reject" not in repr(r) and "changes" not in repr(r)  # never a decision
    # administrators see who voted (they vote on nothing); members see no reviewers
    ada = row("ada")
    assert ada["reviewers"] == ["rita"] and ada["awaiting_me"] is False
    for member in ("alice", "bob"):
        mine = row(member, auth[member])
        assert mine["reviewers"] == [] and mine["awaiting_me"] is False
        assert mine["submitted_at"] == rita["submitted_at"]
    # raj takes the table, cora the second file: each file has two votes, nobody awaits
    _ok(client.post(f"{API}/{rid}/votes", json=vote, headers=browser(client, "raj")), 201)
    assert row("cora")["awaiting_me"] is True  # table.csv is full, second.csv is not
    _ok(
        client.post(
            f"{API}/{rid}/votes",
            json={"path": "out/second.csv", "decision": "changes"},
            headers=browser(client, "cora"),
        ),
        201,
    )
    assert row("raj")["awaiting_me"] is False and row("cora")["reviewers"] == [
        "cora",
        "raj",
        "rita",
    ]
    # a draft is nobody's to review and was never submitted
    drafts = [r for r in _ok(client.get(API, headers=auth["alice"])) if r["id"] == draft]
    assert drafts[0]["submitted_at"] is None and drafts[0]["reviewers"] == []
    # a resubmission starts a new round: a later submitted_at, the approvals kept count
    _ok(client.post(f"{API}/{rid}/return", json={"reason": "redo"}, headers=browser(client, "raj")))
    airlock.submit(hub, rid)
    again = row("rita")
    assert again["submitted_at"] > rita["submitted_at"] and again["reviewers"] == []
    assert again["awaiting_me"] is True and again["state"] == "submitted"


# --- one file's rendering ---------------------------------------------------------------------


def _render(client: TestClient, rid: int, path: str, who: str) -> Any:
    return client.get(
        f"{PREFIX}ui/egress/requests/{rid}/render", params={"path": path}, headers=cookie(who)
    )


def _hostile_request(client: TestClient, hub: Any) -> tuple[int, dict[str, str]]:
    workspace = hub.data_dir.workspace("study")
    files = {
        "out/page.html": "<h2>Results</h2>" + "".join(XSS),
        "out/figure.svg": (
            '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            '<image href="https://evil.example/x.png"/><script>alert(2)</script></svg>'
        ),
    }
    for name, text in files.items():
        airlock.write(workspace, name, text)
    (workspace / "out" / "analysis.ipynb").write_bytes(_hostile_notebook())
    rid = airlock.draft(
        hub,
        ("out/table.csv", "output"),
        ("out/page.html", "supporting"),
        ("out/figure.svg", "supporting"),
        ("out/analysis.ipynb", "code"),
    )
    airlock.submit(hub, rid)
    return rid, files


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values += [v or "" for _k, v in attrs]


def attribute_values(html: str) -> list[str]:
    """Every attribute value of every element, as a browser reads them."""
    p = _Attributes()
    p.feed(html)
    p.close()
    return p.values


def _inert_document(r: Any) -> str:
    """The body of a rendered document, after checking its head holds nothing but its one
    inline style, the one the CSP allows by hash (exactly the contract's CSP)."""
    head, _, body = r.text.partition("<body>")
    tags = re.findall(r"<([!a-zA-Z][^\s>]*)", head)
    assert tags == ["!DOCTYPE", "html", "head", "meta", "title", "style"], tags
    [style] = re.findall(r"<style>(.*?)</style>", head, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert r.headers["content-security-policy"] == CSP.format(digest)
    assert body.endswith("</body></html>")
    return str(body.removesuffix("</body></html>"))


def test_a_file_is_rendered_for_the_frame_under_exactly_the_contracts_headers(site: Any) -> None:
    client, hub, auth = site
    rid = _submitted(client, auth)
    r = _render(client, rid, "out/table.csv", "rita")
    assert r.status_code == 200, r.text
    body = _inert_document(r)  # the CSP, exactly
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"].startswith("text/html")
    assert "north" in body and "120" in body and "<table" in body
    # the other pages still refuse any frame
    page = client.get(f"{PREFIX}ui/egress/requests/{rid}", headers=cookie("rita"))
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # in the pages' language
    fr = client.get(
        f"{PREFIX}ui/egress/requests/{rid}/render",
        params={"path": "out/table.csv"},
        headers={**cookie("ada"), "Accept-Language": "fr"},
    )
    assert fr.status_code == 200 and '<html lang="fr">' in fr.text and "octets" in fr.text


def test_hostile_html_svg_and_notebook_come_out_inert(site: Any) -> None:
    client, hub, _auth = site
    rid, _files = _hostile_request(client, hub)
    for path in ("out/page.html", "out/figure.svg", "out/analysis.ipynb"):
        r = _render(client, rid, path, "raj")
        assert r.status_code == 200, (path, r.text[:300])
        body = _inert_document(r)
        problems, _text = inspect(body)
        assert problems == [], (path, problems)
        assert "<script" not in body.lower()
        urls = [
            v
            for v in attribute_values(body)
            if re.search(r"(?i)(^\s*//|[a-z]+:)", v) and not SAFE_IMG_SRC.match(v)
        ]
        assert urls == [], (path, urls)  # no URL in any attribute but a data: PNG/JPEG
    page = _render(client, rid, "out/page.html", "raj").text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page  # the source, as text
    svg = _render(client, rid, "out/figure.svg", "raj").text
    assert "SVG is shown as its source, never rendered" in svg and "<svg" not in svg


def test_only_the_requests_reviewers_and_administrators_get_a_rendering(site: Any) -> None:
    client, hub, auth = site
    rid = _submitted(client, auth)
    for who in ("rita", "cora", "ada"):
        assert _render(client, rid, "out/table.csv", who).status_code == 200, who
    for who, status in (("alice", 403), ("bob", 403), ("mallory", 404), ("dan", 404)):
        r = _render(client, rid, "out/table.csv", who)
        assert r.status_code == status, (who, r.text[:300])
        assert "north" not in r.text and "<script" not in r.text
        # the refusal is shown in the lab's frame too, and still runs nothing
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
        assert "script-src" not in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert (
        "reviewers and administrators only" in _render(client, rid, "out/table.csv", "alice").text
    )
    # without a session: to the hub's login, as every page
    anonymous = client.get(
        f"{PREFIX}ui/egress/requests/{rid}/render",
        params={"path": "out/table.csv"},
        follow_redirects=False,
    )
    assert anonymous.status_code == 302


def test_an_unknown_path_is_404_and_a_lost_snapshot_410(site: Any) -> None:
    client, hub, auth = site
    rid = _submitted(client, auth)
    for path in ("out/nope.csv", "", "../out/table.csv", "analysis.py/"):
        r = _render(client, rid, path, "rita")
        assert r.status_code == 404, (path, r.text[:300])
    assert "has no file" in _render(client, rid, "out/nope.csv", "rita").text
    assert _render(client, 999, "out/table.csv", "rita").status_code == 404
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["rita"]))
    sha = next(f["sha256"] for f in view["files"] if f["path"] == "out/table.csv")
    blob_path(hub.data_dir.egress_blobs, sha).unlink()
    r = _render(client, rid, "out/table.csv", "rita")
    assert r.status_code == 410 and "snapshot of 'out/table.csv' is missing" in unescape(r.text)


def test_a_project_member_cannot_use_a_browser_session(site: Any) -> None:
    """A researcher reaches the airlock from her sandbox (the bridge binds the project): a
    browser session would let a script in her lab page write to another project's request."""
    client, _hub, auth = site
    rid = _submitted(client, auth)
    alice = browser(client, "alice")
    assert session(client, "alice")["may_review"] is False
    for r in (
        client.get(API, headers=alice),
        client.get(f"{API}/{rid}", headers=alice),
        client.post(API, headers=alice, json={"project": "study", "title": "From a script"}),
        client.post(f"{API}/{rid}/comments", headers=alice, json={"body": "x"}),
    ):
        assert r.status_code == 403, (r.status_code, r.text)
        assert "for reviewers" in r.json()["detail"]
    # her bearer token (scripts, the CLI) is untouched
    assert client.get(API, headers=auth["alice"]).status_code == 200


def test_a_reviewer_reads_the_projects_audited_code_from_the_browser(site: Any) -> None:
    """The review widget's "Audited code of project …": the same route and rules as a
    bearer token, through the browser session (reviewers and administrators only)."""
    client, _hub, auth = site
    _submitted(client, auth)
    code = f"{PREFIX}api/projects/study/audit/code"
    rita = browser(client, "rita")
    page = _ok(client.get(code, headers=rita))
    assert page["project"] == "study" and "chain" in page
    assert (
        _ok(client.get(f"{PREFIX}api/audit/code", headers=browser(client, "ada")))["events"] == []
    )
    assert "needs admin" in client.get(f"{PREFIX}api/audit/code", headers=rita).json()["detail"]
    # the cookie alone still never authenticates, and a member gets no browser session
    assert "X-HDH-Token" in _refused(client.get(code, headers=cookie("rita")))
    assert client.get(code, headers=browser(client, "alice")).status_code == 403
    # other project routes stay bearer-only
    assert client.get(f"{PREFIX}api/projects/study", headers=rita).status_code == 401


def test_listing_the_queue_costs_the_same_few_queries_for_one_or_many_requests(
    site: Any,
) -> None:
    """The widget polls the queue: its fields must not cost queries per request."""
    from sqlalchemy import event

    from jupyterlab_hdh.egress import manager
    from jupyterlab_hdh.governance.projects import Actor

    client, hub, auth = site

    def queries_to_list() -> tuple[int, int]:
        seen: list[str] = []

        def count(*_args: Any) -> None:
            seen.append("q")

        event.listen(hub.engine, "before_cursor_execute", count)
        try:
            with hub.sessions() as s:
                rows = manager.list_requests(s, actor=Actor("rita", "reviewer"))
        finally:
            event.remove(hub.engine, "before_cursor_execute", count)
        return len(rows), len(seen)

    _submitted(client, auth)
    one, few = queries_to_list()
    for _ in range(4):
        _submitted(client, auth)
    many, more = queries_to_list()
    assert (one, many) == (1, 5)
    assert more == few, (few, more)
