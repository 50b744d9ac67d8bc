"""`hdh user disable` against the running hub (`hdh up`): the login form refuses the
person, and so does every spawn, from a browser session opened before or with a hub token
issued after; `hdh user enable` lets them back in.

One ``hdh up`` for this module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``).
"""

from __future__ import annotations

import httpx

from tests.hub.test_embedded_hub import Up, follow, login, spawn, up  # noqa: F401  (fixture)


def _login_form(up: Up, user: str) -> httpx.Response:  # noqa: F811
    with httpx.Client(timeout=60) as c:
        c.get(f"{up.url}/hub/login")
        return c.post(
            f"{up.url}/hub/login",
            data={
                "username": user,
                "password": up.creds[user]["password"],
                "_xsrf": c.cookies.get("_xsrf", path="/hub/"),
            },
        )


def test_a_disabled_user_can_neither_log_in_nor_spawn_until_enabled(up: Up) -> None:  # noqa: F811
    browser = login(up, "alice")  # a session opened before she is disabled
    try:
        disabled = up.hdh("user", "disable", "alice")
        assert disabled.returncode == 0 and "alice disabled" in disabled.stdout
        page = follow(browser, f"{up.url}/hub/spawn/alice/demo")
        assert page.status_code == 403, page.text[:500]
        with up.api("alice") as api:  # a hub token issued after
            refused = spawn(api, "alice", "demo")
            assert refused.status_code == 403, refused.text[:500]
        form = _login_form(up, "alice")
        assert form.status_code != 302 and "Invalid username or password" in form.text
        enabled = up.hdh("user", "enable", "alice")
        assert enabled.returncode == 0 and "alice enabled" in enabled.stdout
        assert _login_form(up, "alice").status_code == 302
    finally:
        browser.close()
    events = [e["action"] for e in up.audit() if e["target"] == "user:alice"]
    assert "user.disable" in events and "user.enable" in events
    assert events.index("auth.login_failed") > events.index("user.disable")
