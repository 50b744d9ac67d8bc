"""The control plane's web pages share one layout (issue 12, item 5).

Every HTML page (projects, dataset versions, export requests, one request, the refusals) is
rendered for each platform role through the real app, the hub's OAuth session lookup replaced
by a cookie naming the user (``tests/egress/test_api.py``'s ``_HubLogin``). Each page has the
layout's landmarks (skip link, header, navigation, main, footer), the signed-in person's name
and role, only the navigation links that role may follow (and every ``/ui/`` link on the page
opens for that person), headings in order, captioned tables, no script and no inline style
(the pages' CSP allows neither), and every empty list says what it means and what to do next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.templating import TEMPLATES, layout
from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.egress import manager
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.paths import DataDir
from tests.egress import airlock
from tests.egress.test_api import _HubLogin
from tests.governance.fakes import fake_version

PREFIX = "/services/hdh/"
#: one person per platform role (airlock.setup's, plus an administrator)
ROLE_OF = {
    "alice": "researcher",  # lead of "study", with a permit
    "rita": "reviewer",
    "cora": "committee",
    "dan": "data_controller",
    "ada": "admin",
}
ROLE_LABEL = {
    "researcher": "researcher",
    "reviewer": "reviewer (output checker)",
    "committee": "committee member (output checker)",
    "data_controller": "data controller",
    "admin": "administrator",
}
#: the public pages every header links to, signed in or not (the register, issue 14)
PUBLIC_NAV = ["Public register", "Your right to object"]
NAV = {
    "researcher": ["Projects", "Applications", "Export requests", *PUBLIC_NAV],
    "reviewer": ["Projects", "Applications", "Review", *PUBLIC_NAV],
    "committee": ["Projects", "Applications", "Review", *PUBLIC_NAV],
    "data_controller": ["Projects", "Applications", "Export requests", *PUBLIC_NAV],
    "admin": [
        "Projects",
        "Applications",
        "Export requests",
        "Hub administration",
        "API reference",
        *PUBLIC_NAV,
    ],
}
NOTHING_TO_REVIEW = "Nothing to review. Requests submitted by project members appear here."


# --- an HTML page, parsed -----------------------------------------------------------------------


@dataclass
class Page:
    tags: list[str] = field(default_factory=list)
    headings: list[int] = field(default_factory=list)
    links: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # href, text
    landmarks: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: int = 0
    captions: int = 0
    styled: list[str] = field(default_factory=list)  # elements with a style attribute
    stylesheets: list[str] = field(default_factory=list)
    text: str = ""
    nav_labels: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._link: tuple[str, dict[str, str]] | None = None
        self._link_text: list[str] = []
        self._in_nav = False
        self._list_table = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        p = self.page
        p.tags.append(tag)
        if re.fullmatch(r"h[1-6]", tag):
            p.headings.append(int(tag[1]))
        if tag in ("header", "nav", "main", "footer") and tag not in p.landmarks:
            p.landmarks[tag] = a
        if tag == "nav":
            self._in_nav = True
        if tag == "table" and "list" in a.get("class", "").split():
            p.tables += 1  # a list of things (the review's key-value tables have row headers)
            self._list_table = True
        if tag == "caption" and self._list_table:
            p.captions += 1
        if "style" in a:
            p.styled.append(tag)
        if tag == "link" and a.get("rel") == "stylesheet":
            p.stylesheets.append(a.get("href", ""))
        if tag == "a":
            self._link, self._link_text = (a.get("href", ""), a), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            text = " ".join("".join(self._link_text).split())
            self.page.links.append((self._link[0], text, self._link[1]))
            if self._in_nav:
                self.page.nav_labels.append(text)
            self._link = None
        if tag == "nav":
            self._in_nav = False
        if tag == "table":
            self._list_table = False

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link_text.append(data)
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join("".join(self._text).split())


def parse(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


# --- the installations ---------------------------------------------------------------------------


@dataclass
class Site:
    client: TestClient
    hub: Any
    request_id: int = 0
    withdrawn_id: int = 0

    def get(self, who: str, path: str) -> Any:
        return self.client.get(PREFIX + path, headers={"Cookie": f"hdh-session={who}"})


def _installation(root: Path) -> Any:
    opened, _ = init_installation(
        DataDir.resolve(root / "hdh", f"sqlite:///{root / 'store.sqlite'}"), actor="test"
    )
    airlock.setup(opened)  # alice, bob (study), mallory (other), rita, raj, cora, dan
    with opened.transaction() as s:
        accounts.create_user(s, "ada", "admin", actor="test")
        accounts.create_user(s, "rex", "researcher", actor="test")  # no project at all
    airlock.grant(opened, members=("alice",))  # a permit on study (a catalogue-only version)
    return opened


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """No export request anywhere."""
    hub = _installation(tmp_path_factory.mktemp("pages-empty"))
    with TestClient(create_app(hub.data_dir, browser_auth=_HubLogin())) as client:
        yield Site(client, hub)
    hub.close()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """alice submitted one export request of study; a second dataset version is permitted."""
    hub = _installation(tmp_path_factory.mktemp("pages-busy"))
    fake_version(hub, "snds", 2)
    with hub.transaction() as s:
        pj.grant_permit(
            s, "study", members=["alice"], datasets=["snds/v1", "snds/v2"],
            expires_at=datetime.now(UTC) + timedelta(days=2), actor=airlock.DAN,
        )  # fmt: skip
    airlock.write(hub.data_dir.workspace("study"), "out/table.csv", "group,count\na,120\nb,150\n")
    rid = airlock.draft(hub, ("out/table.csv", "output"))
    airlock.submit(hub, rid)
    gone = airlock.draft(hub, ("out/table.csv", "output"))  # submitted, then withdrawn
    airlock.submit(hub, gone)
    with hub.transaction() as s:
        manager.withdraw(s, gone, actor=airlock.ALICE, reason="wrong table")
    with TestClient(create_app(hub.data_dir, browser_auth=_HubLogin())) as client:
        yield Site(client, hub, rid, gone)
    hub.close()


# --- what every page of the layout has ----------------------------------------------------------


def assert_layout(r: Any, who: str, *, current: str | None = None, status: int = 200) -> Page:
    assert r.status_code == status, (who, r.status_code, r.text[:600])
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp, csp
    assert re.search(r"style-src 'self'(;|$)", csp), csp
    page = parse(r.text)
    # landmarks, a skip link to the main area, headings in order from one h1
    assert set(page.landmarks) == {"header", "nav", "main", "footer"}, page.landmarks
    assert page.landmarks["main"].get("id") == "main"
    assert page.links[0][:2] == ("#main", "Skip to the content")
    assert page.landmarks["nav"].get("aria-label") == "Main"
    assert page.headings[:1] == [1] and page.headings.count(1) == 1, page.headings
    assert all(b - a <= 1 for a, b in pairwise(page.headings)), page.headings
    assert page.tables == page.captions, "every list has a caption"
    # no script, no inline style, only the same-origin stylesheet
    assert "script" not in page.tags and "style" not in page.tags and not page.styled
    assert page.stylesheets == [f"{PREFIX}ui/static/hdh.css"]
    # who is signed in, as what, and the links that role may follow
    role = ROLE_OF.get(who, "researcher")
    assert f"Signed in as {who}" in page.text and ROLE_LABEL[role] in page.text
    assert page.nav_labels == NAV[role], (who, page.nav_labels)
    hrefs = [href for href, _text, _a in page.links]
    assert ("/hub/admin" in hrefs) == (role == "admin"), who
    assert (f"{PREFIX}api/docs" in hrefs) == (role == "admin"), who
    assert "/hub/logout" in hrefs and "/hub/home" in hrefs
    if role not in ("reviewer", "committee"):
        assert "Review" not in [text for _h, text, _a in page.links], who
    if current is not None:
        [here] = [text for _h, text, a in page.links if a.get("aria-current") == "page"]
        assert here == current, (who, here)
    return page


def assert_links_open(site: Site, who: str, page: Page) -> None:
    """Every link of the control plane's pages on ``page`` opens for ``who`` (no 403/404)."""
    for href, text, _a in page.links:
        if href.startswith(f"{PREFIX}ui/") and "/released/" not in href:
            r = site.client.get(href, headers={"Cookie": f"hdh-session={who}"})
            assert r.status_code == 200, (who, text, href, r.status_code, r.text[:300])


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", sorted(ROLE_OF) + ["rex"])
def test_every_list_page_has_the_layout_and_its_empty_state(empty: Site, who: str) -> None:
    role = ROLE_OF.get(who, "researcher")
    projects = assert_layout(empty.get(who, "ui/"), who, current="Projects")
    assert "Your projects" in projects.text
    if who == "alice":
        assert "permit #" in projects.text and "Open in JupyterLab" in projects.text
        assert "You are a member of no project yet" not in projects.text
    else:
        assert "You are a member of no project yet" in projects.text
        expect = {
            "reviewer": "Reviewers need no project",
            "committee": "Reviewers need no project",
            "admin": "hdh project create SLUG",
        }.get(
            role,
            f"Ask an administrator to add you to a project (hdh project add-member SLUG {who})",
        )
        assert expect in projects.text, (who, projects.text)
    assert_links_open(empty, who, projects)

    listing = assert_layout(
        empty.get(who, "ui/egress/"),
        who,
        current="Review" if role in ("reviewer", "committee") else "Export requests",
    )
    assert "#1" not in listing.text
    if role in ("reviewer", "committee"):
        assert NOTHING_TO_REVIEW in listing.text
        assert "Your projects' requests" not in listing.text  # a member of no project
    else:
        assert NOTHING_TO_REVIEW not in listing.text and "Waiting for review" not in listing.text
    if role == "admin":
        assert "No export request yet." in listing.text
    if role in ("researcher", "data_controller"):
        assert "None of your projects has an export request yet." in listing.text
        assert '"New request"' in listing.text and "airlock.new_request(" in listing.text
    assert_links_open(empty, who, listing)


def test_the_dataset_versions_page_and_its_refusal_are_in_the_layout(empty: Site) -> None:
    page = assert_layout(empty.get("alice", "ui/projects/study/datasets"), "alice")
    assert "Dataset versions of project study" in page.text
    hrefs = [h for h, _t, _a in page.links]
    assert f"{PREFIX}ui/" in hrefs  # the way back to the projects
    # a person without a permit on the project: a readable refusal, in the layout, a way back
    for who in ("rita", "rex", "ada"):
        refused = assert_layout(
            empty.get(who, "ui/projects/study/datasets"), who, status=403, current="Projects"
        )
        assert "Error 403 · Forbidden" in refused.text
        assert ("Back to your projects", f"{PREFIX}ui/") in [(t, h) for h, t, _a in refused.links]


def test_a_dataset_versions_page_with_versions_to_choose(busy: Site) -> None:
    page = assert_layout(busy.get("alice", "ui/projects/study/datasets"), "alice")
    assert "Save and restart the sandbox" in page.text and "No dataset version" not in page.text


def test_a_permit_granting_no_published_version_says_what_to_do() -> None:
    """The dataset versions page of a permit with nothing to mount (the template itself: the
    store always lists a granted version)."""
    ns = layout(user="alice", role="researcher", prefix=PREFIX, hub_prefix="/")
    html = TEMPLATES.get_template("datasets.html").render(
        title="Dataset versions of study", slug="study", plan={"permit": 3, "permitted": []},
        running=False, error="", form_token="f" * 64, **ns,
    )  # fmt: skip
    page = parse(html)
    assert "No dataset version to choose" in page.text and "Save and restart" not in page.text
    assert "hdh permit grant study --member alice --dataset DATASET/VERSION" in page.text
    # no form but the header's language switch (its one form, posting to ui/language)
    assert page.headings == [1, 2] and page.tags.count("form") == 1
    assert f'action="{PREFIX}ui/language"' in html


def test_lists_with_requests_and_the_request_page(busy: Site) -> None:
    rid = busy.request_id
    link = f"{PREFIX}ui/egress/requests/{rid}"
    for who, section in (
        ("rita", "Waiting for review"),
        ("cora", "Waiting for review"),
        ("ada", "Every project's requests"),
        ("alice", "Your projects' requests"),
        ("bob", "Your projects' requests"),
    ):
        listing = assert_layout(busy.get(who, "ui/egress/"), who)
        assert section in listing.text and NOTHING_TO_REVIEW not in listing.text, who
        assert link in [h for h, _t, _a in listing.links], who
        assert "None of your projects has an export request" not in listing.text
        request = assert_layout(busy.get(who, f"ui/egress/requests/{rid}"), who)
        assert f"request #{rid}" in request.text and "out/table.csv" in request.text
        expect_back = (
            "Review" if ROLE_OF.get(who) in ("reviewer", "committee") else "Export requests"
        )
        assert (expect_back, f"{PREFIX}ui/egress/") in [(t, h) for h, t, _a in request.links]
        if who in ("rita", "cora"):
            assert "Vote (final)" in request.text
        assert_links_open(busy, who, request)
    # a reviewer's list keeps the decided requests apart from those waiting for a vote
    rita = busy.get("rita", "ui/egress/")
    waiting = rita.text.split('id="review-list"')[1].split("</table>")[0]
    decided = rita.text.split('id="decided-list"')[1].split("</table>")[0]
    assert f'/requests/{rid}"' in waiting and f'/requests/{busy.withdrawn_id}"' in decided
    assert "withdrawn" in decided and "Decided, or back with their authors" in rita.text
    # mallory (a member of another project) sees no request of study: her empty state
    mallory = assert_layout(busy.get("mallory", "ui/egress/"), "mallory")
    assert "None of your projects has an export request yet." in mallory.text
    assert link not in [h for h, _t, _a in mallory.links]


def test_refusals_are_readable_pages_in_the_layout(busy: Site) -> None:
    rid = busy.request_id
    # another project's request, and one that does not exist: 404, said in one line
    for who, path in (("mallory", f"ui/egress/requests/{rid}"), ("rita", "ui/egress/requests/99")):
        page = assert_layout(busy.get(who, path), who, status=404)
        assert "Error 404 · Not Found" in page.text and "no egress request #" in page.text
        back = "Back to review" if who == "rita" else "Back to export requests"
        assert (back, f"{PREFIX}ui/egress/") in [(t, h) for h, t, _a in page.links], who
    # a form post that is not one: 400, in the layout
    r = busy.client.post(
        f"{PREFIX}ui/egress/requests/{rid}",
        content=b"x" * 70_000,
        headers={"Cookie": "hdh-session=rita", "Content-Type": "application/x-www-form-urlencoded"},
    )
    page = assert_layout(r, "rita", status=400)
    assert "expected a small form post" in page.text


def test_a_failed_login_page_is_in_the_layout_with_the_public_pages_only(empty: Site) -> None:
    r = empty.client.get(f"{PREFIX}oauth_callback")
    assert r.status_code == 400
    page = parse(r.text)
    assert {"header", "main", "footer"} <= set(page.landmarks)
    assert page.nav_labels == PUBLIC_NAV  # nothing that needs a sign-in
    assert "Not signed in" in page.text and "Cannot log in" in page.text
    assert ("Log in", "/hub/login") in [(t, h) for h, t, _a in page.links]
    assert "Signed in as" not in page.text


def test_the_stylesheet_is_same_origin_and_fetches_nothing(empty: Site) -> None:
    r = empty.client.get(f"{PREFIX}ui/static/hdh.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "url(" not in r.text and "@import" not in r.text and "@font-face" not in r.text
