"""The audit chain: appended in the caller's transaction, append-only, tamper-evident."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from jupyterlab_hdh.audit import record, verify
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import AuditEvent


@pytest.fixture
def factory(store_url: str):
    engine = db.make_engine(store_url)
    db.upgrade(engine)
    yield db.session_factory(engine)
    engine.dispose()


def _append(factory, n: int, actor: str = "alice") -> None:
    for i in range(n):
        with db.transaction(factory) as s:
            record(
                s,
                actor=actor,
                action="test.event",
                target=f"thing:{i}",
                details={"i": i, "nom": "é"},
            )


def test_chain_links_each_event_to_the_previous(factory) -> None:
    _append(factory, 5)
    with factory() as s:
        events = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert events[0].prev_hash == "0" * 64
        assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
        assert verify(s).ok and verify(s).checked == 5


def test_event_rolls_back_with_the_failed_change(factory) -> None:
    _append(factory, 1)
    with pytest.raises(RuntimeError), db.transaction(factory) as s:
        record(s, actor="bob", action="doomed", target="x")
        raise RuntimeError("the change failed")
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1
        assert verify(s).ok
    _append(factory, 1)  # the chain continues without a gap
    with factory() as s:
        assert verify(s).checked == 2


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET actor = 'eve'", "DELETE FROM audit_events"]
)
def test_database_refuses_updates_and_deletes(factory, statement: str) -> None:
    _append(factory, 2)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), factory() as s:
        s.execute(sa.text(statement))
        s.commit()


def _drop_guards(session) -> None:
    """What an attacker with database rights does before tampering."""
    if session.bind.dialect.name == "postgresql":
        session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    else:
        session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


def test_verify_reports_the_first_altered_event(factory) -> None:
    _append(factory, 6)
    with factory() as s:
        _drop_guards(s)
        s.execute(sa.text("UPDATE audit_events SET details = :d WHERE seq = 3"), {"d": '{"i":99}'})
        s.execute(sa.text("UPDATE audit_events SET actor = 'eve' WHERE seq = 5"))
        s.commit()
        result = verify(s)
    assert not result.ok
    assert result.broken_seq == 3
    assert result.checked == 2
    assert "altered" in result.reason


def test_verify_reports_a_removed_event(factory) -> None:
    _append(factory, 4)
    with factory() as s:
        _drop_guards(s)
        s.execute(sa.text("DELETE FROM audit_events WHERE seq = 2"))
        s.commit()
        result = verify(s)
    assert not result.ok and result.broken_seq == 2 and "missing" in result.reason


def test_verify_reports_truncated_tail(factory) -> None:
    _append(factory, 4)
    with factory() as s:
        _drop_guards(s)
        s.execute(sa.text("DELETE FROM audit_events WHERE seq = 4"))
        s.commit()
        result = verify(s)
    assert not result.ok and result.broken_seq == 4 and "removed" in result.reason


def test_concurrent_writers_never_fork_the_chain(factory) -> None:
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            _append(factory, 15, actor=name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with factory() as s:
        result = verify(s)
    assert result.ok and result.checked == 60
