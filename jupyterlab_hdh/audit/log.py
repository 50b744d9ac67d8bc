"""Append-only, hash-chained audit events.

Owns the chain: ``record()`` appends one event inside the caller's
transaction, so the event commits or rolls back with the change it records;
``record_many()`` appends several, in order, with one head update and one
multi-row insert (the guard's group commit); ``verify()`` recomputes every
hash and reports the first broken link.

Each event's hash is SHA-256 over the canonical JSON (sorted keys, no
whitespace, UTF-8) of ``{seq, ts, actor, action, target, details, prev_hash}``;
``prev_hash`` of the first event is 64 zeros. Appends are serialised by
updating the single ``audit_head`` row first (a write lock on SQLite, a row
lock on PostgreSQL), so concurrent writers can never fork the chain. The
database refuses UPDATE and DELETE on ``audit_events`` (triggers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from jupyterlab_hdh.store.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(
    *, seq: int, ts: str, actor: str, action: str, target: str, details: str, prev_hash: str
) -> str:
    body = {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def record(
    session: Session, *, actor: str, action: str, target: str, details: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an event in the session's transaction and return it."""
    row = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    seq, prev_hash = row
    fields: dict[str, Any] = {
        "seq": seq,
        "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": canonical_json(details or {}),
        "prev_hash": prev_hash,
    }
    digest = event_hash(**fields)
    event = AuditEvent(**fields, hash=digest)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    session.flush()
    return event


@dataclass(frozen=True)
class NewEvent:
    """One event for :func:`record_many`."""

    actor: str
    action: str
    target: str
    details: dict[str, Any] | None = None


# record_many runs on the guard's hot path (an event per code execution): it
# talks to the driver directly, with these statements in its placeholder style
_SQL = (
    "UPDATE audit_head SET seq = seq + {p} WHERE id = 1 RETURNING seq, last_hash",
    "INSERT INTO audit_events (seq, ts, actor, action, target, details, prev_hash, hash)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
    "UPDATE audit_head SET last_hash = {p} WHERE id = 1",
)
_STATEMENTS = {
    style: tuple(sql.format(p=p) for sql in _SQL)
    for style, p in (("qmark", "?"), ("format", "%s"), ("pyformat", "%s"))
}


def record_many(conn: Connection | Session, events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    """Append ``events`` in this order, in the caller's transaction; return the stored rows.

    The chain is the one :func:`record` makes (same fields, same hashes, same
    head lock taken first), written with three statements whatever the number
    of events: the head is moved on by ``len(events)``, the rows are inserted
    in one ``executemany``, the head's hash is set to the last one.
    """
    if not events:
        return []
    if isinstance(conn, Session):
        conn = conn.connection()
    move_head, insert_events, set_hash = _STATEMENTS[conn.dialect.paramstyle]
    n = len(events)
    cur = conn.connection.cursor()
    try:
        cur.execute(move_head, (n,))
        head = cur.fetchone()
        if head is None:
            raise RuntimeError("the audit head row is missing")
        last_seq, prev_hash = head
        rows: list[dict[str, Any]] = []
        for i, ev in enumerate(events):
            fields: dict[str, Any] = {
                "seq": last_seq - n + 1 + i,
                "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                "actor": ev.actor,
                "action": ev.action,
                "target": ev.target,
                "details": canonical_json(ev.details or {}),
                "prev_hash": prev_hash,
            }
            prev_hash = event_hash(**fields)
            rows.append({**fields, "hash": prev_hash})
        cur.executemany(
            insert_events,
            [
                (r["seq"], r["ts"], r["actor"], r["action"], r["target"], r["details"])
                + (r["prev_hash"], r["hash"])
                for r in rows
            ],
        )
        cur.execute(set_hash, (prev_hash,))
    finally:
        cur.close()
    return rows


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute the chain from the first event; stop at the first broken link."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not events:
            break
        for ev in events:
            if ev.seq != expected_seq:
                return VerifyResult(
                    False,
                    checked,
                    expected_seq,
                    f"event {expected_seq} is missing (next is {ev.seq})",
                )
            if ev.prev_hash != expected_prev:
                return VerifyResult(
                    False, checked, ev.seq, "prev_hash does not match the previous event's hash"
                )
            recomputed = event_hash(
                seq=ev.seq,
                ts=ev.ts,
                actor=ev.actor,
                action=ev.action,
                target=ev.target,
                details=ev.details,
                prev_hash=ev.prev_hash,
            )
            if recomputed != ev.hash:
                return VerifyResult(
                    False, checked, ev.seq, "content was altered: its hash does not match"
                )
            expected_prev = ev.hash
            expected_seq += 1
            checked += 1
            last_seq = ev.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.last_hash != expected_prev):
        return VerifyResult(
            False,
            checked,
            last_seq + 1,
            f"the log ends at event {last_seq} but the head records {head.seq}:"
            " events were removed",
        )
    return VerifyResult(True, checked)
