"""The access desk's web pages (issue 14, item 1): ``/ui/applications/...``, on both stores.

Through the real app, the hub's OAuth session lookup replaced by a cookie naming the user
(``tests/egress/test_api.py``'s ``_HubLogin``, as the other page tests): a researcher applies
through the form, a committee member gives an opinion, an administrator decides, and the
application's page shows the permit (the project and its members exist). A refused form
comes back with its error and everything typed, nothing made; a person outside the team gets
404; a request for changes is answered by a revision; a withdrawal asks for a confirmation;
the pages are in the layout, under the strict CSP, and in French for a French browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.browser import BrowserUser
from jupyterlab_hdh.api.routes.pages import PAGE_CSP
from jupyterlab_hdh.api.templating import LANG_COOKIE
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.store.models import Application, ApplicationOpinion, Notification
from tests.api.test_pages_i18n import english_left
from tests.api.test_pages_layout import PREFIX, assert_layout, assert_links_open, parse
from tests.api.test_pages_layout import Site as LayoutSite
from tests.egress import airlock
from tests.egress.test_api import _HubLogin
from tests.governance.fakes import fake_version

LIST = f"{PREFIX}ui/applications"
APPLY = {
    "kind": "new",
    "project": "diabete-2027",
    "title": "Diabète et insuffisance rénale",
    "purpose": "Mesurer l'incidence de l'insuffisance rénale\nchez les diabétiques.",
    "public_interest": "Adapter le dépistage.",
    "methodology": "Cohorte rétrospective 2015-2024.",
    "datasets": "snds",
    "members": "bob",
    "duration_days": "365",
    "compute_profile": "",
}


@dataclass
class Desk:
    client: TestClient
    hub: Any

    def get(self, who: str, path: str = LIST, lang: str = "en") -> Any:
        cookie = f"hdh-session={who}; {LANG_COOKIE}={lang}"
        return self.client.get(path, headers={"Cookie": cookie})

    def post(self, who: str, path: str, form: dict[str, str], token: str | None = None) -> Any:
        if token is None:
            token = form_token(self.get(who, path).text)
        return self.client.post(
            path,
            data={"_form": token, **form},
            headers={"Cookie": f"hdh-session={who}"},
            follow_redirects=False,
        )

    def apply(self, who: str = "rex", token: str | None = None, **change: str) -> Any:
        return self.post(who, f"{LIST}/new", {**APPLY, **change}, token)

    def applications(self) -> list[tuple[int, str, int]]:
        with self.hub.sessions() as s:
            return [(a.id, a.state, a.round) for a in s.query(Application).order_by(Application.id)]


def form_token(page: str) -> str:
    [token] = set(re.findall(r'name="_form" value="([0-9a-f]{64})"', page))
    return token


def field(page: str, name: str) -> str:
    """What a form of ``page`` shows in its field ``name`` (an input's value, a textarea's text)."""
    found = re.search(rf'<input [^>]*name="{name}" value="([^"]*)"', page) or re.search(
        rf'<textarea [^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S
    )
    assert found is not None, name
    return unescape(found.group(1))


def app_id(response: Any) -> int:
    assert response.status_code == 303, (response.status_code, response.text[:600])
    found = re.fullmatch(rf"{LIST}/(\d+)", response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


@pytest.fixture
def desk(hub: Any) -> Iterator[Desk]:
    """airlock.setup's people (alice and bob in study, mallory in other, the reviewers rita and
    raj, cora of the committee, dan a data controller), ada an administrator, rex a researcher
    of no project; dataset snds v1 in the catalogue."""
    airlock.setup(hub)
    with hub.transaction() as s:
        accounts.create_user(s, "ada", "admin", actor="test")
        accounts.create_user(s, "rex", "researcher", actor="test")
    fake_version(hub)
    with TestClient(create_app(hub.data_dir, browser_auth=_HubLogin())) as client:
        yield Desk(client, hub)


def test_apply_opinion_decision_then_the_permit(desk: Desk) -> None:
    site = LayoutSite(desk.client, desk.hub)
    # rex has nothing yet: the empty list says how to apply, with the link
    empty = assert_layout(desk.get("rex"), "rex", current="Applications")
    assert "No access application yet" in empty.text
    assert (f"{LIST}/new", "New application") in [(h, t) for h, t, _a in empty.links]
    assert "New application" not in assert_layout(desk.get("cora"), "cora").text
    form = assert_layout(desk.get("rex", f"{LIST}/new"), "rex", current="Applications")
    assert "snds" in form.text  # the catalogue's datasets, as a hint
    r = desk.apply()
    assert r.headers["content-security-policy"] == PAGE_CSP
    first = app_id(r)
    url = f"{LIST}/{first}"

    # the committee member sees it in the list and gives an opinion through its form
    listing = assert_layout(desk.get("cora"), "cora", current="Applications")
    assert url in [h for h, _t, _a in listing.links] and "submitted" in listing.text
    page = desk.get("cora", url)
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert "Give this opinion" in assert_layout(page, "cora").text
    assert "Record the decision" not in page.text and "Withdraw the application" not in page.text
    r = desk.post("cora", url, {"action": "opinion", "opinion": "favourable", "text": "Solide."})
    assert app_id(r) == first

    # the applicant reads the opinion without its author's name; may withdraw, not decide
    mine = assert_layout(desk.get("rex", url), "rex")
    assert "Solide." in mine.text and "a committee member" in mine.text
    assert "cora" not in mine.text and "Give this opinion" not in mine.text
    assert "Withdraw the application" in mine.text and "Record the decision" not in mine.text

    # the administrator records the authority's favourable decision: the permit is issued
    assert "Record the decision" in desk.get("ada", url).text
    decision = {"action": "decide", "decision": "favourable", "reference": "CNIL DR-2027-042"}
    assert app_id(desk.post("ada", url, decision)) == first
    with desk.hub.sessions() as s:
        [(state, permit_id)] = [(a.state, a.permit_id) for a in s.query(Application)]
        assert state == "approved" and permit_id is not None
        project = pj.get_project(s, "diabete-2027")
        assert {m.user.name: m.role for m in project.members} == {"rex": "lead", "bob": "member"}
        assert pj.access_problem(s, "bob", "diabete-2027") is None
        told = {(n.user_name, n.kind) for n in s.query(Notification)}
        assert {("cora", "application_submitted"), ("rex", "application_opinion")} <= told
        assert {("rex", "application_decided"), ("bob", "application_decided")} <= told
    for who in ("rex", "bob", "cora", "ada", "dan"):
        done = assert_layout(desk.get(who, url), who)
        assert f"permit #{permit_id}" in done.text and "CNIL DR-2027-042" in done.text, who
        assert "approved" in done.text and "Actions" not in done.text, who
        assert_links_open(site, who, done)
    assert (
        f"permit #{permit_id} is issued for project diabete-2027"
        in parse(desk.get("rex", url).text).text
    )
    # the project is rex's now: the projects page lists it
    assert "diabete-2027" in assert_layout(desk.get("rex", f"{PREFIX}ui/"), "rex").text


def test_a_refused_form_keeps_what_was_typed_and_makes_nothing(desk: Desk) -> None:
    for change, error in (
        ({"datasets": "snds\nnosuch"}, "no dataset 'nosuch' in the catalogue"),
        ({"members": "bob\nghost"}, "the member 'ghost' has no account"),
        ({"members": "rita"}, "only researchers apply and join projects"),
        ({"project": "study", "kind": "renewal"}, "rex does not lead project 'study'"),
        ({"duration_days": "a year"}, "the duration is a whole number of days"),
    ):
        r = desk.apply(**change)
        page = assert_layout(r, "rex", status=r.status_code)
        assert r.status_code in (403, 422), (change, r.status_code)
        assert error in page.text, (change, page.text[:800])
        typed = {**APPLY, **change}
        for name in ("project", "title", "purpose", "methodology", "datasets", "members"):
            assert field(r.text, name) == typed[name], (change, name)
        assert f'<option value="{typed["kind"]}" selected>' in r.text
    # a form from elsewhere (no valid token): refused, what was typed kept
    r = desk.apply(token="0" * 64)
    assert r.status_code == 403 and "this form expired" in r.text
    assert field(r.text, "title") == APPLY["title"]
    assert desk.applications() == []
    with desk.hub.sessions() as s:
        assert [p.slug for p in pj.projects_of(s)] == ["other", "study"]
    # only researchers apply: no form for the others
    for who in ("cora", "ada", "dan"):
        refused = assert_layout(desk.get(who, f"{LIST}/new"), who, status=403)
        assert "researchers apply for access to data" in refused.text


def test_a_person_outside_the_team_gets_404(desk: Desk) -> None:
    url = f"{LIST}/{app_id(desk.apply())}"
    for who in ("mallory", "rita", "alice"):
        page = assert_layout(desk.get(who, url), who, status=404)
        assert "Error 404 · Not Found" in page.text and "Back to the applications" in page.text
        assert url not in [h for h, _t, _a in assert_layout(desk.get(who), who).links]
    # a step posted by mallory, with her own valid token: as if there were no application
    mallory = BrowserUser("mallory", "session-of-mallory").form_token(_HubLogin().form_secret)
    r = desk.post("mallory", url, {"action": "withdraw", "confirm": "1"}, token=mallory)
    assert r.status_code == 404 and desk.applications()[0][1] == "submitted"
    assert desk.get("bob", url).status_code == 200  # a listed member sees it
    assert desk.get("cora", f"{LIST}/999").status_code == 404


def test_changes_requested_then_revised_then_withdrawn(desk: Desk) -> None:
    url = f"{LIST}/{app_id(desk.apply())}"
    changes = {"action": "opinion", "opinion": "changes_requested", "text": "Préciser."}
    desk.post("cora", url, changes)
    page = desk.get("rex", url).text
    assert "Revise the application" in page and "changes requested" in parse(page).text
    # the revision form shows the application as it is
    assert field(page, "title") == APPLY["title"] and field(page, "members") == "bob"
    revised = {
        "action": "revise",
        **{k: v for k, v in APPLY.items() if k not in ("kind", "project")},
        "datasets": "nosuch",
        "note": "Méthode précisée.",
    }
    r = desk.post("rex", url, revised)
    assert r.status_code == 422 and "no dataset 'nosuch'" in parse(r.text).text
    assert field(r.text, "datasets") == "nosuch" and field(r.text, "note") == "Méthode précisée."
    assert app_id(desk.post("rex", url, {**revised, "datasets": "snds/v1"})) > 0
    assert desk.applications()[0][1:] == ("submitted", 2)
    # withdrawing asks for the box to be ticked
    r = desk.post("rex", url, {"action": "withdraw"})
    assert r.status_code == 422 and "tick the box to confirm the withdrawal" in r.text
    assert app_id(desk.post("rex", url, {"action": "withdraw", "confirm": "1"})) > 0
    assert desk.applications()[0][1] == "withdrawn"
    done = assert_layout(desk.get("rex", url), "rex")
    assert "withdrawn" in done.text and "Actions" not in done.text
    with desk.hub.sessions() as s:
        assert s.query(ApplicationOpinion).count() == 1


def test_the_pages_in_french(desk: Desk) -> None:
    url = f"{LIST}/{app_id(desk.apply())}"
    desk.post("cora", url, {"action": "opinion", "opinion": "favourable", "text": "Solide."})
    for who, path in (
        ("rex", LIST),
        ("rex", f"{LIST}/new"),
        ("rex", url),
        ("cora", LIST),
        ("ada", url),
        ("mallory", url),
    ):
        r = desk.get(who, path, lang="fr")
        assert '<html lang="fr">' in r.text, (who, path)
        assert r.headers["content-security-policy"] == PAGE_CSP
        assert not english_left(r.text), (who, path, english_left(r.text))
        assert "Demandes d’accès" in parse(r.text).nav_labels, (who, path)
    text = parse(desk.get("ada", url, lang="fr").text).text
    assert "Enregistrer la décision" in text and "soumise" in text and "favorable" in text
    # the browser's Accept-Language alone
    r = desk.client.get(
        url, headers={"Cookie": "hdh-session=rex", "Accept-Language": "fr-FR,fr;q=0.9"}
    )
    assert '<html lang="fr">' in r.text and "un membre du comité" in parse(r.text).text
