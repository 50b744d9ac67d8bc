"""A refused spawn and the hub's home page, in a real browser (Debian ``chromium``, Playwright).

One ``hdh up`` per module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``). bob
is no member of project ``demo``: opening ``/hub/spawn/bob/demo`` shows the one-line
reason with status 403 (not JupyterHub's "500 : Unhandled error starting server"), and
the hub's home page offers no default server ("My Server"), only a link to his projects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _ui_problem

pytestmark = pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))


@pytest.fixture(scope="module")
def bob(up: Up) -> Iterator[Any]:  # noqa: F811
    """A chromium page logged in to the hub as bob."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{up.url}/hub/login")
            page.fill("input[name=username]", "bob")
            page.fill("input[name=password]", up.creds["bob"]["password"])
            with page.expect_navigation():
                page.click("#login_submit")
            yield page
        finally:
            browser.close()


def test_a_refused_spawn_shows_the_reason_with_403(up: Up, bob: Any) -> None:  # noqa: F811
    response = bob.goto(f"{up.url}/hub/spawn/bob/demo")
    text = bob.locator("body").inner_text()
    assert response is not None and response.status == 403, text[:500]
    assert "bob may not open project demo: 'bob' is not a member of project 'demo'" in text
    assert "Unhandled error" not in text and "500 :" not in text
    # a refusal is not mended by a restart: the page points to the person's projects instead
    assert "try restarting" not in text
    projects = bob.get_by_role("link", name="your projects")
    assert projects.get_attribute("href") == "/services/hdh/ui/"


def test_the_home_page_offers_no_default_server(up: Up, bob: Any) -> None:  # noqa: F811
    bob.goto(f"{up.url}/hub/home")
    text = bob.locator("body").inner_text()
    assert "My Server" not in text and "Add New Server" not in text, text[:1000]
    assert "There is no default server" in text
    link = bob.get_by_role("link", name="your projects")
    assert link.get_attribute("href") == "/services/hdh/ui/"
    with bob.expect_navigation():
        link.click()
    assert bob.url.startswith(f"{up.url}/services/hdh/ui/"), bob.url
    assert "Your projects" in bob.locator("body").inner_text()
