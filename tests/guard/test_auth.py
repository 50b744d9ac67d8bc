"""The production identity (JupyterHub OAuth) against a stand-in hub API.

A small Tornado app plays the hub's REST API (``GET /hub/api/user`` answers
for known tokens, as JupyterHub does); the guard runs with
``HubOAuthIdentity`` exactly as ``main()`` builds it. Not covered here: the
OAuth authorisation-code exchange with a real JupyterHub.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websocket
from tornado import web
from tornado.web import create_signed_value

from jupyterlab_hdh.guard.auth import GuardHubOAuth, HubOAuthIdentity
from jupyterlab_hdh.guard.policy import GuardConfig

from .conftest import BASE, GuardServer, Upstream, free_port, run_guard

SECRET = b"s" * 32
TOKENS: dict[str, dict[str, Any]] = {
    "tok-alice": {"kind": "user", "name": "alice", "scopes": ["access:services!service=guard"]},
    "tok-alice-narrow": {"kind": "user", "name": "alice", "scopes": ["read:users!user=alice"]},
    "tok-bob": {"kind": "user", "name": "bob", "scopes": ["access:services!service=guard"]},
}


class FakeHubUser(web.RequestHandler):
    def get(self) -> None:
        auth = self.request.headers.get("Authorization", "")
        model = TOKENS.get(auth.split(" ", 1)[-1])
        if model is None:
            raise web.HTTPError(403)
        self.finish(model)


@pytest.fixture(scope="module")
def oauth_guard(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GuardServer, GuardHubOAuth]]:
    hub_port = free_port()
    hub_auth = GuardHubOAuth(
        api_token="guard-service-token",
        api_url=f"http://127.0.0.1:{hub_port}/hub/api",
        base_url="/services/guard/",
        hub_prefix="/hub/",
        login_url="/hub/api/oauth2/authorize",
        oauth_client_id="service-guard",
        oauth_redirect_uri="/services/guard/oauth_callback",
        cache_max_age=0,
    )
    identity = HubOAuthIdentity(hub_auth, "guard")
    fake_hub = web.Application([(r"/hub/api/user", FakeHubUser)])
    yield from (
        (g, hub_auth)
        for g in run_guard(
            upstream.sock,
            tmp_path_factory.mktemp("oauth"),
            GuardConfig(),
            extra_apps=((fake_hub, hub_port),),
            identify=identity,
            login_redirect=identity.login_redirect,
            hub_auth=hub_auth,
            service_prefix="/services/guard/",
            cookie_secret=SECRET,
        )
    )


def token_cookie(hub_auth: GuardHubOAuth, token: str) -> str:
    return create_signed_value(SECRET, hub_auth.cookie_name, token).decode()


def test_browser_without_cookie_is_sent_to_hub_login(
    oauth_guard: tuple[GuardServer, GuardHubOAuth],
) -> None:
    g, _ = oauth_guard
    with httpx.Client(base_url=g.url) as c:
        r = c.get(BASE + "lab", follow_redirects=False)
        assert r.status_code == 302
        loc = urlsplit(r.headers["location"])
        assert loc.path == "/hub/api/oauth2/authorize"
        assert parse_qs(loc.query)["state"]
        assert "content-security-policy" in r.headers
        # API calls and websockets get 403, never a redirect
        assert c.get(BASE + "api/status").status_code == 403


def test_token_cookie_identifies_user(oauth_guard: tuple[GuardServer, GuardHubOAuth]) -> None:
    g, hub_auth = oauth_guard
    cookie = token_cookie(hub_auth, "tok-alice")
    with httpx.Client(base_url=g.url, cookies={hub_auth.cookie_name: cookie}) as c:
        r = c.get(BASE + "api/status")
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("token", ["tok-bob", "tok-alice-narrow", "forged"])
def test_other_user_narrow_or_forged_token_refused(
    oauth_guard: tuple[GuardServer, GuardHubOAuth], token: str
) -> None:
    g, hub_auth = oauth_guard
    before = len(g.forwarded)
    cookie = token_cookie(hub_auth, token)
    with httpx.Client(base_url=g.url, cookies={hub_auth.cookie_name: cookie}) as c:
        assert c.get(BASE + "api/status").status_code == 403
    # a cookie not signed with the guard's secret is ignored
    with httpx.Client(base_url=g.url, cookies={hub_auth.cookie_name: "tok-alice"}) as c:
        assert c.get(BASE + "api/status").status_code == 403
    assert len(g.forwarded) == before


def test_authorization_header_token_and_websocket(
    oauth_guard: tuple[GuardServer, GuardHubOAuth],
) -> None:
    g, _ = oauth_guard
    with httpx.Client(base_url=g.url, headers={"Authorization": "token tok-alice"}) as c:
        assert c.get(BASE + "api/status").status_code == 200
    url = f"ws://127.0.0.1:{g.port}{BASE}api/events/subscribe"
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(url, origin=f"http://127.0.0.1:{g.port}", timeout=10)
    assert exc.value.status_code == 403
    ws = websocket.create_connection(
        url, origin=f"http://127.0.0.1:{g.port}", header=["Authorization: token tok-alice"]
    )
    ws.close()
