"""Display accounting: every byte of sandbox-originated content the guard shows a person.

A browser that shows data is a screen, and a screen can be copied: the guarded
display is the one unreviewed path out of a sandbox, so it is bounded and
accounted. This module owns, with no web framework:

* the settings (:class:`DisplaySettings`, table ``[display]`` of
  ``<data dir>/guard.toml``): the daily budget per person, the cap on a single
  kernel message and on a single notebook read, how often counts are written;
* the ledger (:class:`DisplayLedger`): bytes shown per person and project and
  day (UTC), written to the audit log as periodic ``display.count`` events (so
  the counts survive a guard restart: they are read back at start), the
  ``display.budget_exceeded`` alert when a person passes the budget, and the
  budget raises an administrator records (``display.budget_raise``, from
  ``hdh guard raise-budget``), which the ledger reads back while a person is
  over budget;
* deduplication: a read whose bytes are the ones this person was last shown
  at the same URL (JupyterLab polls listings) costs nothing;
* :func:`trim_notebook_model`: a notebook read over the cap keeps its cells and
  loses the outputs beyond it, each replaced by a visible placeholder.

Example ``guard.toml``::

    [display]
    daily_budget = "50M"          # bytes a person may be shown per day (UTC)
    max_kernel_message = "2M"     # one kernel message (a figure, a printed table)
    max_notebook_read = "4M"      # one notebook opened (outputs beyond: placeholders)
    flush_seconds = 60            # how often counts go to the audit log
    session_grace = "1M"          # kernels/sessions/terminals answers past the budget
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.units import MiB, human, parse_size

log = logging.getLogger("hdh.guard")

FILE_NAME = "guard.toml"

#: Routes (``guard/policy.py`` names) whose answers JupyterLab needs to keep a session
#: alive: small JSON about kernels, sessions and terminals, no file content.
SESSION_ROUTES = frozenset(
    {
        "api-version",
        "status",
        "me",
        "kernels",
        "kernel",
        "kernelspecs",
        "kernelspec",
        "sessions",
        "session",
        "terminals",
        "terminal",
    }
)

#: Audit actions of this module.
COUNT = "display.count"
EXCEEDED = "display.budget_exceeded"
RAISE = "display.budget_raise"


class DisplayConfigError(HdhError, ValueError):
    """``guard.toml`` is unreadable or holds a bad value (the message names it)."""


@dataclass(frozen=True)
class DisplaySettings:
    """Caps and budget of the guarded display (sizes in bytes)."""

    #: What one person may be shown per UTC day, over all their projects.
    daily_budget: int = 50 * MiB
    #: Largest kernel message passed on whole (outputs beyond: a placeholder).
    max_kernel_message: int = 2 * MiB
    #: Largest notebook model served whole (outputs beyond: placeholders).
    max_notebook_read: int = 4 * MiB
    #: Seconds between ``display.count`` audit events (and sooner past ``flush_bytes``).
    flush_seconds: float = 60.0
    #: Unwritten bytes of one person that trigger a write before ``flush_seconds``.
    flush_bytes: int = 4 * MiB
    #: Seconds between re-reads of an over-budget person's raises.
    raise_check_seconds: float = 2.0
    #: What JupyterLab's session answers (kernels, sessions, terminals, status: the
    #: :data:`SESSION_ROUTES`) may still show past the budget, so that the page does not
    #: report a live kernel as dead; identical repeats (its polls) cost nothing.
    session_grace: int = 1 * MiB

    @classmethod
    def load(cls, data_dir_root: Path) -> DisplaySettings:
        """Read ``<data dir>/guard.toml`` (no file: the defaults)."""
        path = data_dir_root / FILE_NAME
        if not path.exists():
            return cls()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DisplayConfigError(f"{path}: cannot be read: {exc}") from None
        unknown_tables = set(doc) - {"display"}
        if unknown_tables:
            raise DisplayConfigError(f"{path}: unknown table(s) {sorted(unknown_tables)}")
        table = doc.get("display", {})
        if not isinstance(table, dict):
            raise DisplayConfigError(f"{path}: [display] must be a table")
        return cls.from_mapping(table, str(path))

    @classmethod
    def from_mapping(cls, table: dict[str, Any], source: str = "guard.toml") -> DisplaySettings:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise DisplayConfigError(
                    f"{source}: unknown key [display] {key} (known: {', '.join(sorted(known))})"
                )
            try:
                if key.endswith("_seconds"):
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise ValueError(f"{key}: {value!r} is not a number of seconds")
                    values[key] = float(value)
                else:
                    values[key] = parse_size(value, key)
            except ValueError as exc:
                raise DisplayConfigError(f"{source}: [display] {exc}") from None
            if values[key] <= 0:
                raise DisplayConfigError(f"{source}: [display] {key} must be positive")
        return cls(**values)


def today(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).date().isoformat()


class DisplayStore(Protocol):
    """Where the ledger persists: the audit log in production (:class:`AuditDisplayStore`)."""

    def load_day(self, day: str) -> DayState: ...

    def raised(self, user: str, day: str) -> int: ...

    def write_counts(self, day: str, counts: dict[tuple[str, str], int]) -> None: ...

    def alert(self, user: str, day: str, shown: int, budget: int) -> None: ...


@dataclass
class DayState:
    """What the store knows of one day: bytes shown and raises per person, alerts sent."""

    shown: dict[str, int] = field(default_factory=dict)
    raised: dict[str, int] = field(default_factory=dict)
    #: person → the highest budget an alert was raised at (a raise past it re-arms it)
    alerted: dict[str, int] = field(default_factory=dict)


class DisplayLedger:
    """Counts what each person is shown, enforces the daily budget, writes the counts.

    Called on the guard's event loop; the store is written from a worker thread
    (:meth:`flush`), never while the loop waits. Counts not yet written are lost
    if the guard is killed (at most ``flush_seconds`` or ``flush_bytes`` of
    them); a normal stop writes them (:meth:`close`).
    """

    def __init__(
        self,
        settings: DisplaySettings,
        store: DisplayStore | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.day = today(clock())
        self._day_end = 0.0  # when the UTC day of ``self.day`` ends (epoch seconds)
        self._state = store.load_day(self.day) if store is not None else DayState()
        #: (day, user, project) → bytes not yet written
        self._pending: dict[tuple[str, str, str], int] = {}
        self._pending_user: dict[str, int] = {}
        self._last_seen: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._raise_checked: dict[str, float] = {}
        self._lock = threading.Lock()
        self._flushing: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ reading

    def _roll(self) -> None:
        now = self.clock()
        if now < self._day_end:
            return
        self._day_end = (now // 86_400 + 1) * 86_400
        day = today(now)
        if day != self.day:
            self.day = day
            self._state = DayState()
            self._last_seen.clear()
            self._raise_checked.clear()

    def shown_today(self, user: str) -> int:
        self._roll()
        return self._state.shown.get(user, 0)

    def budget(self, user: str) -> int:
        self._roll()
        return self.settings.daily_budget + self._state.raised.get(user, 0)

    def over_budget(self, user: str) -> bool:
        return self.shown_today(user) >= self.budget(user)

    def over_grace(self, user: str) -> bool:
        """Past the budget and its session grace: even session answers are refused."""
        return self.shown_today(user) >= self.budget(user) + self.settings.session_grace

    def refusal(self, user: str) -> str:
        """The one-line message a person sees once over budget."""
        return (
            f"daily display budget reached: {human(self.shown_today(user))} of sandbox output "
            f"shown to {user} today (budget {human(self.budget(user))}). Nothing more is shown "
            "until tomorrow (UTC) or until an administrator raises it "
            f"(hdh guard raise-budget {user}). Results you need can leave through an export "
            "request."
        )

    # ------------------------------------------------------------ counting

    def is_repeat(self, user: str, project: str, key: str, digest: str) -> bool:
        """True if ``digest`` is what this person was last shown at ``key`` (then free)."""
        k = (user, project, key)
        last = self._last_seen.get(k)
        self._last_seen[k] = digest
        self._last_seen.move_to_end(k)
        while len(self._last_seen) > 10_000:
            self._last_seen.popitem(last=False)
        return last == digest

    def add(self, user: str, project: str, nbytes: int) -> None:
        """Count ``nbytes`` shown to ``user`` from ``project`` (alerts once past the budget)."""
        if nbytes <= 0:
            return
        self._roll()
        before = self._state.shown.get(user, 0)
        after = before + nbytes
        self._state.shown[user] = after
        with self._lock:
            key = (self.day, user, project)
            self._pending[key] = self._pending.get(key, 0) + nbytes
            self._pending_user[user] = self._pending_user.get(user, 0) + nbytes
            flush_now = self._pending_user[user] >= self.settings.flush_bytes
        budget = self.budget(user)
        if after >= budget and self._state.alerted.get(user, -1) < budget:
            self._state.alerted[user] = budget
            log.warning("display budget reached: %s was shown %d bytes today", user, after)
            self._background(self._alert, user, self.day, after, budget)
        if flush_now:
            self.flush_soon()

    def check_raises(self, user: str) -> None:
        """While ``user`` is over budget, re-read their raises now and then (in the background)."""
        if self.store is None:
            return
        now = self.clock()
        if now - self._raise_checked.get(user, 0.0) < self.settings.raise_check_seconds:
            return
        self._raise_checked[user] = now
        self._background(self._read_raise, user, self.day)

    async def refresh_raises(self, user: str) -> None:
        """Re-read ``user``'s raises now (awaited by HTTP requests of an over-budget person)."""
        if self.store is None:
            return
        self._raise_checked[user] = self.clock()
        await asyncio.get_running_loop().run_in_executor(None, self._read_raise, user, self.day)

    def _read_raise(self, user: str, day: str) -> None:
        assert self.store is not None
        raised = self.store.raised(user, day)
        if day == self.day:
            self._state.raised[user] = raised

    def _alert(self, user: str, day: str, shown: int, budget: int) -> None:
        assert self.store is not None
        self.store.alert(user, day, shown, budget)

    def _background(self, fn: Callable[..., None], *args: Any) -> None:
        if self.store is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn(*args)
            return

        def run() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("display accounting: %s failed", getattr(fn, "__name__", fn))

        loop.run_in_executor(None, run)

    # ------------------------------------------------------------ writing

    def _take_pending(self) -> dict[str, dict[tuple[str, str], int]]:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._pending_user = {}
        by_day: dict[str, dict[tuple[str, str], int]] = {}
        for (day, user, project), n in pending.items():
            by_day.setdefault(day, {})[(user, project)] = n
        return by_day

    def _put_back(self, by_day: dict[str, dict[tuple[str, str], int]]) -> None:
        with self._lock:
            for day, counts in by_day.items():
                for (user, project), n in counts.items():
                    key = (day, user, project)
                    self._pending[key] = self._pending.get(key, 0) + n
                    self._pending_user[user] = self._pending_user.get(user, 0) + n

    def write_pending(self) -> None:
        """Write the counts not yet written (blocking: call from a worker or at shutdown)."""
        if self.store is None:
            return
        by_day = self._take_pending()
        for day, counts in by_day.items():
            try:
                self.store.write_counts(day, counts)
            except Exception:
                self._put_back({day: counts})
                raise

    def flush_soon(self) -> None:
        """Start a write of the pending counts unless one is running."""
        if self.store is None or (self._flushing is not None and not self._flushing.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_pending()
            return
        self._flushing = loop.run_in_executor(None, self._write_logged)

    def _write_logged(self) -> None:
        try:
            self.write_pending()
        except Exception:
            log.exception("display accounting: the counts could not be written (kept for later)")

    def close(self) -> None:
        """Write what is pending (the guard is stopping)."""
        self._write_logged()


class AuditDisplayStore:
    """The ledger's persistence in the HDH store: audit events, no table of its own.

    ``display.count`` events carry ``{day, user, project, bytes}``; the day's
    totals are their sum, so the counts survive a restart and are tamper-evident
    like the rest of the log.
    """

    def __init__(self, hub: Any, actor: str = "guard") -> None:
        self.hub = hub
        self.actor = actor

    def events(self, action: str, day: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from jupyterlab_hdh.store.models import AuditEvent

        with self.hub.sessions() as s:
            rows = s.scalars(
                select(AuditEvent.details).where(AuditEvent.action == action, AuditEvent.ts >= day)
            ).all()
        out = []
        for raw in rows:
            d = json.loads(raw)
            if d.get("day") == day:
                out.append(d)
        return out

    def load_day(self, day: str, counts: bool = True) -> DayState:
        state = DayState()
        for d in self.events(COUNT, day) if counts else ():
            state.shown[d["user"]] = state.shown.get(d["user"], 0) + int(d["bytes"])
        for d in self.events(RAISE, day):
            state.raised[d["user"]] = state.raised.get(d["user"], 0) + int(d["bytes"])
        for d in self.events(EXCEEDED, day):
            u = d["user"]
            state.alerted[u] = max(state.alerted.get(u, -1), int(d.get("budget", 0)))
        return state

    def raised(self, user: str, day: str) -> int:
        return sum(int(d["bytes"]) for d in self.events(RAISE, day) if d.get("user") == user)

    def write_counts(self, day: str, counts: dict[tuple[str, str], int]) -> None:
        from jupyterlab_hdh.audit import record

        with self.hub.transaction() as s:
            for (user, project), n in sorted(counts.items()):
                record(
                    s,
                    actor=self.actor,
                    action=COUNT,
                    target=f"project:{project}/user:{user}",
                    details={"day": day, "user": user, "project": project, "bytes": n},
                )

    def alert(self, user: str, day: str, shown: int, budget: int) -> None:
        from jupyterlab_hdh.audit import record

        with self.hub.transaction() as s:
            record(
                s,
                actor=self.actor,
                action=EXCEEDED,
                target=f"user:{user}",
                details={"day": day, "user": user, "shown": shown, "budget": budget},
            )


def raise_budget(hub: Any, *, user: str, nbytes: int, by: str, day: str | None = None) -> str:
    """Record an administrator's raise of ``user``'s budget for ``day`` (today); return the day."""
    from jupyterlab_hdh.audit import record

    if nbytes <= 0:
        raise ValueError("the raise must be a positive size")
    day = day or today()
    with hub.transaction() as s:
        record(
            s,
            actor=by,
            action=RAISE,
            target=f"user:{user}",
            details={"day": day, "user": user, "bytes": nbytes, "by": by},
        )
    return day


def day_report(hub: Any, day: str | None = None) -> list[dict[str, Any]]:
    """Per person and project: bytes shown on ``day`` (from the written counts), raises, alerts."""
    store = AuditDisplayStore(hub)
    day = day or today()
    per: dict[tuple[str, str], int] = {}
    for d in store.events(COUNT, day):
        key = (d["user"], d["project"])
        per[key] = per.get(key, 0) + int(d["bytes"])
    state = store.load_day(day, counts=False)
    users = sorted({u for u, _ in per} | set(state.raised) | set(state.alerted))
    rows = []
    for u in users:
        projects = {p: n for (uu, p), n in sorted(per.items()) if uu == u}
        rows.append(
            {
                "day": day,
                "user": u,
                "shown": sum(projects.values()),
                "projects": projects,
                "raised": state.raised.get(u, 0),
                "alerted": u in state.alerted,
                "alerted_at_budget": state.alerted.get(u),
            }
        )
    return rows


# ------------------------------------------------------------------ notebooks

PLACEHOLDER = (
    "[HDH guard] {n} output(s) of this cell ({size}) not shown: this notebook is over the "
    "display cap of one read ({cap}). Re-run the cell to see them, or take the result out "
    "through an export request."
)


def trim_notebook_model(payload: bytes, cap: int) -> bytes | None:
    """A contents model of a notebook cut to ``cap`` bytes by withholding outputs.

    Returns ``payload`` itself when it is within the cap or not a notebook
    model, the trimmed model otherwise (outputs and attachments are replaced,
    cell by cell from the end of the budget on, by a visible placeholder
    output), and None when even the cells without outputs exceed the cap (the
    read must be refused: sources are never cut, a save would lose them).
    """
    if len(payload) <= cap:
        return payload
    try:
        model = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(model, dict) or model.get("type") != "notebook":
        return None
    nb = model.get("content")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None
    cells = nb["cells"]
    bare = json.loads(json.dumps(model))
    for c in bare["content"]["cells"]:
        if isinstance(c, dict):
            c.pop("attachments", None)
            if "outputs" in c:
                c["outputs"] = []
    base = len(json.dumps(bare).encode())
    if base > cap:
        return None
    room = cap - base
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        withheld = 0
        withheld_bytes = 0
        kept = []
        for out in cell.get("outputs") or []:
            size = len(json.dumps(out).encode())
            if size + 600 <= room:
                kept.append(out)
                room -= size
            else:
                withheld += 1
                withheld_bytes += size
        attach = cell.get("attachments")
        if attach is not None:
            size = len(json.dumps(attach).encode())
            if size <= room:
                room -= size
            else:
                cell.pop("attachments")
                withheld += 1
                withheld_bytes += size
        if withheld:
            text = PLACEHOLDER.format(n=withheld, size=human(withheld_bytes), cap=human(cap))
            note = {"output_type": "stream", "name": "stderr", "text": text}
            if cell.get("cell_type") == "code":
                kept.append(note)
                room -= len(json.dumps(note).encode())
        if "outputs" in cell:
            cell["outputs"] = kept
    model["size"] = None
    return json.dumps(model).encode()
