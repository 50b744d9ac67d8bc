"""Who is asking: the guard's identity providers.

Owns turning a request into a hub user name. Production uses JupyterHub OAuth
(:class:`HubOAuthIdentity`: the guard is a hub service with its own OAuth
client; its token cookie is scoped to ``/`` so it reaches ``/user/...`` URLs,
and it is never forwarded to a sandbox). Tests and the benchmark plug a
:class:`HeaderIdentity` (trusts a header: never use it behind a real proxy).
"""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado import web
from tornado.httputil import url_concat


class GuardHubOAuth(HubOAuth):
    """HubOAuth whose cookie covers every path the guard serves (``/user/...``)."""

    @property
    def cookie_path(self) -> str:  # type: ignore[override]
        return "/"


class HubOAuthIdentity:
    """Identify users with the hub's OAuth token cookie; redirect browsers to log in.

    A token identifies its user only if its scopes grant access to the guard
    service or to the requested server: a narrow API token of the same user
    (``read:users``, say) is not enough to drive a kernel.
    """

    def __init__(self, hub_auth: HubOAuth, service_name: str = "guard") -> None:
        self.hub_auth = hub_auth
        self.service_name = service_name

    def accepted_scopes(self, name: str, project: str) -> set[str]:
        return {
            "access:services",
            f"access:services!service={self.service_name}",
            "access:servers",
            f"access:servers!user={name}",
            f"access:servers!server={name}/{project}",
        }

    async def __call__(self, handler: web.RequestHandler) -> str | None:
        model = await self.hub_auth.get_user(handler, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None
        name = model.get("name")
        if not name:
            return None
        decision = getattr(handler, "decision", None)
        project = getattr(decision, "project", "")
        if not self.accepted_scopes(str(name), project) & set(model.get("scopes") or ()):
            return None
        return str(name)

    def login_redirect(self, handler: web.RequestHandler) -> str | None:
        if not self.hub_auth.login_url:
            return None
        params: dict[str, Any] = {}
        verifier = None
        if getattr(self.hub_auth, "pkce_enabled", False):
            verifier, challenge, method = self.hub_auth.generate_pkce_code_challenge()
            params["code_challenge"] = challenge
            params["code_challenge_method"] = method
        params["state"] = self.hub_auth.set_state_cookie(
            handler, next_url=handler.request.uri, code_verifier=verifier
        )
        return str(url_concat(self.hub_auth.login_url, params))


class GuardOAuthCallbackHandler(HubOAuthCallbackHandler):
    """``<service prefix>oauth_callback``, bound to the guard's HubOAuth instance."""

    @property
    def hub_auth(self) -> HubOAuth:  # type: ignore[override]
        return self.settings["hub_auth"]  # type: ignore[no-any-return]

    @hub_auth.setter
    def hub_auth(self, auth: HubOAuth) -> None:
        pass


class HeaderIdentity:
    """Trust ``X-Test-User`` (tests/benchmarks only: anyone can set a header)."""

    def __init__(self, header: str = "X-Test-User") -> None:
        self.header = header

    def __call__(self, handler: web.RequestHandler) -> str | None:
        return handler.request.headers.get(self.header) or None
