"""Browser sessions on the control plane, through JupyterHub OAuth.

Owns logging people in to the control plane's web pages when it runs as the
hub's ``hdh`` service (``hdh up``): the hub is the identity provider, exactly
as for the guard. A page without a session redirects to the hub's OAuth
authorise URL (with a state bound to the browser by a short-lived cookie and
PKCE); ``<prefix>oauth_callback`` exchanges the code for a token and keeps it
in an HttpOnly, SameSite=Lax cookie scoped to the service's prefix. Each page
asks the hub who the token belongs to (cached for a minute) and accepts it only
when its scopes grant access to this service.

Forms are protected against cross-site posts twice: SameSite=Lax cookies, and
a form token (HMAC of the session token) that a page from another origin
cannot read. Outside the hub (plain ``hdh serve``) the pages answer 503.

The same token, sent as the ``X-HDH-Token`` header (:data:`API_TOKEN_HEADER`), lets a
script of the hub's origin (the review widget in JupyterLab) call the airlock's JSON API
with this cookie (``deps.browser_session``): a cookie alone never authenticates an API
call, since no cross-site request can set that header. Requests that came through the
hub's proxy are marked (:data:`VIA_PREFIX` in the ASGI scope, by :class:`StripPrefix`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth

STATE_COOKIE_MAX_AGE = 600
#: The header carrying a browser session's anti-forgery token on API calls.
API_TOKEN_HEADER = "X-HDH-Token"  # noqa: S105 - a header's name
#: The ASGI scope key :class:`StripPrefix` sets on requests that came under the prefix.
VIA_PREFIX = "hdh.via_prefix"


class NotLoggedIn(Exception):  # noqa: N818 - answered with a redirect to the hub's login
    """The browser has no valid session: send it to ``login_url``."""

    def __init__(self, login_url: str, state_cookie: tuple[str, str]) -> None:
        super().__init__("login required")
        self.login_url = login_url
        self.state_cookie = state_cookie


class BrowserAuthError(Exception):
    """A login that cannot complete (bad state, refused code): answered 400/403 in one line."""


@dataclass(frozen=True)
class BrowserUser:
    name: str
    token: str  # the OAuth token of this session (never shown, never logged)

    def form_token(self, secret: bytes) -> str:
        return hmac.new(secret, self.token.encode(), hashlib.sha256).hexdigest()


class HubBrowserAuth:
    """HubOAuth for one service, framework-neutral (the FastAPI routes call it)."""

    def __init__(self, service_prefix: str, service_name: str, hub_auth: HubOAuth) -> None:
        self.prefix = service_prefix if service_prefix.endswith("/") else service_prefix + "/"
        self.service_name = service_name
        self.hub_auth = hub_auth
        self.form_secret = secrets.token_bytes(32)

    @classmethod
    def from_env(cls) -> HubBrowserAuth | None:
        """The hub's OAuth client of this service, when the hub started it (else None)."""
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not prefix or not token or not os.environ.get("JUPYTERHUB_CLIENT_ID"):
            return None
        auth = HubOAuth(api_token=token, base_url=prefix, cache_max_age=60)
        return cls(prefix, os.environ.get("JUPYTERHUB_SERVICE_NAME", "hdh"), auth)

    @property
    def cookie_name(self) -> str:
        return str(self.hub_auth.cookie_name)

    @property
    def state_cookie_name(self) -> str:
        return f"{self.cookie_name}-oauth-state"

    def cookie_options(self) -> dict[str, Any]:
        return {"path": self.prefix, "httponly": True, "samesite": "lax"}

    def accepted_scopes(self) -> set[str]:
        return {"access:services", f"access:services!service={self.service_name}"}

    async def user(self, cookies: dict[str, str], next_url: str) -> BrowserUser:
        """The logged-in user of this browser, or :class:`NotLoggedIn` to redirect."""
        token = cookies.get(self.cookie_name, "")
        if token:
            model = await self.hub_auth.user_for_token(token, sync=False)
            if (
                model
                and model.get("kind", "user") == "user"
                and model.get("name")
                and self.accepted_scopes() & set(model.get("scopes") or ())
            ):
                return BrowserUser(str(model["name"]), token)
        raise self.login(next_url)

    def login(self, next_url: str) -> NotLoggedIn:
        verifier, challenge, method = self.hub_auth.generate_pkce_code_challenge()
        state = self.hub_auth.generate_state(next_url, code_verifier=verifier)
        query = urlencode(
            {"state": state, "code_challenge": challenge, "code_challenge_method": method}
        )
        return NotLoggedIn(f"{self.hub_auth.login_url}&{query}", (self.state_cookie_name, state))

    async def callback(self, code: str, state: str, cookies: dict[str, str]) -> tuple[str, str]:
        """Finish a login: ``(token, next_url)``; :class:`BrowserAuthError` if it cannot."""
        if not code or not state:
            raise BrowserAuthError("the OAuth callback needs a code and a state")
        if not hmac.compare_digest(cookies.get(self.state_cookie_name, ""), state):
            raise BrowserAuthError("OAuth state mismatch: start again from the page you wanted")
        next_url = self.hub_auth.get_next_url(state)
        verifier = self.hub_auth.get_code_verifier(state)
        self.hub_auth.clear_oauth_state(state)
        try:
            token = await self.hub_auth.token_for_code(code, code_verifier=verifier, sync=False)
        except Exception:
            raise BrowserAuthError("the hub refused this login code: log in again") from None
        if not str(next_url).startswith(self.prefix):
            next_url = self.prefix
        return str(token), str(next_url)

    def check_form(self, user: BrowserUser, submitted: str) -> bool:
        return hmac.compare_digest(user.form_token(self.form_secret), submitted or "")


class StripPrefix:
    """ASGI middleware: serve the same app at ``/`` and under the hub's service prefix.

    The hub's proxy forwards ``/services/hdh/...`` with the prefix; the CLI, the
    API bridge and scripts call ``http://127.0.0.1:PORT/api/...`` without it. Under the
    prefix, ``root_path`` is the prefix: the Swagger page at ``<prefix>api/docs`` then
    loads ``<prefix>api/openapi.json`` (not ``/api/openapi.json``, outside the service).
    Such a request is marked ``scope[VIA_PREFIX] = True`` (only those may use a browser
    session on the JSON API).
    """

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = "/" + prefix.strip("/")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            path = scope.get("path", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = dict(scope)
                scope["path"] = path[len(self.prefix) :] or "/"
                scope["raw_path"] = scope["path"].encode()
                scope["root_path"] = scope.get("root_path", "") + self.prefix
                scope[VIA_PREFIX] = True
        await self.app(scope, receive, send)
