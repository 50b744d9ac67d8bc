"""``/ui/api/session``: who the browser is, for the review widget in JupyterLab.

Owns the one JSON answer a script of the hub's origin needs before calling the airlock's
API with the pages' hub cookie (``deps.browser_session``): the signed-in person's name,
role, whether they may review, the pages' language, the anti-forgery token to send as
``X-HDH-Token``, and where the pages are. Without a valid session it is a 401 JSON answer
with the page to sign in at (``login_url``), never a redirect: the widget opens that page
in a new tab. Served ``no-store``; no cross-origin script can read it (no CORS), so the
token stays with same-origin code.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from jupyterlab_hdh.api.browser import NotLoggedIn
from jupyterlab_hdh.api.deps import ApiConfig, config
from jupyterlab_hdh.api.routes.pages import language_of
from jupyterlab_hdh.governance.accounts import AccountError, get_user
from jupyterlab_hdh.governance.projects import REVIEW_WORKSPACE_ROLES

router = APIRouter(include_in_schema=False)

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _account(cfg: ApiConfig, name: str) -> tuple[str | None, bool]:
    """``name``'s role in the store (None: unknown) and whether the account is disabled."""
    with cfg.opened().sessions() as s:
        try:
            user = get_user(s, name)
        except AccountError:
            return None, False
        return str(user.role), user.disabled_at is not None


@router.get("/ui/api/session")
async def session(request: Request) -> JSONResponse:
    cfg = config(request)
    auth = cfg.browser_auth
    if auth is None:
        return JSONResponse(
            {"detail": "browser sessions need the hub: start with `hdh up`"},
            status_code=503,
            headers=HEADERS,
        )
    pages = f"{auth.prefix}ui/egress/"

    def refused(detail: str) -> JSONResponse:
        return JSONResponse(
            {"detail": detail, "login_url": pages}, status_code=401, headers=HEADERS
        )

    try:
        me = await auth.user(dict(request.cookies), pages)
    except NotLoggedIn:
        return refused("not signed in to the review service: open login_url to sign in")
    role, disabled = await asyncio.to_thread(_account, cfg, me.name)
    if disabled:
        return refused(f"the account {me.name!r} is disabled")
    return JSONResponse(
        {
            "user": me.name,
            "role": role,
            "may_review": role in REVIEW_WORKSPACE_ROLES,
            "lang": language_of(request),
            "token": me.form_token(auth.form_secret),
            "pages": pages,
        },
        headers=HEADERS,
    )
