"""The guard's group-commit audit sink (``StoreAuditSink``) on SQLite and PostgreSQL.

``hub`` (tests/conftest.py) is a fresh installation on each backend. A test
that needs several events in one transaction holds the writer thread inside
its first commit (``GatedSink``) while the others queue up behind it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from sqlalchemy import select

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.audit.log import verify
from jupyterlab_hdh.guard.audit import AuditEvent, StoreAuditSink
from jupyterlab_hdh.store.models import AuditEvent as Row


class GatedSink(StoreAuditSink):
    """Holds the writer in its first commit until ``release`` is set; may fail one batch."""

    def __init__(self, hub: Any) -> None:
        super().__init__(hub)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_batch: int | None = None  # index of the batch whose commit fails
        self.sizes: list[int] = []

    def _commit(self, events: list[AuditEvent]) -> None:
        index = len(self.sizes)
        self.sizes.append(len(events))
        if index == 0:
            self.entered.set()
            assert self.release.wait(30)
        if index == self.fail_batch:
            from jupyterlab_hdh.audit.log import NewEvent, record_many

            with self.hub.engine.begin() as conn:  # written, then the transaction fails
                new = [NewEvent(e.actor, e.action, e.target, e.details) for e in events]
                record_many(conn, new)
                raise RuntimeError("the store went away")
        super()._commit(events)


def ev(i: int, actor: str = "alice") -> AuditEvent:
    return AuditEvent(actor, "code.execute", f"project:p/kernel:k{i}", {"code": f"x = {i}", "i": i})


def rows(hub: Any) -> list[Row]:
    with hub.sessions() as s:
        return list(s.scalars(select(Row).where(Row.action == "code.execute").order_by(Row.seq)))


def chain_ok(hub: Any) -> bool:
    with hub.sessions() as s:
        return verify(s).ok


async def wait_for(flag: threading.Event) -> None:
    for _ in range(3000):
        if flag.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer never started")


def test_sequential_events_keep_their_order(hub: Any) -> None:
    sink = StoreAuditSink(hub)

    async def main() -> None:
        for i in range(30):
            await sink.record(ev(i))

    asyncio.run(main())
    sink.close()
    got = rows(hub)
    assert [json.loads(r.details)["i"] for r in got] == list(range(30))
    assert [r.seq for r in got] == list(range(got[0].seq, got[0].seq + 30))
    assert chain_ok(hub)


def test_concurrent_events_share_a_commit_in_call_order(hub: Any) -> None:
    sink = GatedSink(hub)

    async def main() -> None:
        first = asyncio.ensure_future(sink.record(ev(0)))
        await wait_for(sink.entered)
        rest = [asyncio.ensure_future(sink.record(ev(i))) for i in range(1, 101)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in rest)  # nobody returns before its commit
        sink.release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    sink.close()
    assert sink.sizes == [1, 100]  # everything waiting went in one transaction
    got = rows(hub)
    assert [json.loads(r.details)["i"] for r in got] == list(range(101))
    assert chain_ok(hub)


def test_events_from_several_loops_and_threads_are_recorded_exactly_once(hub: Any) -> None:
    sink = StoreAuditSink(hub)
    errors: list[BaseException] = []

    def client(t: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(sink.record(ev(t * 1000 + i, f"u{t}")) for i in range(50)))

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    sink.close()
    assert errors == []
    got = rows(hub)
    ids = [json.loads(r.details)["i"] for r in got]
    assert sorted(ids) == sorted(t * 1000 + i for t in range(4) for i in range(50))
    for t in range(4):  # each caller's own events in the order it made them
        mine = [i for i in ids if i // 1000 == t]
        assert mine == sorted(mine)
    assert sink.events == 200 and sink.batches <= 200
    assert chain_ok(hub)


def test_a_failed_commit_raises_to_every_waiter_and_writes_nothing(hub: Any) -> None:
    sink = GatedSink(hub)
    sink.fail_batch = 1
    before = len(rows(hub))

    async def main() -> None:
        first = asyncio.ensure_future(sink.record(ev(0)))
        await wait_for(sink.entered)
        doomed = [asyncio.ensure_future(sink.record(ev(i))) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        sink.release.set()
        await first
        results = await asyncio.gather(*doomed, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results), results
        await sink.record(ev(11))  # the sink carries on after a failed batch

    asyncio.run(main())
    sink.close()
    assert sink.sizes == [1, 10, 1]
    got = rows(hub)
    assert [json.loads(r.details)["i"] for r in got[before:]] == [0, 11]
    assert got[-1].seq == got[-2].seq + 1  # no hole where the failed batch was
    assert chain_ok(hub)


def test_the_chain_stays_whole_with_other_writers(hub: Any) -> None:
    """The control plane appends with ``record`` in its own transactions meanwhile."""
    sink = StoreAuditSink(hub)
    stop = threading.Event()

    def other_writer() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            with hub.transaction() as s:
                record(s, actor="admin", action="project.update", target=f"project:q{n}")
            n += 1

    t = threading.Thread(target=other_writer)
    t.start()

    async def main() -> None:
        await asyncio.gather(*(sink.record(ev(i)) for i in range(100)))

    try:
        asyncio.run(main())
    finally:
        stop.set()
        t.join(60)
        sink.close()
    assert len(rows(hub)) == 100
    assert chain_ok(hub)


def test_a_closed_sink_refuses(hub: Any) -> None:
    sink = StoreAuditSink(hub)
    asyncio.run(sink.record(ev(0)))
    sink.close()
    with pytest.raises(RuntimeError):
        asyncio.run(sink.record(ev(1)))
    assert len(rows(hub)) == 1


def test_record_many_continues_the_chain_record_makes(hub: Any) -> None:
    """In one session, ``record`` and ``record_many`` interleave into one chain."""
    from jupyterlab_hdh.audit.log import NewEvent, record_many

    with hub.transaction() as s:
        record(s, actor="admin", action="a.one", target="t1")
        stored = record_many(s, [NewEvent("alice", "a.many", f"t{i}", {"i": i}) for i in (2, 3)])
        record(s, actor="admin", action="a.one", target="t4")
    assert [r["target"] for r in stored] == ["t2", "t3"]
    assert stored[1]["prev_hash"] == stored[0]["hash"]
    with hub.sessions() as s:
        got = s.scalars(select(Row).where(Row.action.in_(["a.one", "a.many"])).order_by(Row.seq))
        assert [r.target for r in got] == ["t1", "t2", "t3", "t4"]
        assert verify(s).ok
    with hub.engine.connect() as conn:
        assert record_many(conn, []) == []


def test_a_dead_kept_connection_is_replaced(hub: Any) -> None:
    """The writer's kept connection dies between batches (store restarted, or the
    connection invalidated): the next event is still recorded, once."""
    from sqlalchemy import text

    sink = StoreAuditSink(hub)
    asyncio.run(sink.record(ev(0)))
    assert sink._conn is not None
    if hub.engine.dialect.name == "postgresql":
        pid = sink._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        sink._conn.rollback()
        with hub.engine.connect() as admin:  # what a server restart does to it
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            admin.commit()
    else:
        sink._conn.invalidate()
    asyncio.run(sink.record(ev(1)))
    sink.close()
    assert [json.loads(r.details)["i"] for r in rows(hub)] == [0, 1]
    assert chain_ok(hub)
