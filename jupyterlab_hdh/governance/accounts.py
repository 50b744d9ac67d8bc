"""Users, roles and API tokens of the control plane.

Owns account creation and bearer-token authentication. Tokens are random
(``secrets.token_urlsafe``) and only their SHA-256 is stored; every change is
audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.store.models import ROLES, ApiToken, User

USER_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "hdh_"  # noqa: S105 - a prefix, not a secret


class AccountError(ValueError):
    """A bad user name, role or token request."""


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(session: Session, name: str, role: str, *, actor: str) -> User:
    if not USER_NAME_RE.match(name):
        raise AccountError(
            f"invalid user name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter"
        )
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AccountError(f"user {name!r} already exists")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    record(
        session, actor=actor, action="user.create", target=f"user:{name}", details={"role": role}
    )
    return user


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no user named {name!r}")
    return user


def issue_token(session: Session, user: User, *, actor: str) -> str:
    """Create a new API token for ``user``; the clear token is returned once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_token_digest(token)))
    record(session, actor=actor, action="token.issue", target=f"user:{user.name}")
    return token


def authenticate(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)))
    return row.user if row is not None else None
