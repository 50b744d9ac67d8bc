"""The dependencies every route takes (FastAPI ``Depends``), defined once.

Owns what a route may ask for: the app's configuration (:class:`ApiConfig`, kept in
``app.state.hdh`` by ``create_app``), the opened installation and a session of its
store, the caller behind a bearer token with a role the route allows (``Controller``,
``Admin``, ``Anyone``), and the (user, project) the hub's API bridge vouches for
(``Bridged``), with the permit that lets them in now.

A browser may call the airlock's routes (``/api/egress/...``) and a project's audited code
(:data:`BROWSER_API`) without a bearer token, with the hub cookie of the control-plane
pages, only when the request came through the hub's proxy (under the service prefix), is
a reviewer's or an administrator's, AND carries ``X-HDH-Token``: the
session's anti-forgery token (``GET <prefix>ui/api/session``), compared in constant time
(:func:`browser_session`). The cookie alone, a wrong token or another session's token is a
401 JSON answer, never a redirect. Direct requests (``127.0.0.1:PORT``) stay bearer-only,
and the bridge routes (``Bridged``) never look at a cookie.

(No ``from __future__ import annotations``: FastAPI reads the ``Annotated`` aliases
below as objects.)
"""

import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.browser import (
    API_TOKEN_HEADER,
    VIA_PREFIX,
    BrowserUser,
    HubBrowserAuth,
    NotLoggedIn,
)
from jupyterlab_hdh.api.hub_client import HubClient
from jupyterlab_hdh.catalogue.manager import Catalogue
from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.egress import notify as mail
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.accounts import AccountError, authenticate, get_user
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import ROLES, User

bearer = HTTPBearer(auto_error=False)
CONTROLLERS = ("data_controller", "admin")
#: The routes a browser session (hub cookie + ``X-HDH-Token``) may call: the airlock's, and
#: a project's audited code (the review widget shows the code behind a request's files).
BROWSER_API = re.compile(r"^/api/(?:egress/.*|projects/[a-z0-9][a-z0-9-]*/audit/code|audit/code)$")
#: Who may use a browser session at all: those who review (the review widget). A project
#: member reaches the airlock from their sandbox (the bridge binds the project); a session
#: for them would let a script in their lab page write to another project's requests.
BROWSER_SESSION_ROLES = projects.REVIEW_WORKSPACE_ROLES


@dataclass
class ApiConfig:
    """One control plane's settings and state (``app.state.hdh``).

    ``bridge_token`` enables ``/api/bridge/...`` (else 503); ``browser_auth`` (the hub's
    OAuth client) the web pages under ``/ui/``; ``hub_servers`` lets those pages restart a
    sandbox; ``email`` defaults to :meth:`EmailSettings.load` of the data directory."""

    data_dir: DataDir
    base_url: str = "http://127.0.0.1:8000"
    bridge_token: str | None = None
    browser_auth: HubBrowserAuth | None = None
    hub_servers: HubClient | None = None
    email: mail.EmailSettings | None = None
    catalogue: Catalogue = field(default_factory=Catalogue)
    #: the opened installation, from the app's start to its end (the lifespan)
    installation: Installation | None = None

    def opened(self) -> Installation:
        if self.installation is None:
            raise RuntimeError("the control plane's installation is not open (app not started)")
        return self.installation

    def mail_settings(self) -> mail.EmailSettings:
        if self.email is None:
            self.email = mail.EmailSettings.load(self.data_dir.root)
        return self.email


def config(request: Request) -> ApiConfig:
    cfg: ApiConfig = request.app.state.hdh
    return cfg


Config = Annotated[ApiConfig, Depends(config)]


def installation(cfg: Config) -> Installation:
    return cfg.opened()


Inst = Annotated[Installation, Depends(installation)]


def session(inst: Inst) -> Iterator[Session]:
    with inst.sessions() as s:
        yield s


Db = Annotated[Session, Depends(session)]


def missing_bearer(request: Request) -> str:
    """Why a request without a usable bearer token is refused, and what to send instead."""
    scheme = request.headers.get("authorization", "").strip().partition(" ")[0]
    how = "send `Authorization: Bearer TOKEN` (`hdh user token NAME`)"
    if scheme.lower() == "token":
        return f"`Authorization: token` is JupyterHub's scheme, for the hub's API; here {how}"
    if scheme.lower() == "bearer":
        return f"the bearer token is missing: {how}"
    if scheme:
        return f"authentication scheme {scheme[:20]!r} not accepted: {how}"
    return f"authentication required: {how}"


async def browser_session(request: Request) -> BrowserUser | None:
    """The hub session of a browser's API call (None: not one, the bearer token decides).

    Only for a request without ``Authorization`` that came through the hub's proxy to an
    airlock route and carries the pages' cookie; it then needs ``X-HDH-Token`` equal to
    that session's token, or is refused (401)."""
    auth: HubBrowserAuth | None = config(request).browser_auth
    if (
        auth is None
        or "authorization" in request.headers
        or not request.scope.get(VIA_PREFIX)
        or not BROWSER_API.match(str(request.scope.get("path", "")))
        or not request.cookies.get(auth.cookie_name)
    ):
        return None
    session_url = f"{auth.prefix}ui/api/session"
    submitted = request.headers.get(API_TOKEN_HEADER, "")
    if not submitted:
        raise HTTPException(
            401,
            f"a browser session needs the {API_TOKEN_HEADER} header (the token of GET"
            f" {session_url}): the cookie alone never authenticates",
        )
    try:
        me = await auth.user(dict(request.cookies), auth.prefix)
    except NotLoggedIn:
        raise HTTPException(
            401, f"the hub session expired or is not valid: sign in again at {auth.prefix}ui/"
        ) from None
    if not auth.check_form(me, submitted):
        raise HTTPException(
            401, f"{API_TOKEN_HEADER} does not match this session: get it again from {session_url}"
        )
    return me


def require(*roles: str) -> Callable[..., User]:
    """The dependency of a route for callers with one of ``roles`` (bearer token, or on the
    airlock's routes a browser session: :func:`browser_session`)."""

    def check(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        browser: Annotated[BrowserUser | None, Depends(browser_session)],
        s: Db,
    ) -> User:
        if creds is not None:
            user = authenticate(s, creds.credentials)
            if user is None:
                raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        elif browser is not None:
            try:
                user = get_user(s, browser.name)
            except AccountError:
                raise HTTPException(
                    401, f"{browser.name!r} has no account on the control plane"
                ) from None
            if user.disabled_at is not None:
                raise HTTPException(401, f"the account {browser.name!r} is disabled")
            if user.role not in BROWSER_SESSION_ROLES:
                raise HTTPException(
                    403,
                    f"the browser's session of the airlock is for reviewers; {user.name} is a"
                    f" {user.role}: use the HDH panel of your project's JupyterLab",
                )
        else:
            raise HTTPException(401, missing_bearer(request), {"WWW-Authenticate": "Bearer"})
        if user.role not in roles:
            raise HTTPException(
                403, f"role {user.role!r} may not do this (needs {' or '.join(roles)})"
            )
        return user

    return check


Controller = Annotated[User, Depends(require(*CONTROLLERS))]
Admin = Annotated[User, Depends(require("admin"))]
Anyone = Annotated[User, Depends(require(*ROLES))]


def access(s: Session, inst: Installation, user_name: str, slug: str) -> models.AccessOut:
    """May ``user_name`` open project ``slug`` now, with which mounts (PermitError if not)."""
    permit = projects.active_permit(s, user_name, slug)
    plan = projects.mount_plan(s, permit, user_name, inst.data_dir)
    return models.AccessOut(
        user=user_name,
        project=slug,
        permit=permit.id,
        expires_at=projects.permit_view(permit, inst.data_dir)["expires_at"],
        mounts=plan["mounts"],
        permitted=plan["permitted"],  # with "mounted": the data panel's list
    )


def bridged(
    s: Db,
    cfg: Config,
    x_hdh_bridge: Annotated[str | None, Header()] = None,
    x_hdh_user: Annotated[str | None, Header(max_length=100)] = None,
    x_hdh_project: Annotated[str | None, Header(max_length=100)] = None,
) -> models.AccessOut:
    """The (user, project) the bridge vouches for, with the permit that lets them in now."""
    if not cfg.bridge_token:
        raise HTTPException(503, "the API bridge is not configured on this control plane")
    if not x_hdh_bridge:
        raise HTTPException(401, "bridge routes are reached through a sandbox's API bridge")
    if not hmac.compare_digest(x_hdh_bridge.encode(), cfg.bridge_token.encode()):
        raise HTTPException(403, "invalid bridge token")
    if not x_hdh_user or not x_hdh_project:
        raise HTTPException(400, "the bridge sent no user or project")
    return access(s, cfg.opened(), x_hdh_user, x_hdh_project)  # PermitError → 403, the reason


Bridged = Annotated[models.AccessOut, Depends(bridged)]

#: the error answers of routes that check a project's access
ACCESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": models.AccessDeniedOut, "description": "no access now, and why"},
    404: {"model": models.AccessDeniedOut, "description": "no such project"},
}
#: ... and of routes reached through the API bridge
BRIDGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ACCESS_RESPONSES,
    401: {"description": "no bridge token"},
    403: {"model": models.AccessDeniedOut, "description": "bad token, or no access now"},
}
