"""Login to the embedded hub with the local accounts of the HDH store.

Owns :class:`HdhAuthenticator`: the username/password form checks the
scrypt hash kept by :mod:`jupyterlab_hdh.governance.accounts`; users with the
``admin`` role are JupyterHub admins. Every attempt is audited
(``auth.login`` or ``auth.login_failed``, never with the password). A disabled
account (``hdh user disable``) cannot log in, and loses its open sessions and
hub tokens at the hub's next check (``refresh_user``: every
``auth_refresh_age``, 5 minutes, and before each spawn). Single sign-on (OpenID Connect)
is :mod:`jupyterlab_hdh.hub.oidc`'s, which shares :func:`mark_refresh_refused`.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Bool, Unicode

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.hub.store import hdh_store, in_thread

NAME_MAX = 100


def mark_refresh_refused(handler: Any) -> None:
    """Before ``refresh_user`` answers False: let a browser session get the login page.

    JupyterHub 6.1 reads ``_token_authenticated`` after a failed refresh but sets it only on
    token requests: a browser session would get a 500 instead of the login page."""
    if handler is not None and not hasattr(handler, "_token_authenticated"):
        handler._token_authenticated = False


class HdhAuthenticator(Authenticator):  # type: ignore[misc]
    """Local accounts: the HDH users who have a password (``hdh user passwd NAME``)."""

    data_dir = Unicode(help="The HDH data directory whose store holds the accounts").tag(
        config=True
    )
    # a disabled account is refused before each spawn and on token requests too, not only
    # when its browser session next needs a login
    refresh_pre_spawn = Bool(True, config=True)
    auth_refresh_strict = Bool(True, config=True)

    def _check(self, name: str, password: str, remote: str) -> dict[str, Any] | None:
        from jupyterlab_hdh.governance.accounts import check_password

        store = hdh_store(self.data_dir)
        with store.transaction() as s:
            user = check_password(s, name, password)
            if user is None:
                record(
                    s,
                    actor=f"anonymous@{remote}",
                    action="auth.login_failed",
                    target=f"user:{name[:NAME_MAX]}",
                    details={"via": "hub"},
                )
                return None
            record(
                s,
                actor=user.name,
                action="auth.login",
                target=f"user:{user.name}",
                details={"via": "hub", "role": user.role, "remote": remote},
            )
            return {"name": user.name, "admin": user.role == "admin"}

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        name = str(data.get("username") or "")
        password = str(data.get("password") or "")
        remote = handler.request.remote_ip if handler is not None else "?"
        if not name or not password or len(name) > NAME_MAX:
            return None
        result = await in_thread(lambda: self._check(name, password, str(remote)))
        if result is None:
            self.log.warning("HDH login failed for %r from %s", name, remote)
        return result

    async def refresh_user(self, user: Any, handler: Any = None) -> bool:
        """False (log in again, which fails) once ``user``'s HDH account is disabled."""
        from jupyterlab_hdh.governance.accounts import is_active

        name = str(user.name)

        def active() -> bool:
            with hdh_store(self.data_dir).sessions() as s:
                return is_active(s, name)

        ok = await in_thread(active)
        if not ok:
            mark_refresh_refused(handler)
        return ok

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        # every account of the store may log in; what they may open is the permits' business
        return True
