"""Reading the audit log: filters, order and limits (the chain itself is ``log.py``'s).

Owns :class:`AuditFilter` and :func:`events`/:func:`count`: who (``user``: the
actor, a ``user:NAME`` target or a ``"user"`` detail), which project (a
``project:SLUG`` target, a sandbox of it, or a ``"project"`` detail), which
action (exactly, or a family: ``permit`` is every ``permit.*``), and when
(``since``/``until``, inclusive). Events come newest first unless asked in chain
order. Every filter is a SQL condition, so reading a long log stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit.log import canonical_json
from jupyterlab_hdh.store.models import AuditEvent


def parse_moment(text: str, *, end: bool = False) -> str:
    """An ISO date or date-time as the log's timestamp form (UTC, microseconds).

    A date is its first instant (``end``: its last); a date-time without an
    offset is UTC. ``ValueError`` names the forms accepted.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                moment += timedelta(days=1) - timedelta(microseconds=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date or time: write 2026-12-04, 2026-12-04T14:30"
            " (UTC) or 2026-12-04T15:30+01:00"
        ) from None
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _detail(key: str, value: str) -> ColumnElement[bool]:
    """``details`` (canonical JSON: no spaces) holds ``"key":"value"``."""
    return AuditEvent.details.contains(canonical_json({key: value})[1:-1], autoescape=True)


@dataclass(frozen=True)
class AuditFilter:
    """Which events to read; every field given must match."""

    user: str | None = None
    project: str | None = None
    actions: tuple[str, ...] = field(default_factory=tuple)
    since: str | None = None  # timestamps as parse_moment gives them
    until: str | None = None
    after: int = 0  # only events with a higher sequence number
    before: int = 0  # only events with a lower sequence number (0: no bound)
    path: str | None = None  # a ``"path"`` or ``"notebook"`` detail (a saved file, a notebook)
    code: str | None = None  # only audited code of this kind (a CODE_KINDS key: :func:`code_kind`)

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.after:
            where.append(AuditEvent.seq > self.after)
        if self.before:
            where.append(AuditEvent.seq < self.before)
        if self.path is not None:
            where.append(or_(_detail("path", self.path), _detail("notebook", self.path)))
        if self.user is not None:
            target = f"user:{self.user}"
            where.append(
                or_(
                    AuditEvent.actor == self.user,
                    AuditEvent.target == target,
                    AuditEvent.target.endswith("/" + target, autoescape=True),
                    AuditEvent.target.contains("/" + target + "/", autoescape=True),
                    AuditEvent.target.endswith("--" + self.user, autoescape=True),
                    _detail("user", self.user),
                )
            )
        if self.project is not None:
            target = f"project:{self.project}"
            where.append(
                or_(
                    AuditEvent.target == target,
                    AuditEvent.target.startswith(target + "/", autoescape=True),
                    AuditEvent.target.startswith(f"sandbox:{self.project}--", autoescape=True),
                    _detail("project", self.project),
                )
            )
        if self.actions:
            where.append(
                or_(
                    *(
                        or_(
                            AuditEvent.action == a,
                            AuditEvent.action.startswith(a + ".", autoescape=True),
                        )
                        for a in self.actions
                    )
                )
            )
        if self.code is not None:
            where.append(_code_kind_condition(self.code))
        if self.since is not None:
            where.append(AuditEvent.ts >= self.since)
        if self.until is not None:
            where.append(AuditEvent.ts <= self.until)
        return where


#: the audited code, by kind: the action each kind is recorded as (the guard's
#: ``code.execute``, ``terminal.input``, ``file.save``; the launcher's template copies as
#: ``template.run``). A terminal line starting with :data:`TEMPLATE_COMMAND` is of kind
#: ``template`` too (:func:`code_kind`), not ``terminal``.
CODE_KINDS: dict[str, str] = {
    "cell": "code.execute",
    "terminal": "terminal.input",
    "save": "file.save",
    "template": "template.run",
}
#: a template run typed in a terminal
TEMPLATE_COMMAND = "hdh template run"


def code_kind(action: str, details: dict[str, Any] | None = None) -> str | None:
    """The code kind of an event (None: not audited code); ``details`` tells a terminal's
    ``hdh template run`` line (kind ``template``) from its other lines."""
    kind = next((k for k, a in CODE_KINDS.items() if a == action), None)
    if kind == "terminal" and str((details or {}).get("input", "")).startswith(TEMPLATE_COMMAND):
        return "template"
    return kind


def _template_line() -> ColumnElement[bool]:
    """A terminal line starting with ``hdh template run`` (canonical JSON: the ``input``
    detail's value starts right after ``"input":"``; a quote inside a value is escaped)."""
    prefix = canonical_json({"input": TEMPLATE_COMMAND})[1:-2]
    return and_(
        AuditEvent.action == CODE_KINDS["terminal"],
        AuditEvent.details.contains(prefix, autoescape=True),
    )


def _code_kind_condition(kind: str) -> ColumnElement[bool]:
    """The events :func:`code_kind` calls ``kind`` (``KeyError`` for an unknown kind)."""
    action = AuditEvent.action == CODE_KINDS[kind]
    if kind == "template":
        return or_(action, _template_line())
    if kind == "terminal":
        return and_(action, not_(_template_line()))
    return action


def events(
    session: Session, where: AuditFilter, *, limit: int, newest_first: bool = True
) -> list[AuditEvent]:
    """At most ``limit`` matching events, the newest first (or in chain order)."""
    order = AuditEvent.seq.desc() if newest_first else AuditEvent.seq
    query = select(AuditEvent).where(*where.conditions())
    return list(session.scalars(query.order_by(order).limit(limit)))


def count(session: Session, where: AuditFilter) -> int:
    """How many events match."""
    query = select(func.count()).select_from(AuditEvent).where(*where.conditions())
    return int(session.scalar(query) or 0)


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """An event as ``hdh audit log --json`` prints it."""
    return {
        "seq": event.seq,
        "ts": event.ts,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": json.loads(event.details),
        "hash": event.hash,
    }
