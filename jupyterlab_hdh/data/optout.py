"""The opt-out register: persons who objected to the reuse of their data.

Owns adding an objection and answering "who is opted out". Only the keyed
pseudonym of the raw identifier is stored (the same double HMAC that
ingestion applies), so the register itself identifies nobody. Every addition
is audited; the register's highest id tells which objections a dataset
version already honours.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.data.pseudonymise import KeyPair, pseudonymise_one
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import OptOut

#: A raw person identifier: NIR-like (13 digits + 2-digit key; Corsica's 2A/2B accepted).
RAW_IDENTIFIER_RE = re.compile(r"^[12378]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2A|2B)\d{6}\d{2}$")


class OptOutError(HdhError, ValueError):
    """The identifier given is not a valid raw identifier."""

    http_status = 422


def check_raw_identifier(identifier: str) -> str:
    value = identifier.strip().replace(" ", "")
    if not RAW_IDENTIFIER_RE.match(value):
        raise OptOutError(
            "not a valid NIR-like identifier: expected 15 characters"
            " (sex digit, year, month, department, commune, order, 2-digit key)"
        )
    digits = value.replace("2A", "19").replace("2B", "18")
    if 97 - int(digits[:13]) % 97 != int(digits[13:]):
        raise OptOutError("not a valid NIR-like identifier: the 2-digit control key does not match")
    return value


def add(session: Session, keys: KeyPair, identifier: str, *, actor: str) -> tuple[int, bool]:
    """Register an objection; returns (register id, newly added). Idempotent per person."""
    pseudonym = pseudonymise_one(check_raw_identifier(identifier), keys)
    existing = session.scalar(select(OptOut).where(OptOut.pseudonym == pseudonym))
    if existing is not None:
        return existing.id, False
    entry = OptOut(pseudonym=pseudonym, key_fingerprint=keys.fingerprint())
    session.add(entry)
    session.flush()
    # The audit names the register entry, never the identifier or its pseudonym.
    record(session, actor=actor, action="optout.add", target=f"optout:{entry.id}")
    return entry.id, True


def last_id(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(OptOut.id), 0))) or 0


def pseudonyms(session: Session, up_to: int | None = None) -> set[str]:
    query = select(OptOut.pseudonym)
    if up_to is not None:
        query = query.where(OptOut.id <= up_to)
    return set(session.scalars(query))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OptOut)) or 0
