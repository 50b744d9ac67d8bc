"""The review widget's control plane for real, in ``hdh up``: hub login, proxy, control plane.

A reviewer logged in through the hub's form and OAuth (the pages' cookie, as a browser holds
it) asks ``/services/hdh/ui/api/session`` who they are, then lists, reads, comments and votes
through ``/services/hdh/api/egress/...`` with that cookie and the session's ``X-HDH-Token``.
The same cookie without the header, with a wrong one or with another reviewer's, is refused
(401, nothing changes); it is never looked at on the API's own port nor by the bridge's
routes. The rendering of one file comes with exactly the contract's headers, inert, and is
refused to the requester. One ``hdh up`` for this module (the embedded-hub fixture).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.hub.test_embedded_hub import (  # noqa: F401 - ``up`` and ``pytestmark`` are used by pytest
    Up,
    follow,
    login,
    pytestmark,
    up,
)

PAGES = "/services/hdh/ui/egress/"
API = "/services/hdh/api/egress/requests"
TABLE = "region,count\nnorth,120\nsouth,140\n"
HOSTILE = (
    "<h2>Results</h2><script>alert(1)</script><img src=x onerror=alert(2)>"
    "<img src='https://evil.example/beacon.png'><svg onload=alert(3)></svg>"
    "<iframe src='https://evil.example'></iframe>"
)


def _submitted(hub: Up) -> int:
    """alice's request of the demo project, with a table and a hostile HTML page, in review."""
    workspace = hub.data_dir / "workspaces" / "demo"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "review-table.csv").write_text(TABLE)
    (workspace / "review-page.html").write_text(HOSTILE)
    alice = httpx.Client(
        base_url=hub.api_url,
        headers={"Authorization": f"Bearer {hub.creds['alice']['token']}"},
        timeout=60,
    )
    with alice:
        r = alice.post("/api/egress/requests", json={"project": "demo", "title": "For review"})
        assert r.status_code == 201, r.text
        rid = int(r.json()["id"])
        for path, role in (("review-table.csv", "output"), ("review-page.html", "supporting")):
            r = alice.post(f"/api/egress/requests/{rid}/files", json={"path": path, "role": role})
            assert r.status_code == 201, r.text
        r = alice.post(f"/api/egress/requests/{rid}/submit")
        assert r.status_code == 200 and r.json()["state"] == "submitted", r.text
    return rid


def _signed_in(hub: Up, user: str) -> tuple[httpx.Client, dict[str, Any]]:
    """A browser logged in to the hub and, through its OAuth, to the control plane's pages;
    and what the session route says of it."""
    c = login(hub, user)
    page = follow(c, f"{hub.url}{PAGES}")
    assert page.status_code == 200, page.text[:500]
    r = c.get(f"{hub.url}/services/hdh/ui/api/session", follow_redirects=False)
    assert r.status_code == 200, r.text
    return c, r.json()


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json" and "location" not in r.headers
    assert "\n" not in r.json()["detail"]


@pytest.mark.slow  # one `hdh up` (about 30 s)
def test_a_reviewer_works_from_the_browser_with_the_session_and_its_token(up: Up) -> None:  # noqa: F811
    rid = _submitted(up)
    anonymous = httpx.Client(timeout=30)
    r = anonymous.get(f"{up.url}/services/hdh/ui/api/session", follow_redirects=False)
    _refused(r)
    assert r.json()["login_url"] == PAGES

    bob, who = _signed_in(up, "bob")
    assert {k: who[k] for k in ("user", "role", "may_review", "pages")} == {
        "user": "bob",
        "role": "reviewer",
        "may_review": True,
        "pages": PAGES,
    }
    assert who["lang"] in ("en", "fr") and re.fullmatch(r"[0-9a-f]{64}", who["token"])
    token = {"X-HDH-Token": who["token"]}
    url = f"{up.url}{API}"

    [row] = [x for x in bob.get(url, headers=token).json() if x["id"] == rid]
    assert row["awaiting_me"] is True and row["reviewers"] == [] and row["submitted_at"]
    view = bob.get(f"{url}/{rid}", headers=token)
    assert view.status_code == 200 and view.json()["viewer"] == "reviewer", view.text
    [out] = [f for f in view.json()["files"] if f["role"] == "output"]
    r = bob.post(
        f"{url}/{rid}/comments", json={"body": "checked", "visibility": "private"}, headers=token
    )
    assert r.status_code == 201, r.text
    vote: dict[str, Any] = {"path": "review-table.csv", "decision": "approve"}
    if out["check_status"] == "fail":
        vote["exception_reason"] = "every count is above 100"
    r = bob.post(f"{url}/{rid}/votes", json=vote, headers=token)
    assert r.status_code == 201 and r.json()["state"] == "partially_reviewed", r.text
    [row] = [x for x in bob.get(url, headers=token).json() if x["id"] == rid]
    assert row["awaiting_me"] is False and row["reviewers"] == ["bob"]

    # CSRF: the cookie alone, a wrong token, another session's token: refused, nothing changes
    carol, carols = _signed_in(up, "carol")
    carol.close()
    for headers in ({}, {"X-HDH-Token": "0" * 64}, {"X-HDH-Token": carols["token"]}):
        _refused(bob.get(url, headers=headers))
        _refused(bob.post(f"{url}/{rid}/comments", json={"body": "forged"}, headers=headers))
        _refused(bob.post(f"{url}/{rid}/reject", json={"reason": "forged"}, headers=headers))
    admin = {"Authorization": f"Bearer {up.creds['admin']['token']}"}
    seen = httpx.get(f"{up.api_url}/api/egress/requests/{rid}", headers=admin, timeout=30).json()
    assert [c["body"] for c in seen["comments"]] == ["checked"] and seen["state"] != "rejected"

    # the bridge's routes never take the cookie; the API's own port never looks at it
    r = bob.get(f"{up.url}/services/hdh/api/bridge/egress/requests", headers=token)
    assert r.status_code in (401, 403) and "bridge" in r.json()["detail"], r.text
    cookies = "; ".join(f"{c.name}={c.value}" for c in bob.cookies.jar)
    direct = httpx.get(
        f"{up.api_url}/api/egress/requests", headers={"Cookie": cookies, **token}, timeout=30
    )
    _refused(direct)
    # bearer tokens keep working, under the prefix too
    r = anonymous.get(url, headers={"Authorization": f"Bearer {up.creds['bob']['token']}"})
    assert r.status_code == 200 and any(x["id"] == rid for x in r.json())

    # one file, rendered for the lab's frame: exactly the contract's headers, inert
    render = f"{up.url}/services/hdh/ui/egress/requests/{rid}/render"
    r = bob.get(render, params={"path": "review-page.html"})
    assert r.status_code == 200, r.text[:500]
    [style] = re.findall(r"<style>(.*?)</style>", r.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert r.headers["content-security-policy"] == (
        f"sandbox; default-src 'none'; img-src data:; style-src 'sha256-{digest}'; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "<script" not in r.text and "<iframe" not in r.text and "<svg" not in r.text
    assert not re.search(r"<[^>]*\son\w+\s*=", r.text)  # no event handler in any tag
    assert not re.search(r"<[^>]*(src|href)\s*=\s*[\"']?https?:", r.text)  # nothing fetched
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text  # its source, shown as text
    assert bob.get(render, params={"path": "nope.csv"}).status_code == 404
    bob.close()
    alice, _ = _signed_in(up, "alice")  # the requester: never a rendering of her files
    r = alice.get(render, params={"path": "review-table.csv"})
    assert r.status_code == 403 and "north" not in r.text, r.text[:500]
    alice.close()
