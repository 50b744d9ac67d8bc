"""The control plane's pages in a real browser (Debian Chromium through Playwright), one look.

One ``hdh up`` for the module (``tests/hub/test_embedded_hub.py``'s ``up`` fixture). bob, an
output checker, logs in through the hub and opens the review list with nothing to review;
alice, a researcher, opens her projects and her (empty) export requests. Each page shows the
layout: the product's header with the person's name and role, the navigation that role may
follow (bob: "Review"; alice: "Export requests", no "Review"), the skip link on the first Tab,
the empty state saying what to do next, the stylesheet applied with no CSP violation, and
nothing fetched from another host. bob also switches the pages to French (the header's FR | EN
switch) and the next visit stays French. The screenshots go to ``docs/screenshots/pages-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (
    _CSP_LISTENER,
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    TIMEOUT_MS,
    _ui_problem,
)

pytestmark = pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))

MAX_SHOT_BYTES = 200_000
BRAND_BLUE = "rgb(18, 53, 91)"  # header.site's background in hdh.css: the stylesheet applies
#: the navigation of an output checker and of a researcher
PUBLIC_NAV = ["Public register", "Your right to object"]
REVIEWER_NAV = ["Projects", "Applications", "Review", *PUBLIC_NAV]
RESEARCHER_NAV = ["Projects", "Applications", "Export requests", *PUBLIC_NAV]


@pytest.fixture(scope="module")
def browser(up: Up) -> Iterator[Any]:  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One person's browser context, logged in through the hub's form."""

    def __init__(self, browser: Any, up: Up, user: str) -> None:  # noqa: F811
        self.up = up
        self.hosts: list[str] = []
        self.events: list[str] = []
        self.context = browser.new_context(viewport={"width": 1100, "height": 720})
        self.context.add_init_script(_CSP_LISTENER)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("request", lambda r: self.hosts.append(urlsplit(r.url).hostname or ""))
        self.page.on("console", lambda m: self.events.append(f"[{m.type}] {m.text}"))
        self.page.on("pageerror", lambda e: self.events.append(f"[pageerror] {e}"))
        self.page.goto(f"{up.url}/hub/login")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", up.creds[user]["password"])
        with self.page.expect_navigation():
            self.page.click("#login_submit")

    def open(self, path: str) -> Any:
        response = self.page.goto(f"{self.up.url}/services/hdh/{path}")
        assert response is not None and response.status == 200, response
        self.page.wait_for_load_state("networkidle")
        return self.page

    def close(self) -> None:
        print("\n--- page events ---\n" + "\n".join(self.events))
        self.context.close()


@pytest.fixture(scope="module")
def bob(browser: Any, up: Up) -> Iterator[Session]:  # noqa: F811
    s = Session(browser, up, "bob")
    yield s
    s.close()


@pytest.fixture(scope="module")
def alice(browser: Any, up: Up) -> Iterator[Session]:  # noqa: F811
    s = Session(browser, up, "alice")
    yield s
    s.close()


def assert_layout(s: Session, user: str, role: str, nav: list[str], current: str) -> Any:
    """The visible layout of the page ``s`` shows now."""
    page = s.page
    header = page.get_by_role("banner")
    assert header.is_visible()
    assert header.get_by_role("link", name="Health Data Hub").is_visible()
    who = header.inner_text()
    assert f"Signed in as {user}" in who and role in who, who
    assert header.get_by_role("link", name="Log out").is_visible()
    menu = page.get_by_role("navigation", name="Main")
    labels = [" ".join(t.split()) for t in menu.get_by_role("link").all_inner_texts()]
    assert labels == nav, labels
    assert menu.get_by_role("link", name=current).get_attribute("aria-current") == "page"
    assert page.get_by_role("main").is_visible() and page.get_by_role("contentinfo").count() == 1
    assert page.get_by_role("heading", level=1).count() == 1
    # the stylesheet applies (same origin, allowed by the CSP), and nothing was refused
    background = page.evaluate(
        "getComputedStyle(document.querySelector('header.site')).backgroundColor"
    )
    assert background == BRAND_BLUE, background
    assert page.evaluate("window.__hdhCsp") == []
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    # the first Tab shows the skip link, which leads to the main area
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    assert skip.evaluate("e => e === document.activeElement") and skip.is_visible()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, box
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    assert set(s.hosts) <= {"127.0.0.1"}, sorted(set(s.hosts))
    return page


def shoot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    size = path.stat().st_size
    assert size < MAX_SHOT_BYTES, (name, size)
    return path


def test_a_reviewer_with_nothing_to_review(bob: Session) -> None:
    page = bob.open("ui/egress/")
    assert_layout(bob, "bob", "reviewer (output checker)", REVIEWER_NAV, current="Review")
    main = page.get_by_role("main")
    assert main.get_by_role("heading", level=1).inner_text() == "Export requests to review"
    empty = main.get_by_text("Nothing to review.")
    assert empty.is_visible()
    text = " ".join(main.inner_text().split())
    assert "Nothing to review. Requests submitted by project members appear here." in text
    assert main.locator("table").count() == 0  # no bare table header
    shoot(page, "pages-review-empty.png")


def test_a_reviewer_switches_to_french_and_it_is_remembered(
    browser: Any,
    up: Up,  # noqa: F811
) -> None:
    """The header's FR | EN switch (a form post, no script): the review list's empty state in
    French, <html lang="fr">, no English string of the catalogue left, and the next visit in
    French too (the cookie). A context of its own: bob's other pages stay in English."""
    from tests.api.test_pages_i18n import english_left

    s = Session(browser, up, "bob")
    try:
        page = s.open("ui/egress/")
        assert page.locator("html").get_attribute("lang") == "en"
        with page.expect_navigation():
            page.get_by_role("banner").get_by_role("button", name="FR").click()
        page.wait_for_load_state("networkidle")
        assert page.url.endswith("/services/hdh/ui/egress/"), page.url
        assert page.locator("html").get_attribute("lang") == "fr"
        [cookie] = [c for c in s.context.cookies() if c["name"] == "hdh-lang"]
        assert cookie["value"] == "fr" and cookie["path"] == "/services/hdh/", cookie
        header = page.get_by_role("banner")
        who = header.inner_text()
        assert "Connecté en tant que bob" in who and "relecteur (contrôle des sorties)" in who
        menu = page.get_by_role("navigation", name="Principale")
        labels = [" ".join(t.split()) for t in menu.get_by_role("link").all_inner_texts()]
        assert labels == [
            "Projets",
            "Demandes d’accès",
            "Relecture",
            "Registre public",
            "Votre droit d’opposition",
        ], labels
        main = page.get_by_role("main")
        assert main.get_by_role("heading", level=1).inner_text() == "Demandes d’export à relire"
        text = " ".join(main.inner_text().split())
        assert (
            "Rien à relire. Les demandes soumises par les membres des projets apparaissent ici."
        ) in text
        assert main.locator("table").count() == 0
        assert english_left(page.content()) == []
        # the post went through the CSP (form-action 'self'), nothing ran, nothing else fetched
        assert page.evaluate("window.__hdhCsp") == []
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        assert set(s.hosts) <= {"127.0.0.1"}, sorted(set(s.hosts))
        shoot(page, "pages-review-empty-fr.png")
        # remembered: the next page comes in French without asking again
        projects = s.open("ui/")
        assert projects.locator("html").get_attribute("lang") == "fr"
        assert projects.get_by_role("heading", level=1).inner_text() == "Vos projets"
    finally:
        s.close()


def test_a_reviewers_projects_say_where_the_reviews_are(bob: Session) -> None:
    page = bob.open("ui/")
    assert_layout(bob, "bob", "reviewer (output checker)", REVIEWER_NAV, current="Projects")
    main = page.get_by_role("main")
    assert main.get_by_text("Reviewers need no project").is_visible()
    with page.expect_navigation():
        main.get_by_role("link", name="Review").click()
    assert page.url.endswith("/services/hdh/ui/egress/"), page.url


def test_a_researchers_projects(alice: Session) -> None:
    page = alice.open("ui/")
    assert_layout(alice, "alice", "researcher", RESEARCHER_NAV, current="Projects")
    main = page.get_by_role("main")
    table = main.get_by_role("table", name="Projects you are a member of")
    assert table.is_visible()
    row = table.get_by_role("row", name="demo")
    assert row.get_by_role("link", name="Open in JupyterLab").get_attribute("href") == (
        "/hub/spawn/alice/demo"
    )
    assert row.get_by_text("lead").is_visible() and row.get_by_text("permit #").is_visible()
    assert page.get_by_role("link", name="Review").count() == 0  # not a reviewer's link
    shoot(page, "pages-projects.png")


def test_a_researchers_empty_export_requests_say_how_to_make_one(alice: Session) -> None:
    page = alice.open("ui/egress/")
    assert_layout(alice, "alice", "researcher", RESEARCHER_NAV, current="Export requests")
    main = page.get_by_role("main")
    text = " ".join(main.inner_text().split())
    assert "None of your projects has an export request yet." in text
    assert '"New request"' in text and "Add to export request…" in text
    assert "Nothing to review" not in text
    shoot(page, "pages-requests-empty.png")


def test_a_refusal_is_a_page_of_the_layout_with_a_way_back(bob: Session) -> None:
    response = bob.page.goto(f"{bob.up.url}/services/hdh/ui/projects/demo/datasets")
    assert response is not None and response.status == 403
    page = bob.page
    assert page.get_by_role("navigation", name="Main").is_visible()
    alert = page.get_by_role("alert")
    assert "not a member of project" in alert.inner_text() and "Error 403" in alert.inner_text()
    back = page.get_by_role("link", name="Back to your projects")
    assert back.is_visible()
    shoot(page, "pages-refused.png")
    with page.expect_navigation():
        back.click()
    assert page.url.endswith("/services/hdh/ui/"), page.url


def test_a_researchers_dataset_versions(alice: Session) -> None:
    page = alice.open("ui/projects/demo/datasets")
    assert_layout(alice, "alice", "researcher", RESEARCHER_NAV, current="Projects")
    main = page.get_by_role("main")
    table = main.get_by_role("table", name="Dataset versions granted by permit")
    assert table.get_by_role("checkbox").count() >= 1
    assert main.get_by_role("button", name="Save and restart the sandbox").is_visible()
    shoot(page, "pages-datasets.png")


# last: it submits a request, so the lists above are no longer empty
def test_a_reviewer_opens_a_request_in_the_layout(bob: Session, up: Up) -> None:  # noqa: F811
    workspace = up.data_dir / "workspaces" / "demo"
    (workspace / "out").mkdir(parents=True, exist_ok=True)
    (workspace / "out" / "table1.csv").write_text("region,patients\nnorth,120\nsouth,145\n")
    r = up.hdh(
        "egress", "submit", "out/table1.csv", "--as", "alice", "--project", "demo",
        "--title", "Table 1: patients by region", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = bob.open("ui/egress/")
    main = page.get_by_role("main")
    assert main.get_by_text("Nothing to review.").count() == 0
    table = main.get_by_role("table", name="Export requests waiting for review")
    with page.expect_navigation():
        table.get_by_role("link").first.click()
    assert_layout(bob, "bob", "reviewer (output checker)", REVIEWER_NAV, current="Review")
    assert page.get_by_role("heading", level=1).inner_text().endswith("Table 1: patients by region")
    assert page.get_by_role("button", name="Vote (final)").is_visible()
    assert page.get_by_role("link", name="Review").count() >= 2  # the menu, and the way back
    shoot(page, "pages-review-request.png")


def test_a_researcher_applies_and_anyone_reads_the_register(
    alice: Session,
    browser: Any,
    up: Up,  # noqa: F811
) -> None:
    """The access desk's form as alice fills it, then the public register as a visitor who
    is not signed in sees it (issue 14)."""
    page = alice.open("ui/applications/new")
    assert_layout(alice, "alice", "researcher", RESEARCHER_NAV, current="Applications")
    page.fill("#f-project", "heart-2027")
    page.fill("#f-title", "Insuffisance cardiaque après 75 ans")
    page.fill("#f-purpose", "Décrire les hospitalisations pour insuffisance cardiaque.")
    page.fill("#f-public-interest", "Mieux organiser le suivi à domicile.")
    page.fill("#f-methodology", "Cohorte rétrospective 2018-2024.")
    page.fill("#f-datasets", "demo-snds")
    page.fill("#f-days", "180")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit the application").click()
    assert "/services/hdh/ui/applications/" in page.url, page.url
    main = " ".join(page.get_by_role("main").inner_text().split())
    assert "Insuffisance cardiaque après 75 ans" in main and "heart-2027" in main
    assert page.evaluate("window.__hdhCsp") == []
    shoot(page, "pages-application.png")
    visitor = browser.new_context(viewport={"width": 1100, "height": 720})
    try:
        visitor.add_init_script(_CSP_LISTENER)
        public = visitor.new_page()
        response = public.goto(f"{up.url}/services/hdh/ui/register/")
        assert response is not None and response.status == 200
        text = " ".join(public.get_by_role("main").inner_text().split())
        assert "Public register of projects" in text
        assert "demo" in text and "Insuffisance cardiaque après 75 ans" in text  # under review
        assert "Not signed in" in public.get_by_role("banner").inner_text()
        assert public.evaluate("window.__hdhCsp") == []
        shoot(public, "pages-register.png")
    finally:
        visitor.close()
