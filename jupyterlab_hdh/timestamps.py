"""Times as HDH stores and shows them: timezone-aware UTC, ISO 8601.

Owns the one rule for turning a stored time into text: a naive value (SQLite gives those
back) is taken as UTC already, an aware one is converted; the precision is the caller's
(``"seconds"`` for permits, ``"microseconds"`` for the airlock's events, which order them).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive value is taken as UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso_utc(dt: datetime | None, timespec: str = "microseconds") -> str | None:
    """``dt`` as ISO 8601 in UTC (``+00:00``), or None for None."""
    return None if dt is None else utc(dt).isoformat(timespec=timespec)
