"""Users, roles and API tokens of the control plane.

Owns account creation, listing, disabling, bearer-token authentication and
local passwords (the embedded hub's login form). Tokens are random
(``secrets.token_urlsafe``) and only their SHA-256 is stored; passwords are
stored as scrypt hashes with a random salt and compared in constant time. A
disabled account (``disabled_at`` set) authenticates neither by password nor
by token until it is enabled again; its tokens and password are kept.
Every change is audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import ROLES, ApiToken, User

USER_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "hdh_"  # noqa: S105 - a prefix, not a secret
# scrypt cost: n=2**14, r=8, p=1 (16 MiB, ~50 ms); stored with each hash so it can grow later
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
# one address, no display name: local@domain.tld, printable ASCII, no spaces or header breaks
EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+"
)


class AccountError(HdhError, ValueError):
    """A bad user name, role or token request."""

    http_status = 422


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


def check_email(email: str) -> str:
    """``email`` if it is one plain address (``local@domain.tld``), else :class:`AccountError`."""
    if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise AccountError(
            f"invalid e-mail address {email!r}: write one plain address, like name@example.org"
        )
    return email


def set_email(session: Session, name: str, email: str | None, *, actor: str) -> User:
    """Set (or clear, with None) where ``name``'s notifications are e-mailed; audited."""
    user = get_user(session, name)
    user.email = check_email(email) if email is not None else None
    session.flush()
    record(
        session,
        actor=actor,
        action="user.email",
        target=f"user:{name}",
        details={"set": email is not None},  # the address itself stays out of the log
    )
    return user


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no user named {name!r}")
    return user


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user, by name: role, e-mail, whether disabled (and since when), API tokens held,
    whether a hub password is set."""
    counts = dict(
        session.execute(
            select(ApiToken.user_id, func.count(ApiToken.id)).group_by(ApiToken.user_id)
        ).all()
    )
    return [
        {
            "name": u.name,
            "role": u.role,
            "email": u.email,
            "disabled": u.disabled_at is not None,
            "disabled_at": u.disabled_at.isoformat() if u.disabled_at is not None else None,
            "tokens": int(counts.get(u.id, 0)),
            "password": bool(u.password_hash),
        }
        for u in session.scalars(select(User).order_by(User.name))
    ]


def set_disabled(session: Session, name: str, disabled: bool, *, actor: str) -> bool:
    """Disable (or enable again) ``name``'s account; audited ``user.disable``/``user.enable``.

    Returns False, changing and recording nothing, when it already was so.
    """
    user = get_user(session, name)
    if (user.disabled_at is not None) == disabled:
        return False
    user.disabled_at = datetime.now(UTC) if disabled else None
    session.flush()
    record(
        session,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        target=f"user:{name}",
    )
    return True


def revoke_tokens(session: Session, name: str, *, actor: str) -> int:
    """Delete every API token of ``name`` (how many); audited ``token.revoke``."""
    user = get_user(session, name)
    count = len(session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id)).all())
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.expire(user, ["tokens"])
    record(
        session,
        actor=actor,
        action="token.revoke",
        target=f"user:{name}",
        details={"count": count},
    )
    return count


def is_active(session: Session, name: str) -> bool:
    """Whether ``name`` is a user whose account is not disabled."""
    user = session.scalar(select(User).where(User.name == name))
    return user is not None and user.disabled_at is None


def issue_token(session: Session, user: User, *, actor: str) -> str:
    """Create a new API token for ``user``; the clear token is returned once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_token_digest(token)))
    record(session, actor=actor, action="token.issue", target=f"user:{user.name}")
    return token


def authenticate(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None (also when that account is disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)))
    if row is None or row.user.disabled_at is not None:
        return None
    return row.user


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 2**20, dklen=32
    )


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) for a new random salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; False if malformed)."""
    if not stored or len(password) > PASSWORD_MAX:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, bytes.fromhex(digest))
    except (ValueError, MemoryError):
        return False


# a hash to compare against when the user does not exist, so timing does not tell
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def set_password(session: Session, user: User, password: str, *, actor: str) -> None:
    """Set (or replace) ``user``'s local password; audited ``user.password``."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(f"a password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    user.password_hash = hash_password(password)
    record(session, actor=actor, action="user.password", target=f"user:{user.name}")


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user if ``name``/``password`` is a valid local login, else None (not audited here).

    A disabled account never logs in, whatever the password.
    """
    user = session.scalar(select(User).where(User.name == name)) if name else None
    if user is None or not user.password_hash:
        verify_password(password, _DUMMY_HASH)  # same work either way
        return None
    valid = verify_password(password, user.password_hash)
    return user if valid and user.disabled_at is None else None
