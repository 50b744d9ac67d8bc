"""The airlock's REST API end to end (both store backends): a researcher submits, two
reviewers vote, the requester downloads; refusals are one-line HTTP errors; the reviewer page
is inert; sandboxes reach only their own project's requests through the bridge routes."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import nbformat
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.browser import BrowserUser, HubBrowserAuth, NotLoggedIn
from jupyterlab_hdh.egress import manager
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.store.models import User
from tests.egress import airlock

TOKEN = "t" * 64


def _world(hub: Any) -> dict[str, dict[str, str]]:
    """The airlock's users and projects, two workspace files, and each user's API headers."""
    workspace = airlock.setup(hub)
    airlock.write(workspace, "out/table.csv", "region,count\nnorth,120\nsouth,140\n")
    airlock.write(workspace, "analysis.py", "print('made table.csv')\n")
    auth = {}
    with hub.transaction() as s:
        for name in airlock.USERS:
            user = s.scalar(select(User).where(User.name == name))
            token = accounts.issue_token(s, user, actor="test")
            auth[name] = {"Authorization": f"Bearer {token}"}
    return auth


@pytest.fixture
def api(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, dict[str, str]]]]:
    auth = _world(hub)
    with TestClient(create_app(hub.data_dir, bridge_token=TOKEN)) as client:
        yield client, hub, auth


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content and "json" in r.headers.get("content-type", "") else r


def _draft(client: TestClient, auth: Any) -> int:
    req = _ok(
        client.post(
            "/api/egress/requests",
            json={"project": "study", "title": "Table 1"},
            headers=auth["alice"],
        ),
        201,
    )
    assert (req["state"], req["author"], req["project"]) == ("draft", "alice", "study")
    f = _ok(
        client.post(
            f"/api/egress/requests/{req['id']}/files",
            json={
                "path": "out/table.csv",
                "role": "output",
                "context": {"population": "adults", "variables": ["region"]},
                "controls": "none needed",
            },
            headers=auth["alice"],
        ),
        201,
    )
    assert f["path"] == "out/table.csv" and len(f["sha256"]) == 64
    _ok(
        client.post(
            f"/api/egress/requests/{req['id']}/files",
            json={"path": "analysis.py", "role": "code"},
            headers=auth["alice"],
        ),
        201,
    )
    return int(req["id"])


def _vote(client: TestClient, auth: Any, rid: int, who: str, decision: str = "approve") -> Any:
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth[who]))
    [out] = [f for f in view["files"] if f["role"] == "output"]
    body: dict[str, Any] = {"path": out["path"], "decision": decision}
    if decision == "approve" and out["check_status"] == "fail":
        body["exception_reason"] = "counts well above threshold, checked by hand"
    return client.post(f"/api/egress/requests/{rid}/votes", json=body, headers=auth[who])


def test_submit_vote_release_download(api: Any) -> None:
    client, hub, auth = api
    rid = _draft(client, auth)
    submitted = _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    assert submitted["state"] == "submitted"
    assert all(f["check_status"] in ("pass", "fail", "review") for f in submitted["files"])
    assert _ok(_vote(client, auth, rid, "rita"), 201)["state"] == "partially_reviewed"
    # blinded: raj does not see rita's vote before voting himself
    raj_view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["raj"]))
    [out] = [f for f in raj_view["files"] if f["role"] == "output"]
    assert out["vote_count"] == 1 and out["votes"] == []
    assert _ok(_vote(client, auth, rid, "raj"), 201)["state"] == "reviewed"
    approved = _ok(client.post(f"/api/egress/requests/{rid}/approve", headers=auth["rita"]))
    assert approved["state"] == "approved"
    released = _ok(client.post(f"/api/egress/requests/{rid}/release", headers=auth["raj"]))
    assert released["state"] == "released" and released["release_complete"] is True

    files = _ok(client.get(f"/api/egress/requests/{rid}/released", headers=auth["alice"]))
    assert [f["path"] for f in files] == ["out/table.csv"]
    name = files[0]["name"]
    for member in ("alice", "bob"):
        r = client.get(f"/api/egress/requests/{rid}/released/{name}", headers=auth[member])
        assert r.status_code == 200
        assert r.content == b"region,count\nnorth,120\nsouth,140\n"
        assert r.headers["content-disposition"].startswith("attachment;")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-type"] == "application/octet-stream"
    # reviewers, other projects' members and anonymous callers get nothing
    for outsider in ("rita", "mallory"):
        r = client.get(f"/api/egress/requests/{rid}/released/{name}", headers=auth[outsider])
        assert r.status_code == 404, r.text
    assert client.get(f"/api/egress/requests/{rid}/released/{name}").status_code == 401
    r = client.get(
        f"/api/egress/requests/{rid}/released/..%2F..%2Fhdh.sqlite", headers=auth["alice"]
    )
    assert r.status_code == 404

    # the requester was notified of each decision, and can mark them read
    notes = _ok(client.get("/api/egress/notifications?unread=true", headers=auth["alice"]))
    assert {"approved", "released"} <= {n["kind"] for n in notes}
    assert _ok(client.post("/api/egress/notifications/read", headers=auth["alice"]))[
        "marked"
    ] == len(notes)
    assert _ok(client.get("/api/egress/notifications?unread=true", headers=auth["alice"])) == []
    # the reviewers were told there was something to review
    assert any(
        n["kind"] == "submitted"
        for n in _ok(client.get("/api/egress/notifications", headers=auth["raj"]))
    )


def test_refusals_are_one_line_http_errors_and_change_nothing(api: Any) -> None:
    client, hub, auth = api
    rid = _draft(client, auth)

    def refused(r: Any, status: int, words: str) -> None:
        assert r.status_code == status, r.text
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
        assert words in detail, detail

    refused(client.get("/api/egress/requests/999", headers=auth["alice"]), 404, "#999")
    # an id past the store's integers is as unknown, never a database overflow (500)
    huge = 2**63
    refused(client.get(f"/api/egress/requests/{huge}", headers=auth["alice"]), 404, "no egress")
    refused(
        client.post(f"/api/egress/requests/{huge}/submit", headers=auth["alice"]), 404, "no egress"
    )
    refused(
        client.get(f"/api/egress/requests/{huge}/released", headers=auth["alice"]), 404, "no egress"
    )
    refused(client.get(f"/api/egress/requests/{rid}", headers=auth["mallory"]), 404, "no egress")
    refused(  # a reviewer does not see a draft
        client.get(f"/api/egress/requests/{rid}", headers=auth["rita"]), 404, "no egress"
    )
    refused(
        client.post(
            f"/api/egress/requests/{rid}/files",
            json={"path": "../other/secret.csv"},
            headers=auth["alice"],
        ),
        422,
        "",
    )
    refused(
        client.post(
            f"/api/egress/requests/{rid}/files",
            json={"path": "out/table.csv"},
            headers=auth["bob"],  # a member, but not the author
        ),
        403,
        "author",
    )
    refused(
        client.post("/api/egress/requests", json={"project": "study", "title": "x"},
                    headers=auth["mallory"]),
        403,
        "not a member",
    )  # fmt: skip
    refused(client.post(f"/api/egress/requests/{rid}/approve", headers=auth["rita"]), 404, "")
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    refused(client.post(f"/api/egress/requests/{rid}/approve", headers=auth["rita"]), 409, "")
    r = client.post(
        f"/api/egress/requests/{rid}/votes",
        json={"path": "out/table.csv", "decision": "approve", "exception_reason": "mine"},
        headers=auth["bob"],
    )
    refused(r, 403, "bob may not vote")
    refused(
        client.post(
            f"/api/egress/requests/{rid}/votes",
            json={"path": "analysis.py", "decision": "approve"},
            headers=auth["rita"],
        ),
        422,
        "only output files are voted on",
    )
    r = client.post(
        f"/api/egress/requests/{rid}/votes",
        json={"path": "out/table.csv", "decision": "maybe"},
        headers=auth["rita"],
    )
    assert r.status_code == 422
    refused(
        client.post(f"/api/egress/requests/{rid}/files", json={"path": "analysis.py"},
                    headers=auth["alice"]),
        409,
        "submitted",
    )  # fmt: skip
    assert client.post(f"/api/egress/requests/{rid}/submit").status_code == 401
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["alice"]))
    assert view["state"] == "submitted" and all(f["vote_count"] == 0 for f in view["files"])


def test_withdraw_and_remove_file(api: Any) -> None:
    client, _hub, auth = api
    rid = _draft(client, auth)
    r = client.delete(f"/api/egress/requests/{rid}/files/analysis.py", headers=auth["alice"])
    assert r.status_code == 204
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["alice"]))
    assert [f["path"] for f in view["files"]] == ["out/table.csv"]
    out = _ok(
        client.post(
            f"/api/egress/requests/{rid}/withdraw",
            json={"reason": "wrong table"},
            headers=auth["alice"],
        )
    )
    assert out["state"] == "withdrawn"
    listed = _ok(client.get("/api/egress/requests?project=study", headers=auth["alice"]))
    assert [(x["id"], x["state"]) for x in listed] == [(rid, "withdrawn")]


def test_return_with_a_reason_reaches_the_requester(api: Any) -> None:
    client, _hub, auth = api
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    _ok(_vote(client, auth, rid, "rita", "changes"), 201)
    _ok(_vote(client, auth, rid, "raj", "changes"), 201)
    _ok(
        client.post(
            f"/api/egress/requests/{rid}/comments",
            json={"body": "SECRET-PRIVATE-NOTE", "visibility": "private"},
            headers=auth["rita"],
        ),
        201,
    )
    out = _ok(
        client.post(
            f"/api/egress/requests/{rid}/return",
            json={"reason": "round the counts to 5"},
            headers=auth["raj"],
        )
    )
    assert out["state"] == "returned"
    mine = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["alice"]))
    bodies = [c["body"] for c in mine["comments"]]
    assert "round the counts to 5" in bodies and "SECRET-PRIVATE-NOTE" not in bodies
    notes = _ok(client.get("/api/egress/notifications", headers=auth["alice"]))
    assert any("round the counts to 5" in n["body"] for n in notes)


def _hostile_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": "<img src=x onerror=alert(1)><script>alert(2)</script>shown",
                "text/plain": "SECRET-HIDDEN-ALTERNATIVE",
            },
        )
    ]
    cell.metadata["note"] = "SECRET-IN-METADATA"
    nb.cells = [cell]
    return nbformat.writes(nb)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "base", "link", "form"):
            self.found.append(tag)
        self.found.extend(f"{tag}@{a}" for a, _ in attrs if a.startswith("on") or a == "style")
        self.found.extend(
            f"{tag}@src" for a, v in attrs if a == "src" and not (v or "").startswith("data:image/")
        )


def test_review_page_is_inert_strict_and_shows_everything(api: Any) -> None:
    client, hub, auth = api
    ws = hub.data_dir.workspace("study")
    airlock.write(ws, "nb/analysis.ipynb", _hostile_notebook())
    rid = _draft(client, auth)
    _ok(
        client.post(
            f"/api/egress/requests/{rid}/files",
            json={"path": "nb/analysis.ipynb", "role": "code"},
            headers=auth["alice"],
        ),
        201,
    )
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    r = client.get(f"/api/egress/requests/{rid}/review", headers=auth["rita"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    page = r.text
    tags = _Tags()
    tags.feed(page)
    assert tags.found == []
    for shown in ("SECRET-HIDDEN-ALTERNATIVE", "SECRET-IN-METADATA", "north", "analysis.py"):
        assert shown in page, shown
    assert "alert(2)" in page  # as escaped source, not as a script
    # the one inline stylesheet is the one the CSP's hash allows
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    # members of other projects cannot open it; anonymous callers neither
    assert (
        client.get(f"/api/egress/requests/{rid}/review", headers=auth["mallory"]).status_code == 404
    )
    assert client.get(f"/api/egress/requests/{rid}/review").status_code == 401


# --- the bridge routes -------------------------------------------------------------------------


def _bridge(user: str, project: str, token: str | None = TOKEN) -> dict[str, str]:
    h = {"X-HDH-User": user, "X-HDH-Project": project}
    if token:
        h["X-HDH-Bridge"] = token
    return h


@pytest.fixture
def permitted(api: Any) -> Any:
    """alice holds an active permit for ``study`` (bridged routes re-check it)."""
    client, hub, auth = api
    airlock.grant(hub)
    return client, hub, auth


def test_bridge_create_add_submit_withdraw_as_the_sandbox(permitted: Any) -> None:
    client, _hub, auth = permitted
    me = _bridge("alice", "study")
    req = _ok(
        client.post("/api/bridge/egress/requests", json={"title": "from a notebook"}, headers=me),
        201,
    )
    rid = req["id"]
    assert (req["project"], req["author"]) == ("study", "alice")
    f = _ok(
        client.post(
            f"/api/bridge/egress/requests/{rid}/files",
            json={"path": "out/table.csv", "role": "output", "context": "all adults, 2024",
                  "controls": ""},
            headers=me,
        ),
        201,
    )  # fmt: skip
    assert f["context"] == {"description": "all adults, 2024"}  # the panel's free text
    out = _ok(client.post(f"/api/bridge/egress/requests/{rid}/submit", json={}, headers=me))
    assert out["state"] == "submitted"
    assert [x["id"] for x in _ok(client.get("/api/bridge/egress/requests", headers=me))] == [rid]
    assert _ok(client.get(f"/api/bridge/egress/requests/{rid}", headers=me))["id"] == rid
    out = _ok(client.post(f"/api/bridge/egress/requests/{rid}/withdraw", json={}, headers=me))
    assert out["state"] == "withdrawn"


def test_bridge_reaches_only_the_bridged_project_and_needs_the_token(permitted: Any) -> None:
    client, hub, auth = permitted
    rid = _draft(client, auth)  # a request of "study" by alice
    # the same user in a sandbox of another project (were she a member with a permit there)
    # must not reach it: it is 404 from there, or refused by the permit check
    r = client.get(f"/api/bridge/egress/requests/{rid}", headers=_bridge("alice", "other"))
    assert r.status_code in (403, 404), r.text
    # bob is a member of study but holds no permit: the bridge identity is refused
    r = client.get("/api/bridge/egress/requests", headers=_bridge("bob", "study"))
    assert r.status_code == 403 and r.json()["reason"] == "not_covered"
    r = client.get("/api/bridge/egress/requests", headers=_bridge("alice", "study", token=None))
    assert r.status_code == 401
    r = client.get("/api/bridge/egress/requests", headers=_bridge("alice", "study", "forged"))
    assert r.status_code == 403
    # a request of another project cannot be touched from study's sandbox
    with hub.transaction() as s:
        from jupyterlab_hdh.egress import manager

        other = manager.create_request(s, "other", title="theirs", actor=airlock.MALLORY).id
    me = _bridge("alice", "study")
    for method, path in (
        ("GET", f"/api/bridge/egress/requests/{other}"),
        ("POST", f"/api/bridge/egress/requests/{other}/files"),
        ("POST", f"/api/bridge/egress/requests/{other}/submit"),
        ("POST", f"/api/bridge/egress/requests/{other}/withdraw"),
    ):
        r = client.request(method, path, json={"path": "x.csv"} if "files" in path else {},
                           headers=me)  # fmt: skip
        assert r.status_code == 404, (path, r.text)
    # a bridged body with unknown fields is refused, not silently ignored
    r = client.post(
        "/api/bridge/egress/requests", json={"title": "t", "project": "other"}, headers=me
    )
    assert r.status_code == 422


def test_email_is_sent_after_a_step_when_smtp_is_configured(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller

    from jupyterlab_hdh.hub.config import free_port
    from tests.egress.test_notify import Inbox

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("HDH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HDH_SMTP_PORT", str(port))
    monkeypatch.setenv("HDH_SMTP_DOMAIN", "hdh.example")
    try:
        workspace = airlock.setup(hub)
        airlock.write(workspace, "out/table.csv")
        with hub.transaction() as s:
            token = accounts.issue_token(
                s, s.scalar(select(User).where(User.name == "alice")), actor="test"
            )
        alice = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(hub.data_dir)) as client:
            rid = _ok(client.post("/api/egress/requests", json={"project": "study", "title": "T"},
                                  headers=alice), 201)["id"]  # fmt: skip
            _ok(client.post(f"/api/egress/requests/{rid}/files",
                            json={"path": "out/table.csv"}, headers=alice), 201)  # fmt: skip
            _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=alice))
    finally:
        controller.stop()
    rcpts = sorted(r[0] for r, _ in inbox.messages)
    assert rcpts == ["cora@hdh.example", "raj@hdh.example", "rita@hdh.example"]
    assert all(f"#{rid}" in m["Subject"] for _, m in inbox.messages)


# --- the browser UI ------------------------------------------------------------------------------


class _HubLogin(HubBrowserAuth):
    """The hub's OAuth session lookup replaced by a cookie naming the user (no hub runs here);
    everything else (form tokens, cookie options, the pages) is the real code."""

    def __init__(self) -> None:
        self.prefix = "/services/hdh/"
        self.service_name = "hdh"
        self.form_secret = b"k" * 32

    @property
    def cookie_name(self) -> str:
        return "hdh-session"

    async def user(self, cookies: dict[str, str], next_url: str) -> BrowserUser:
        name = cookies.get(self.cookie_name, "")
        if not name:
            raise self.login(next_url)
        return BrowserUser(name, f"session-of-{name}")

    def login(self, next_url: str) -> NotLoggedIn:
        return NotLoggedIn(f"/hub/login?next={next_url}", ("hdh-session-oauth-state", "s"))


@pytest.fixture
def ui(hub: Any) -> Iterator[tuple[TestClient, Any, dict[str, dict[str, str]]]]:
    auth = _world(hub)
    app = create_app(hub.data_dir, bridge_token=TOKEN, browser_auth=_HubLogin())
    with TestClient(app) as client:
        yield client, hub, auth


def _browser(client: TestClient, who: str) -> dict[str, str]:
    return {"Cookie": f"hdh-session={who}"}


def _form_token(page: str) -> str:
    [token] = set(re.findall(r'name="_form" value="([0-9a-f]{64})"', page))
    return token


def test_browser_reviewers_vote_decide_release_and_the_requester_downloads(ui: Any) -> None:
    client, hub, auth = ui
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    url = f"/services/hdh/ui/egress/requests/{rid}"

    listing = client.get("/services/hdh/ui/egress/", headers=_browser(client, "rita"))
    assert listing.status_code == 200 and f'href="{url}"' in listing.text
    for who in ("rita", "raj"):
        page = client.get(url, headers=_browser(client, who))
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "form-action 'self'" in csp and "script-src" not in csp
        assert "<script" not in page.text and "Vote (final)" in page.text
        token = _form_token(page.text)
        view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth[who]))
        [out] = [f for f in view["files"] if f["role"] == "output"]
        form = {"_form": token, "action": "vote", "path": "out/table.csv", "decision": "approve"}
        if out["check_status"] == "fail":
            form["exception_reason"] = "checked by hand"
        r = client.post(url, data=form, headers=_browser(client, who), follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == url, r.text
    page = client.get(url, headers=_browser(client, "raj")).text
    assert "Approve the request" in page
    r = client.post(
        url,
        data={"_form": _form_token(page), "action": "approve"},
        headers=_browser(client, "raj"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(url, headers=_browser(client, "rita")).text
    r = client.post(
        url,
        data={"_form": _form_token(page), "action": "release"},
        headers=_browser(client, "rita"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert airlock.state(hub, rid) == "released"

    page = client.get(url, headers=_browser(client, "alice")).text
    [link] = re.findall(r'href="([^"]*/released/[^"]+)"', page)
    r = client.get(link, headers=_browser(client, "alice"))
    assert r.status_code == 200 and r.content == b"region,count\nnorth,120\nsouth,140\n"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(link, headers=_browser(client, "rita")).status_code == 404


def test_browser_forms_need_the_sessions_token_and_the_workflows_permission(ui: Any) -> None:
    client, hub, auth = ui
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    url = f"/ui/egress/requests/{rid}"
    vote = {"action": "vote", "path": "out/table.csv", "decision": "reject"}
    # no token, a forged one, or another user's (a cross-site post): refused, nothing changes
    rita_token = _form_token(client.get(url, headers=_browser(client, "rita")).text)
    for token in ("", "0" * 64, rita_token):
        r = client.post(url, data={**vote, "_form": token}, headers=_browser(client, "raj"))
        assert r.status_code == 403 and "expired or came from another site" in r.text
    # a project member has a valid token but may not vote: the workflow refuses it
    bob_page = client.get(url, headers=_browser(client, "bob")).text
    assert "Vote (final)" not in bob_page
    r = client.post(
        url, data={**vote, "_form": _form_token(bob_page)}, headers=_browser(client, "bob")
    )
    assert r.status_code == 403 and "bob may not vote" in r.text
    view = _ok(client.get(f"/api/egress/requests/{rid}", headers=auth["alice"]))
    assert all(f["vote_count"] == 0 for f in view["files"])
    # others' requests stay invisible; not logged in goes to the hub's login
    assert client.get(url, headers=_browser(client, "mallory")).status_code == 404
    r = client.get(url, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/hub/login")
    r = client.post(
        url,
        content=b"x" * 70_000,
        headers={**_browser(client, "raj"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400


def test_an_interrupted_release_is_finished_when_the_control_plane_starts(api: Any) -> None:
    client, hub, auth = api
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    _ok(_vote(client, auth, rid, "rita"), 201)
    _ok(_vote(client, auth, rid, "raj"), 201)
    _ok(client.post(f"/api/egress/requests/{rid}/approve", headers=auth["rita"]))
    # the release transaction committed, then the control plane died before copying
    with hub.transaction() as s:
        manager.start_release(s, rid, actor=airlock.ADMIN)
    assert airlock.state(hub, rid) == "releasing"
    with TestClient(create_app(hub.data_dir, bridge_token=TOKEN)) as restarted:
        assert airlock.state(hub, rid) == "released"
        files = _ok(restarted.get(f"/api/egress/requests/{rid}/released", headers=auth["bob"]))
        r = restarted.get(
            f"/api/egress/requests/{rid}/released/{files[0]['name']}", headers=auth["bob"]
        )
        assert r.content == b"region,count\nnorth,120\nsouth,140\n"


def test_review_page_blinds_the_other_reviewers_vote_until_both_voted(api: Any) -> None:
    client, _hub, auth = api
    rid = _draft(client, auth)
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    _ok(_vote(client, auth, rid, "rita", "reject"), 201)
    raj_page = client.get(f"/api/egress/requests/{rid}/review", headers=auth["raj"]).text
    assert "1 vote(s), hidden until both reviewers voted" in raj_page
    assert "<th>rita</th>" not in raj_page
    rita_page = client.get(f"/api/egress/requests/{rid}/review", headers=auth["rita"]).text
    assert "<th>rita</th><td>reject</td>" in rita_page  # her own vote
    _ok(_vote(client, auth, rid, "raj", "reject"), 201)
    raj_page = client.get(f"/api/egress/requests/{rid}/review", headers=auth["raj"]).text
    assert "<th>rita</th><td>reject</td>" in raj_page and "<th>raj</th><td>reject</td>" in raj_page


def test_browser_download_link_of_a_file_with_url_characters_in_its_name(ui: Any) -> None:
    client, hub, auth = ui
    airlock.write(hub.data_dir.workspace("study"), "out/t#1 ?&.csv", "a,n\nx,120\n")
    rid = _ok(
        client.post("/api/egress/requests", json={"project": "study", "title": "T"},
                    headers=auth["alice"]), 201,
    )["id"]  # fmt: skip
    _ok(client.post(f"/api/egress/requests/{rid}/files", json={"path": "out/t#1 ?&.csv"},
                    headers=auth["alice"]), 201)  # fmt: skip
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    _ok(_vote(client, auth, rid, "rita"), 201)
    _ok(_vote(client, auth, rid, "raj"), 201)
    _ok(client.post(f"/api/egress/requests/{rid}/approve", headers=auth["rita"]))
    _ok(client.post(f"/api/egress/requests/{rid}/release", headers=auth["rita"]))
    page = client.get(f"/ui/egress/requests/{rid}", headers=_browser(client, "bob")).text
    [link] = re.findall(r'href="([^"]*/released/[^"]+)"', page)
    r = client.get(html.unescape(link), headers=_browser(client, "bob"))
    assert r.status_code == 200 and r.content == b"a,n\nx,120\n"


def test_browser_pages_escape_what_a_kernel_or_a_member_wrote(ui: Any) -> None:
    """Titles, paths and comments are written by sandboxes and people: the list, the request
    page and its forms (Jinja2 templates, autoescaped) show them as text, never as markup."""
    client, hub, auth = ui
    hostile = '<img src=x onerror="alert(1)">'
    airlock.write(hub.data_dir.workspace("study"), "out/<b>t</b>.csv", "a,n\nx,120\n")
    rid = _ok(
        client.post("/api/egress/requests", json={"project": "study", "title": hostile},
                    headers=auth["alice"]), 201,
    )["id"]  # fmt: skip
    _ok(client.post(f"/api/egress/requests/{rid}/files", json={"path": "out/<b>t</b>.csv"},
                    headers=auth["alice"]), 201)  # fmt: skip
    _ok(client.post(f"/api/egress/requests/{rid}/submit", headers=auth["alice"]))
    listing = client.get("/ui/egress/", headers=_browser(client, "rita")).text
    page = client.get(f"/ui/egress/requests/{rid}", headers=_browser(client, "rita")).text
    for text in (listing, page):
        assert hostile not in text and "<img" not in text
        assert "&lt;img src=x onerror=" in text  # shown, as text
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page  # the vote form's path


def test_a_sandbox_reads_the_installations_check_thresholds_through_the_bridge(
    permitted: Any,
) -> None:
    client, hub, _auth = permitted
    url = "/api/bridge/egress/checks"
    defaults = _ok(client.get(url, headers=_bridge("alice", "study")))["checks"]
    assert defaults["safe_threshold"] == 10
    (hub.data_dir.root / "airlock.toml").write_text("[checks]\nsafe_threshold = 11\n")
    checks = _ok(client.get(url, headers=_bridge("alice", "study")))["checks"]
    assert checks["safe_threshold"] == 11 and checks["safe_nk_n"] == defaults["safe_nk_n"]
    assert client.get(url).status_code in (401, 403)  # only through the bridge
