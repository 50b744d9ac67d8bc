"""Concurrent steps on one request, on SQLite and PostgreSQL: the request's lock orders them,
so exactly one of two conflicting steps wins and the other is refused with WrongState."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.egress.errors import EgressError, WrongState
from jupyterlab_hdh.store.models import AuditEvent

from .airlock import ALICE, CORA, RAJ, RITA, draft, setup, state, submit, write

ROUNDS = 4


def _race(*steps: Callable[[], Any]) -> list[BaseException | None]:
    """Run the steps in threads released by one barrier; what each raised (None: success)."""
    barrier = threading.Barrier(len(steps))
    results: list[BaseException | None] = [None] * len(steps)

    def run(i: int) -> None:
        barrier.wait()
        try:
            steps[i]()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(steps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _in(hub: Any, fn: Callable[[Any], Any]) -> Callable[[], Any]:
    def step() -> Any:
        with hub.transaction() as s:
            return fn(s)

    return step


def _events(hub: Any, rid: int, action: str) -> int:
    with hub.sessions() as s:
        return len(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == action, AuditEvent.target == f"egress:{rid}"
                )
            ).all()
        )


def _submitted(hub: Any) -> int:
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    return rid


def _vote(hub: Any, rid: int, who: Any) -> Callable[[], Any]:
    return _in(hub, lambda s: m.vote(s, rid, "t.csv", "approve", actor=who, exception_reason="ok"))


def _reviewed(hub: Any) -> int:
    rid = _submitted(hub)
    _vote(hub, rid, RITA)()
    _vote(hub, rid, RAJ)()
    return rid


def test_two_reviewers_approving_at_the_same_instant_both_count(hub) -> None:
    write(setup(hub), "t.csv")
    for _ in range(ROUNDS):
        rid = _submitted(hub)
        assert _race(_vote(hub, rid, RITA), _vote(hub, rid, RAJ)) == [None, None]
        assert state(hub, rid) == "reviewed"
        assert _events(hub, rid, "egress.vote") == 2
        assert _events(hub, rid, "egress.reviewed") == 1
    with hub.sessions() as s:
        assert verify(s).ok


def test_three_reviewers_at_once_leave_exactly_two_votes(hub) -> None:
    write(setup(hub), "t.csv")
    for _ in range(ROUNDS):
        rid = _submitted(hub)
        results = _race(*(_vote(hub, rid, who) for who in (RITA, RAJ, CORA)))
        assert sum(r is None for r in results) == 2
        assert all(isinstance(r, WrongState) for r in results if r is not None)
        assert _events(hub, rid, "egress.vote") == 2


def test_two_consolidations_at_once_approve_once(hub) -> None:
    write(setup(hub), "t.csv")
    for _ in range(ROUNDS):
        rid = _reviewed(hub)
        results = _race(
            _in(hub, partial(m.approve, request_id=rid, actor=CORA)),
            _in(hub, partial(m.approve, request_id=rid, actor=RITA)),
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, WrongState) for r in results if r is not None)
        assert _events(hub, rid, "egress.approved") == 1


def test_approve_racing_withdraw_has_one_winner(hub) -> None:
    write(setup(hub), "t.csv")
    outcomes = set()
    for _ in range(ROUNDS):
        rid = _reviewed(hub)
        approve_result, withdraw_result = _race(
            _in(hub, partial(m.approve, request_id=rid, actor=CORA)),
            _in(hub, partial(m.withdraw, request_id=rid, actor=ALICE, reason="oops")),
        )
        final = state(hub, rid)
        if approve_result is None:
            assert isinstance(withdraw_result, WrongState) and final == "approved"
        else:
            assert isinstance(approve_result, WrongState) and withdraw_result is None
            assert final == "withdrawn"
            assert rel.recover(hub) == []
        outcomes.add(final)
        assert _events(hub, rid, "egress.approved") + _events(hub, rid, "egress.withdrawn") == 1
    assert outcomes <= {"approved", "withdrawn"}


def test_two_releases_at_once_copy_once(hub) -> None:
    write(setup(hub), "t.csv")
    for _ in range(ROUNDS):
        rid = _reviewed(hub)
        with hub.transaction() as s:
            m.approve(s, rid, actor=CORA)
        results = _race(
            partial(rel.release, hub, rid, actor=RITA),
            partial(rel.release, hub, rid, actor=RAJ),
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, EgressError) for r in results if r is not None)
        assert state(hub, rid) == "released"
        assert _events(hub, rid, "egress.releasing") == 1
        assert _events(hub, rid, "egress.released") == 1
        assert len(list((hub.data_dir.outbox / str(rid)).iterdir())) == 1
