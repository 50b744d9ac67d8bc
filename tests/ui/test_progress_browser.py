"""Long actions show their progress, in a real browser (Debian ``chromium`` and Playwright)
through ``hdh up``.

alice's catalogue search says it is searching (a spinner, "Searching…", the results marked
``aria-busy``) until the answer comes, then shows the hits; an answer that comes after a
newer search's is ignored; a dataset's page says "Loading demo-snds…" until it comes. She
adds two files to a new export request: a notification says "Snapshotting 1 of 2 files…",
then "2 of 2", then how many were added; she submits it, clicks Submit again while the
first submission runs, and only one submission is sent.

The answers are the real server's: Playwright's routing only holds each request back until
the busy state has been seen (``route.continue_()``), so every wait is on a condition,
never on time. One ``hdh up`` per module (``tests/hub/test_embedded_hub.py``'s ``up``),
the browser of ``tests/ui/test_jupyterlab_browser.py``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_hdh_panel import (
    PANEL,
    REFRESH,
    TAB,
    _close_dialog,
    _dialog,
    fetch,
    show_files,
)
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (fixtures)
    Lab,
    _screenshot_on_failure,
    _ui_problem,
    lab,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))]

#: One animation frame in the page: what it does with an answer it has read is done.
NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


class Held:
    """Requests matching a route, held back until released (then sent to the real server)."""

    def __init__(self, page: Any, pattern: Any) -> None:
        self.page = page
        self.pattern = pattern
        self.routes: list[Any] = []
        self._handler = lambda route: self.routes.append(route)
        page.route(pattern, self._handler)

    def wait(self, n: int) -> None:
        """Until ``n`` requests are held (each page call lets Playwright hand them over)."""
        wait_for(lambda: self.page.evaluate("1") and len(self.routes) >= n, f"{n} held", 30)
        assert len(self.routes) == n, [r.request.url for r in self.routes]

    def release(self, index: int = 0) -> Any:
        """Lets the request at ``index`` go; answers its response once fully read."""
        route = self.routes.pop(index)
        url = route.request.url
        with self.page.expect_response(lambda r: r.url == url) as answer:
            route.continue_()
        response = answer.value
        response.finished()
        return response

    def stop(self) -> None:
        self.page.unroute(self.pattern, self._handler)
        for route in self.routes:
            try:
                route.continue_()
            except Exception as e:  # the page went on without it (closed, reloaded)
                print(f"held {route.request.url}: {e}")
        self.routes.clear()


def ends(url: str, suffix: str) -> bool:
    """Whether a URL's path ends with ``suffix`` (JupyterLab adds a cache-busting query)."""
    return "/hdh/egress/requests/" in url and urlsplit(url).path.endswith(suffix)


def open_catalogue(page: Any) -> Any:
    if not page.locator(PANEL).is_visible():
        page.locator(TAB).click()
    page.locator(".jp-hdh-browse").click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")
    return widget


def test_search_and_dataset_page_show_they_are_loading(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    searches = Held(page, "**/hdh/catalogue/search*")
    try:
        widget = open_catalogue(page)
        status = widget.locator(".jp-hdh-cat-status")
        results = widget.locator(".jp-hdh-cat-results")
        # the first search (no words, on opening) is on its way: busy, no hit yet
        busy = widget.locator(".jp-hdh-cat-status.jp-hdh-cat-loading")
        busy.wait_for(state="visible")
        assert busy.locator(".jp-hdh-spinner").count() == 1
        assert status.inner_text().strip() == "Searching…"
        assert results.get_attribute("aria-busy") == "true"
        searches.wait(1)
        searches.release()
        widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"]').first.wait_for()
        assert results.get_attribute("aria-busy") is None
        assert "jp-hdh-cat-loading" not in (status.get_attribute("class") or "")

        # a search whose answer comes after a newer one's: ignored
        query = widget.locator(".jp-hdh-cat-query")
        query.fill("zzzz")
        busy.wait_for(state="visible")
        searches.wait(1)
        query.fill("IR_BEN_R")
        searches.wait(2)
        assert "q=IR_BEN_R" in searches.routes[1].request.url
        searches.release(1)  # the newer one first
        table_hit = widget.locator('.jp-hdh-cat-hit[data-table="IR_BEN_R"]').first
        table_hit.wait_for(state="visible")
        shown = widget.locator(".jp-hdh-cat-hit").count()
        stale = searches.release(0)  # then the stale one: "nothing matches zzzz"
        assert stale.ok, stale.status
        page.evaluate(NEXT_FRAME)
        assert widget.locator(".jp-hdh-cat-hit").count() == shown
        assert "zzzz" not in status.inner_text()
        assert results.get_attribute("aria-busy") is None
    finally:
        searches.stop()

    pages = Held(page, "**/hdh/catalogue/datasets/**")
    try:
        query.fill("")
        hit = widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"][data-table=""]')
        hit.first.click()
        detail = widget.locator(".jp-hdh-cat-detail")
        loading = detail.locator(".jp-hdh-cat-loading")
        loading.wait_for(state="visible")
        assert loading.inner_text().strip() == "Loading demo-snds…"
        assert detail.get_attribute("aria-busy") == "true"
        pages.wait(1)
        pages.release()
        widget.locator(".jp-hdh-cat-title").wait_for(state="visible")
        assert detail.get_attribute("aria-busy") is None
        assert loading.count() == 0
    finally:
        pages.stop()


def test_adding_files_and_submitting_show_each_step(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    names = [f"progress-{n}.csv" for n in ("a", "b")]
    for name in names:
        status, body = fetch(
            lab,
            f"api/contents/{name}",
            "PUT",
            {"type": "file", "format": "text", "content": "group,n\nA,120\nB,135\n"},
        )
        assert status in (200, 201), body
    show_files(page)
    page.locator(REFRESH).click()
    first = page.locator(".jp-DirListing-item", has_text=names[0]).first
    second = page.locator(".jp-DirListing-item", has_text=names[1]).first
    first.click()
    second.click(modifiers=["Shift"])
    second.click(button="right")
    lab.menu_labels()
    page.locator(".lm-Menu .lm-Menu-item", has_text="Add to export request…").click()
    d = _dialog(lab)
    assert "2 files" in d.inner_text()
    d.locator("select[name=role]").select_option("output")
    d.locator("select[name=request]").select_option("__new__")
    title = f"Progress test {time.time_ns()}"
    d.locator("input[name=title]").fill(title)
    d.locator("input[name=population]").fill("All demo patients")
    d.locator("input[name=variables]").fill("group, n")
    d.locator("input[name=degrees_of_freedom]").fill("1")
    d.locator("textarea[name=description]").fill("Counts per group")
    d.locator("textarea[name=controls]").fill("No cell below 10")

    files = Held(page, lambda url: ends(url, "/files"))
    try:
        _close_dialog(lab, accept=True)
        # each file is snapshotted as it is added: one step each, shown as it runs
        page.get_by_text("Snapshotting 1 of 2 files…").first.wait_for(state="visible")
        files.wait(1)
        assert files.release().ok
        page.get_by_text("Snapshotting 2 of 2 files…").first.wait_for(state="visible")
        files.wait(1)
        assert files.release().ok
        done = page.get_by_text("2 files added to export request #")
        done.first.wait_for(state="visible")
    finally:
        files.stop()

    panel = page.locator(PANEL)
    request = panel.locator(".jp-hdh-request", has_text=title)
    request.wait_for(state="visible")
    request_id = request.get_attribute("data-request-id")
    for name in names:
        request.locator(f'.jp-hdh-file[data-path="{name}"]').wait_for(state="visible")

    submits = Held(page, lambda url: ends(url, "/submit"))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if ends(r.url, "/submit") else None)
    try:
        submit = request.get_by_role("button", name="Submit")
        submit.click()
        page.get_by_text(f"Submitting export request #{request_id}").first.wait_for()
        # a second click while it runs sends nothing more (disabled, or joined to the first)
        submits.wait(1)
        submit.click(force=True)
        page.evaluate(NEXT_FRAME)
        assert len(submits.routes) == 1 and len(sent) == 1, sent
        assert submits.release().ok
        page.get_by_text(f"Export request #{request_id} submitted.").first.wait_for()
    finally:
        submits.stop()
    status, view = fetch(lab, f"hdh/egress/requests/{request_id}")
    assert status == 200 and view["state"] != "draft", view
    assert len(sent) == 1, sent


def test_the_browser_asked_for_nothing_refused(lab: Lab) -> None:  # noqa: F811
    assert lab.http_errors == [], lab.http_errors
    assert not [m for m in lab.console if m.startswith("[pageerror]")], lab.console
    assert lab.csp_violations() == []
