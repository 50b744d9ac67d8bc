"""A reviewer opens a hostile notebook in a real browser (Debian Chromium through Playwright).

Alice submits a notebook whose cells, outputs, metadata and attachments carry script
payloads of every kind and data hidden in places a notebook viewer does not show. Bob, an
output checker, logs in through the hub and opens the request's review page on the control
plane. Nothing of the notebook runs in his browser (no changed title, no dialog, no request
to another host, no cookie read), and everything hidden is there on the page as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (
    _CSP_LISTENER,
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _ui_problem,
)

pytestmark = pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))

MARK = "document.title='PWNED'"
HIDDEN = "HIDDEN-PATIENT-ROW-4711"
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}, "x": HIDDEN},
    "cells": [
        {
            "cell_type": "markdown",
            "id": "m1",
            "metadata": {},
            "source": f'<img src=x onerror="{MARK}"> <a href="javascript:{MARK}">click</a>',
            "attachments": {"a.txt": {"text/plain": f"{HIDDEN}-attachment"}},
        },
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {"tags": [f"{HIDDEN}-tag"]},
            "execution_count": 1,
            "source": "display(table)",
            "outputs": [
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "text/html": (
                            f'<script>{MARK}</script><svg onload="{MARK}"></svg>'
                            f'<iframe src="https://evil.example/"></iframe>'
                            f'<img src="https://evil.example/x.png">'
                            f'<style>body{{background:url("https://evil.example/c")}}</style>'
                            "<b>counts</b>"
                        ),
                        "text/plain": f"{HIDDEN}-plain-alternative",
                        "application/javascript": MARK,
                        "image/svg+xml": f'<svg onload="{MARK}"></svg>',
                    },
                }
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def review(up: Up) -> Iterator[tuple[Any, list[str], list[str], int, str]]:  # noqa: F811
    from playwright.sync_api import sync_playwright

    workspace = up.data_dir / "workspaces" / "demo"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "hostile.ipynb").write_text(json.dumps(NOTEBOOK))
    r = up.hdh(
        "egress", "submit", "hostile.ipynb", "--as", "alice", "--project", "demo",
        "--title", "Hostile notebook", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    request_id = int(json.loads(r.stdout)["id"])
    hosts: list[str] = []
    events: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_init_script(_CSP_LISTENER)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda req: hosts.append(urlsplit(req.url).hostname or ""))
            page.on("dialog", lambda d: (events.append(f"dialog {d.message}"), d.dismiss()))
            page.on("console", lambda m: events.append(f"[{m.type}] {m.text}"))
            page.on("pageerror", lambda e: events.append(f"[pageerror] {e}"))
            page.goto(f"{up.url}/hub/login")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", up.creds["bob"]["password"])
            with page.expect_navigation():
                page.click("#login_submit")
            response = page.goto(f"{up.url}/services/hdh/ui/egress/requests/{request_id}")
            assert response is not None and response.status == 200
            page.wait_for_load_state("networkidle")
            csp = response.headers.get("content-security-policy", "")
            yield page, hosts, events, request_id, csp
        finally:
            print("\n--- page events ---\n" + "\n".join(events))
            browser.close()


def test_the_review_page_is_served_with_a_no_script_policy(review: Any) -> None:
    page, _hosts, _events, request_id, csp = review
    assert f"/services/hdh/ui/egress/requests/{request_id}" in page.url  # logged in via OAuth
    # no script source at all, and no inline anything (the one style block is pinned by hash)
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    # the browser enforces it: even a same-origin fetch from the page is refused
    outcome = page.evaluate("fetch(location.href).then(() => 'sent', () => 'refused')")
    assert outcome == "refused"
    assert page.evaluate("window.__hdhCsp.length") >= 1


def test_nothing_of_the_notebook_runs_or_calls_out(review: Any) -> None:
    page, hosts, events, _, _csp = review
    assert page.title() != "PWNED"
    assert not [e for e in events if e.startswith("dialog")], events
    assert set(hosts) <= {"127.0.0.1"}, sorted(set(hosts))
    assert page.evaluate("document.querySelectorAll('script, iframe, object, embed').length") == 0
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
        ".filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))"
        ".map(a => a.name))"
    )
    assert handlers == []


def test_hidden_content_is_shown_to_the_reviewer(review: Any) -> None:
    page, _hosts, _events, _, _csp = review
    text = page.inner_text("body")
    for hidden in (
        f"{HIDDEN}-plain-alternative",  # the text/plain alternative of an HTML output
        f"{HIDDEN}-tag",  # cell metadata
        f"{HIDDEN}-attachment",  # a markdown cell's attachment
        HIDDEN,  # notebook metadata
    ):
        assert hidden in text, hidden
    # the payloads are there as text, for the reviewer to see what was attempted
    assert re.search(r"onerror|onload", text), text[:2000]
    assert "application/javascript" in text
