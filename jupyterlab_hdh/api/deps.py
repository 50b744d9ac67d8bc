"""The dependencies every route takes (FastAPI ``Depends``), defined once.

Owns what a route may ask for: the app's configuration (:class:`ApiConfig`, kept in
``app.state.hdh`` by ``create_app``), the opened installation and a session of its
store, the caller behind a bearer token with a role the route allows (``Controller``,
``Admin``, ``Anyone``), and the (user, project) the hub's API bridge vouches for
(``Bridged``), with the permit that lets them in now.

(No ``from __future__ import annotations``: FastAPI reads the ``Annotated`` aliases
below as objects.)
"""

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.browser import HubBrowserAuth
from jupyterlab_hdh.api.hub_client import HubClient
from jupyterlab_hdh.catalogue.manager import Catalogue
from jupyterlab_hdh.context import Installation
from jupyterlab_hdh.egress import notify as mail
from jupyterlab_hdh.governance import projects
from jupyterlab_hdh.governance.accounts import authenticate
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import ROLES, User

bearer = HTTPBearer(auto_error=False)
CONTROLLERS = ("data_controller", "admin")


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


def require(*roles: str) -> Callable[..., User]:
    """The dependency of a route for callers with one of ``roles`` (bearer token)."""

    def check(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        s: Db,
    ) -> User:
        if creds is None:
            raise HTTPException(401, missing_bearer(request), {"WWW-Authenticate": "Bearer"})
        user = authenticate(s, creds.credentials)
        if user is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
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
