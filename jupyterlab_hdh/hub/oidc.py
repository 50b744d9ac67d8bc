"""Single sign-on to the hub with OpenID Connect (Keycloak, Pro Santé Connect, any provider).

Owns :class:`HdhOIDCAuthenticator`, a thin subclass of OAuthenticator's
``GenericOAuthenticator``, the pure rules it applies to what the provider says
(:func:`hdh_username`, :func:`role_for_groups`, :func:`parse_role_map`), the provider's
endpoints (:func:`discover`, :class:`OidcSettings`) and the JupyterHub settings both hubs
load (:func:`authenticator_settings`: ``hdh up --oidc-*`` and the cluster's ``HDH_OIDC_*``).

What a login does: the authorization code flow (PKCE) with the provider, then its userinfo
endpoint is asked for the person's claims. The username claim (``preferred_username``) must
already be a valid HDH user name (refused, never rewritten, otherwise). The groups claim is
mapped to **one** HDH role by the role map (group → role); a person in no mapped group is
refused, and so is one whose mapped groups give *different* roles (an HDH account has one
role, and who reviews must not be silently also who exports: the provider's administrator
settles it). The HDH account is then created with that role, or its role updated (audited
``user.create`` / ``user.role``), unless it is disabled (refused, as the local form does).
``auth.login`` is audited with ``via: oidc``; refusals as ``auth.login_failed`` with the
reason. The provider is authoritative for roles: at every ``refresh_user`` (5 minutes, and
before each spawn) the userinfo is asked again and a changed role is applied (or the session
ended when the person is no longer mapped or the account is disabled).

Secrets: the client secret is read from a file (``client_secret_file``; ``hdh up`` refuses
one that others may read) or from ``HDH_OIDC_CLIENT_SECRET``, never written into the
generated configuration; the key that encrypts the stored tokens (auth_state) likewise
(``auth_state_key_file`` or ``JUPYTERHUB_CRYPT_KEY``).
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Dict, Unicode

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.hub.authenticator import mark_refresh_refused
from jupyterlab_hdh.hub.store import hdh_store, in_thread
from jupyterlab_hdh.store.models import ROLES

#: the groups an HDH deployment creates at its provider, and the role each one gives
DEFAULT_ROLE_MAP: dict[str, str] = {
    "hdh-researchers": "researcher",
    "hdh-reviewers": "reviewer",
    "hdh-committee": "committee",
    "hdh-data-controllers": "data_controller",
    "hdh-admins": "admin",
}
DEFAULT_SCOPES = ("openid", "profile", "email", "groups")
DEFAULT_USERNAME_CLAIM = "preferred_username"
DEFAULT_GROUPS_CLAIM = "groups"
ACTOR = "hdh-oidc"  # who creates an account or changes its role at a login
SECRET_ENV = "HDH_OIDC_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
NAME_MAX = 100


class OidcConfigError(ValueError):
    """A bad single sign-on setting (role map, issuer, secret file): one line."""


class Refused(web.HTTPError):
    """The provider vouched for the person, but HDH does not let them in (403, with why)."""

    def __init__(self, reason: str, name: str = "") -> None:
        super().__init__(403, reason)
        self.reason_text = reason
        self.name = name
        self.jupyterhub_message = reason  # what JupyterHub's error page shows


# --- the pure rules -------------------------------------------------------------------------


def hdh_username(value: object, claim: str = DEFAULT_USERNAME_CLAIM) -> str:
    """The provider's ``claim`` value as an HDH user name, or :class:`Refused`."""
    from jupyterlab_hdh.governance.accounts import USER_NAME_RE

    if not isinstance(value, str) or not value:
        raise Refused(f"the identity provider gave no {claim}: HDH cannot name your account")
    if not USER_NAME_RE.fullmatch(value):
        raise Refused(
            f"{value[:NAME_MAX]!r} ({claim}) is not a valid HDH user name (1-64 lowercase"
            " letters, digits, '.', '_' or '-', starting with a letter): ask your identity"
            " provider's administrator",
            name=value[:NAME_MAX],
        )
    return value


def role_for_groups(
    groups: object, role_map: Mapping[str, str], *, who: str = "this person"
) -> str:
    """The one HDH role that ``groups`` (the groups claim's value) map to, or :class:`Refused`.

    No mapped group: refused. Mapped groups giving several roles: refused (an HDH account
    has one role; the provider's administrator decides which). Several groups giving the
    same role are fine. A single string counts as one group; anything else is refused.
    """
    if groups is None:
        names: list[str] = []
    elif isinstance(groups, str):
        names = [groups]
    elif isinstance(groups, list) and all(isinstance(g, str) for g in groups):
        names = list(groups)
    else:
        raise Refused(f"the identity provider's groups claim for {who} is not a list of names")
    mapped = {g: role_map[g] for g in sorted(set(names)) if g in role_map}
    roles = sorted(set(mapped.values()))
    if not roles:
        raise Refused(
            f"{who} may not use HDH: no group of {who} gives an HDH role"
            f" (ask to be added to one of: {', '.join(sorted(role_map))})",
            name=who,
        )
    if len(roles) > 1:
        pairs = ", ".join(f"{g} → {r}" for g, r in mapped.items())
        raise Refused(
            f"{who}'s groups give several HDH roles ({pairs}): an HDH account has one role;"
            " ask the identity provider's administrator to keep one",
            name=who,
        )
    return roles[0]


def parse_role_map(items: Iterable[str]) -> dict[str, str]:
    """``["GROUP=ROLE", ...]`` → ``{group: role}`` (empty: :data:`DEFAULT_ROLE_MAP`)."""
    out: dict[str, str] = {}
    for item in items:
        group, eq, role = item.partition("=")
        group, role = group.strip(), role.strip()
        if not eq or not group or not role:
            raise OidcConfigError(f"bad role map entry {item!r}: write GROUP=ROLE")
        if role not in ROLES:
            raise OidcConfigError(
                f"bad role map entry {item!r}: {role!r} is no HDH role (one of {', '.join(ROLES)})"
            )
        if out.get(group, role) != role:
            raise OidcConfigError(f"group {group!r} is mapped twice ({out[group]}, {role})")
        out[group] = role
    return out or dict(DEFAULT_ROLE_MAP)


def check_role_map(role_map: Mapping[str, Any]) -> dict[str, str]:
    """A role map given as a mapping (JSON), checked like :func:`parse_role_map`."""
    if not isinstance(role_map, Mapping) or not role_map:
        raise OidcConfigError("the role map is an object of group → HDH role, not empty")
    return parse_role_map(f"{g}={r}" for g, r in role_map.items())


def read_secret_file(path: str | Path) -> str:
    """The secret in ``path`` (owner-only: a file others may read is refused)."""
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text().strip()
    except OSError as exc:
        raise OidcConfigError(f"cannot read the client secret file {p}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise OidcConfigError(f"the client secret file {p} may be read by others: chmod 600 {p}")
    if not text:
        raise OidcConfigError(f"the client secret file {p} is empty")
    return text


# --- the provider's endpoints ----------------------------------------------------------------


def _secure(url: str) -> bool:
    """https, or http to this machine's loopback (a provider run beside the hub, the tests)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )


@dataclass(frozen=True)
class Endpoints:
    authorize_url: str
    token_url: str
    userinfo_url: str
    end_session_url: str = ""


def discover(issuer: str, *, timeout: float = 10.0) -> Endpoints:
    """The provider's endpoints from ``ISSUER/.well-known/openid-configuration``.

    One-line :class:`OidcConfigError` when it is unreachable, not JSON, lacks an endpoint
    or names another issuer (OpenID Connect Discovery requires them to be the same)."""
    import httpx

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        r = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise OidcConfigError(
            f"the OpenID Connect issuer {issuer} is unreachable ({type(exc).__name__}: {exc})"
        ) from None
    if r.status_code != 200:
        raise OidcConfigError(f"{url} answered {r.status_code}: is {issuer} an OIDC issuer?")
    try:
        meta = r.json()
    except ValueError:
        raise OidcConfigError(f"{url} is not JSON: is {issuer} an OIDC issuer?") from None
    if not isinstance(meta, dict):
        raise OidcConfigError(f"{url} is not a discovery document")
    if str(meta.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise OidcConfigError(
            f"{url} names the issuer {meta.get('issuer')!r}, not {issuer!r}: use that one"
        )
    missing = [
        k
        for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
        if not isinstance(meta.get(k), str) or not meta.get(k)
    ]
    if missing:
        raise OidcConfigError(f"{url} lacks {', '.join(missing)}")
    return Endpoints(
        meta["authorization_endpoint"],
        meta["token_endpoint"],
        meta["userinfo_endpoint"],
        str(meta.get("end_session_endpoint") or ""),
    )


@dataclass(frozen=True)
class OidcSettings:
    """What single sign-on needs; ``endpoints`` None: discovered from the issuer."""

    issuer: str
    client_id: str
    client_secret_file: str = ""  # "" : the secret is in HDH_OIDC_CLIENT_SECRET
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    username_claim: str = DEFAULT_USERNAME_CLAIM
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    role_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))
    endpoints: Endpoints | None = None
    login_service: str = "single sign-on"

    def check(self) -> None:
        if not self.issuer.startswith(("https://", "http://")):
            raise OidcConfigError(f"the OIDC issuer {self.issuer!r} is not an http(s) URL")
        for url in (self.issuer, *(dataclasses.astuple(self.endpoints) if self.endpoints else ())):
            if url and not _secure(url):
                raise OidcConfigError(
                    f"{url} is plain http: the client secret and the tokens would cross the"
                    " network in clear (use https; http only on this machine, 127.0.0.1)"
                )
        if not self.client_id:
            raise OidcConfigError("the OIDC client id is empty")
        if "openid" not in self.scopes:
            raise OidcConfigError("the OIDC scopes must include openid")
        if self.client_secret_file:
            read_secret_file(self.client_secret_file)
        check_role_map(self.role_map)

    def resolved(self, *, timeout: float = 10.0) -> Endpoints:
        return self.endpoints or discover(self.issuer, timeout=timeout)


def authenticator_settings(
    oidc: OidcSettings,
    *,
    data_dir: str,
    endpoints: Endpoints,
    callback_url: str = "",
    auth_state_key_file: str = "",
) -> dict[str, dict[str, Any]]:
    """JupyterHub settings for :class:`HdhOIDCAuthenticator` (literals: no secret in them)."""
    logout = ""
    if endpoints.end_session_url:
        sep = "&" if "?" in endpoints.end_session_url else "?"
        logout = endpoints.end_session_url + sep + urlencode({"client_id": oidc.client_id})
    traits: dict[str, Any] = {
        "data_dir": data_dir,
        "issuer": oidc.issuer,
        "client_id": oidc.client_id,
        "client_secret_file": oidc.client_secret_file,
        "authorize_url": endpoints.authorize_url,
        "token_url": endpoints.token_url,
        "userdata_url": endpoints.userinfo_url,
        "scope": list(oidc.scopes),
        "username_claim": oidc.username_claim,
        "groups_claim": oidc.groups_claim,
        "role_map": dict(oidc.role_map),
        "login_service": oidc.login_service,
        "logout_redirect_url": logout,
        "auth_state_key_file": auth_state_key_file,
    }
    if callback_url:
        traits["oauth_callback_url"] = callback_url
    return {
        "JupyterHub": {"authenticator_class": f"{__name__}.{HdhOIDCAuthenticator.__name__}"},
        "HdhOIDCAuthenticator": traits,
    }


# --- the authenticator -----------------------------------------------------------------------


class HdhOIDCAuthenticator(GenericOAuthenticator):  # type: ignore[misc]
    """OpenID Connect login; HDH accounts and roles from the provider's claims."""

    client_secret_env = SECRET_ENV

    data_dir = Unicode(help="The HDH data directory whose store holds the accounts").tag(
        config=True
    )
    issuer = Unicode(help="The provider's issuer URL (audited with each login)").tag(config=True)
    client_secret_file = Unicode(
        help="A file (0600) holding the client secret; else HDH_OIDC_CLIENT_SECRET"
    ).tag(config=True)
    auth_state_key_file = Unicode(
        help="A file (0600) holding the key that encrypts the stored tokens;"
        " else JUPYTERHUB_CRYPT_KEY"
    ).tag(config=True)
    groups_claim = Unicode(DEFAULT_GROUPS_CLAIM, help="The userinfo claim listing the groups").tag(
        config=True
    )
    role_map = Dict(help="Provider group → HDH role").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the access token is kept (encrypted) so that refresh_user can ask the provider again
        self.enable_auth_state = True
        self.refresh_pre_spawn = True
        self.auth_refresh_strict = True
        self.allow_all = True  # who may enter is role_for_groups' business
        self.manage_groups = False
        if self.client_secret_file:
            self.client_secret = read_secret_file(self.client_secret_file)
        if self.auth_state_key_file:
            from jupyterhub.crypto import CryptKeeper

            keeper = CryptKeeper.instance()
            if not keeper.keys:
                keeper.keys = [read_secret_file(self.auth_state_key_file)]
        if not self.client_secret:
            raise OidcConfigError(
                "no OIDC client secret: give client_secret_file or set " + SECRET_ENV
            )
        self._role_map = check_role_map(self.role_map or DEFAULT_ROLE_MAP)

    # JupyterHub would lowercase: the claim is taken as it is, or refused (hdh_username)
    def normalize_username(self, username: str) -> str:
        return username

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        if callable(self.username_claim):  # a deployment's own function of the claims
            return hdh_username(self.username_claim(user_info), "username")
        return hdh_username(user_info.get(self.username_claim), self.username_claim)

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        role = role_for_groups(
            user_info.get(self.groups_claim), self._role_map, who=auth_model["name"]
        )
        auth_model["admin"] = role == "admin"
        auth_model["hdh_role"] = role
        return auth_model

    def _audit_refusal(self, name: str, reason: str, remote: str) -> None:
        with hdh_store(self.data_dir).transaction() as s:
            self._record_refusal(s, name, reason, remote)

    def _record_refusal(self, s: Any, name: str, reason: str, remote: str) -> None:
        """``auth.login_failed`` for a single sign-on refused (in the caller's transaction)."""
        record(
            s,
            actor=f"anonymous@{remote}",
            action="auth.login_failed",
            target=f"user:{name[:NAME_MAX]}",
            details={"via": "oidc", "issuer": self.issuer, "reason": reason},
        )

    def _apply(self, name: str, role: str, *, remote: str, login: bool) -> str | None:
        """Create ``name``'s account or set its role; audit. The refusal's reason, or None."""
        from sqlalchemy import select

        from jupyterlab_hdh.governance.accounts import create_user
        from jupyterlab_hdh.store.models import User

        store = hdh_store(self.data_dir)
        with store.transaction() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is not None and user.disabled_at is not None:
                reason = f"{name}'s HDH account is disabled: ask an HDH administrator"
                if login:
                    self._record_refusal(s, name, reason, remote)
                return reason
            if user is None:
                create_user(s, name, role, actor=ACTOR)
            elif user.role != role:
                before = user.role
                user.role = role
                s.flush()
                record(
                    s,
                    actor=ACTOR,
                    action="user.role",
                    target=f"user:{name}",
                    details={"from": before, "to": role, "via": "oidc", "issuer": self.issuer},
                )
            if login:
                record(
                    s,
                    actor=name,
                    action="auth.login",
                    target=f"user:{name}",
                    details={"via": "oidc", "role": role, "remote": remote, "issuer": self.issuer},
                )
        return None

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        remote = str(handler.request.remote_ip) if handler is not None else "?"
        try:
            model = await super().authenticate(handler, data, **kwargs)
        except Refused as exc:
            who, why = exc.name or "?", exc.reason_text
            await in_thread(lambda: self._audit_refusal(who, why, remote))
            self.log.warning("HDH single sign-on refused from %s: %s", remote, why)
            raise
        name, role = model["name"], model.pop("hdh_role")
        reason = await in_thread(lambda: self._apply(name, role, remote=remote, login=True))
        if reason:
            self.log.warning("HDH single sign-on refused for %r from %s: %s", name, remote, reason)
            raise Refused(reason, name)
        return model

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Ask the provider again: False (log in again) when the account is disabled, the
        person no longer maps to a role or the provider refuses the token; a changed role is
        applied to the HDH account (audited ``user.role``)."""
        from jupyterlab_hdh.governance.accounts import is_active

        name = str(user.name)

        def active() -> bool:
            with hdh_store(self.data_dir).sessions() as s:
                return is_active(s, name)

        if not await in_thread(active):
            mark_refresh_refused(handler)
            return False
        try:
            model = await super().refresh_user(user, handler, **kwargs)
        except Refused as exc:
            self.log.warning("HDH single sign-on ended for %r: %s", name, exc.reason_text)
            mark_refresh_refused(handler)
            return False
        except Exception as exc:  # the provider unreachable or answering nonsense: fail closed
            self.log.warning("HDH single sign-on: cannot refresh %r: %s", name, exc)
            mark_refresh_refused(handler)
            return False
        if not isinstance(model, dict):
            if model is False:
                mark_refresh_refused(handler)
            return model
        role = model.pop("hdh_role", None)
        if model.get("name") != name or role is None:
            mark_refresh_refused(handler)
            return False
        reason = await in_thread(lambda: self._apply(name, role, remote="refresh", login=False))
        if reason:
            mark_refresh_refused(handler)
            return False
        return model

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        return True


def settings_from_env(env: Mapping[str, str]) -> OidcSettings | None:
    """The cluster's single sign-on from ``HDH_OIDC_*`` (None without ``HDH_OIDC_ISSUER``)."""
    import json

    issuer = env.get("HDH_OIDC_ISSUER", "")
    if not issuer:
        return None
    client_id = env.get("HDH_OIDC_CLIENT_ID", "")
    if not client_id:
        raise OidcConfigError("HDH_OIDC_ISSUER is set but HDH_OIDC_CLIENT_ID is not")
    secret_file = env.get("HDH_OIDC_CLIENT_SECRET_FILE", "")
    if not secret_file and not env.get(SECRET_ENV):
        raise OidcConfigError(
            f"HDH_OIDC_ISSUER is set but neither {SECRET_ENV} nor HDH_OIDC_CLIENT_SECRET_FILE"
        )
    role_map = dict(DEFAULT_ROLE_MAP)
    if env.get("HDH_OIDC_ROLE_MAP"):
        try:
            raw = json.loads(env["HDH_OIDC_ROLE_MAP"])
        except json.JSONDecodeError as exc:
            raise OidcConfigError(f"HDH_OIDC_ROLE_MAP is not JSON: {exc.msg}") from None
        role_map = check_role_map(raw)
    explicit = [
        env.get(k, "")
        for k in ("HDH_OIDC_AUTHORIZE_URL", "HDH_OIDC_TOKEN_URL", "HDH_OIDC_USERINFO_URL")
    ]
    if any(explicit) and not all(explicit):
        raise OidcConfigError(
            "give all of HDH_OIDC_AUTHORIZE_URL, HDH_OIDC_TOKEN_URL and HDH_OIDC_USERINFO_URL,"
            " or none (discovery from HDH_OIDC_ISSUER)"
        )
    endpoints = (
        Endpoints(explicit[0], explicit[1], explicit[2], env.get("HDH_OIDC_END_SESSION_URL", ""))
        if all(explicit)
        else None
    )
    scopes = tuple(env.get("HDH_OIDC_SCOPES", "").split()) or DEFAULT_SCOPES
    settings = OidcSettings(
        issuer=issuer,
        client_id=client_id,
        client_secret_file=secret_file,
        scopes=scopes,
        username_claim=env.get("HDH_OIDC_USERNAME_CLAIM") or DEFAULT_USERNAME_CLAIM,
        groups_claim=env.get("HDH_OIDC_GROUPS_CLAIM") or DEFAULT_GROUPS_CLAIM,
        role_map=role_map,
        endpoints=endpoints,
        login_service=env.get("HDH_OIDC_LOGIN_SERVICE") or "single sign-on",
    )
    settings.check()
    return settings


__all__ = [
    "DEFAULT_ROLE_MAP",
    "Endpoints",
    "HdhOIDCAuthenticator",
    "OidcConfigError",
    "OidcSettings",
    "Refused",
    "authenticator_settings",
    "discover",
    "hdh_username",
    "parse_role_map",
    "role_for_groups",
    "settings_from_env",
]
