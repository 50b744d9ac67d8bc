"""The transition table is the law: every step outside it is refused, by every actor, and a
random walk over all actors and steps, with crashes and restarts, keeps the airlock's
invariants (released ⇒ two independent approvals; at most one release; stable after recovery).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as hs
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.context import init_installation, open_installation
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.egress import states as st
from jupyterlab_hdh.egress.errors import EgressError, NotAllowed, NotFound, WrongState
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import AuditEvent, EgressOutbox, EgressRequest

from .airlock import ADMIN, ALICE, BOB, CORA, RAJ, RITA, USERS, draft, setup, write

# --- the table itself ---------------------------------------------------------------------------

PAIRS = list(itertools.product(st.STATES, st.STATES))


@pytest.mark.parametrize(("source", "target"), [p for p in PAIRS if p not in st.TRANSITIONS])
def test_every_pair_outside_the_table_is_refused_for_every_actor(source: str, target: str) -> None:
    for kinds in ({st.AUTHOR}, {st.REVIEWER}, {st.OPERATOR}, {st.SYSTEM}, set(st.ACTOR_KINDS)):
        with pytest.raises(WrongState, match=f"{source} cannot become {target}"):
            st.check(source, target, kinds, who="x")


@pytest.mark.parametrize(("source", "target"), sorted(st.TRANSITIONS))
def test_a_step_in_the_table_is_refused_to_the_other_actor_kinds(source: str, target: str) -> None:
    allowed = st.TRANSITIONS[(source, target)]
    for kind in st.ACTOR_KINDS:
        if kind in allowed:
            st.check(source, target, {kind})
        else:
            with pytest.raises(NotAllowed):
                st.check(source, target, {kind})


def test_final_states_have_no_way_out_and_every_state_is_reachable() -> None:
    assert not [t for (s, t) in st.TRANSITIONS if s in st.FINAL]
    reached, frontier = {st.DRAFT}, [st.DRAFT]
    while frontier:
        source = frontier.pop()
        for s, t in st.TRANSITIONS:
            if s == source and t not in reached:
                reached.add(t)
                frontier.append(t)
    assert reached == set(st.STATES)


# --- the manager applies the table --------------------------------------------------------------

# each action, by the actor allowed to try it, and the state it would move the request to
ACTIONS: dict[str, tuple[Any, str]] = {
    "submit": (lambda h, s, rid: m.submit(s, h.data_dir, rid, actor=ALICE), st.SUBMITTED),
    "withdraw": (lambda h, s, rid: m.withdraw(s, rid, actor=ALICE), st.WITHDRAWN),
    "approve": (lambda h, s, rid: m.approve(s, rid, actor=CORA), st.APPROVED),
    "return": (lambda h, s, rid: m.return_request(s, rid, actor=CORA, reason="r"), st.RETURNED),
    "reject": (lambda h, s, rid: m.reject(s, rid, actor=CORA, reason="r"), st.REJECTED),
    "release": (lambda h, s, rid: m.start_release(s, rid, actor=ADMIN), st.RELEASING),
}


def _to_state(hub: Any, target: str) -> int:
    """A fresh request of ``study`` brought to ``target`` through the public steps."""
    rid = draft(hub, ("t.csv", "output"))
    path: dict[str, list[str]] = {
        st.DRAFT: [],
        st.SUBMITTED: ["submit"],
        st.PARTIALLY_REVIEWED: ["submit", "vote1"],
        st.REVIEWED: ["submit", "vote1", "vote2"],
        st.APPROVED: ["submit", "vote1", "vote2", "approve"],
        st.RETURNED: ["submit", "vote1", "vote2", "return"],
        st.REJECTED: ["submit", "vote1", "vote2", "reject"],
        st.RELEASING: ["submit", "vote1", "vote2", "approve", "release"],
        st.RELEASED: ["submit", "vote1", "vote2", "approve", "deliver"],
        st.WITHDRAWN: ["withdraw"],
    }
    for step in path[target]:
        if step == "deliver":
            rel.release(hub, rid, actor=ADMIN)
            continue
        with hub.transaction() as s:
            if step.startswith("vote"):
                who = RITA if step == "vote1" else RAJ
                m.vote(s, rid, "t.csv", "approve", actor=who, exception_reason="ok")
            else:
                ACTIONS[step][0](hub, s, rid)
    with hub.sessions() as s:
        assert s.get(EgressRequest, rid).state == target  # type: ignore[union-attr]
    return rid


@pytest.mark.parametrize("source", st.STATES)
def test_the_manager_refuses_every_step_the_table_does_not_allow(hub, source) -> None:
    write(setup(hub), "t.csv")
    for name, (action, target) in ACTIONS.items():
        rid = _to_state(hub, source)
        expected_ok = (source, target) in st.TRANSITIONS
        try:
            with hub.transaction() as s:
                action(hub, s, rid)
        except (WrongState, NotFound) as exc:
            assert not expected_ok, f"{name} from {source} should be allowed"
            if isinstance(exc, NotFound):  # reviewers never see a request never submitted
                assert source in (st.DRAFT, st.WITHDRAWN) and name != "withdraw"
            with hub.sessions() as s:
                assert s.get(EgressRequest, rid).state == source  # type: ignore[union-attr]
        else:
            assert expected_ok, f"{name} from {source} should be refused"


# --- a random walk with crashes -----------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (raised by the release's step hook)."""


FILES = ["a.csv", "b.csv", "code.py", "../x.csv", "link.csv"]
ACTORS = sorted(USERS.values(), key=lambda a: a.name) + [ADMIN]
STABLE = set(st.STATES) - {st.RELEASING}


class Airlock(RuleBasedStateMachine):
    store: str = "sqlite"
    server: str | None = None

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="hdh-sm-"))
        if self.store == "sqlite":
            url = f"sqlite:///{self.tmp / 'store.sqlite'}"
        else:
            from tests.conftest import _create_pg_database

            assert self.server is not None
            url = _create_pg_database(self.server)
        self.data_dir = DataDir.resolve(self.tmp / "hdh", url)
        self.hub, _ = init_installation(self.data_dir, actor="test")
        self.ws = setup(self.hub)
        write(self.ws, "a.csv")
        write(self.ws, "b.csv", "group,count\nx,1\n")
        write(self.ws, "code.py", "print(1)\n")
        (self.ws / "link.csv").symlink_to("/etc/passwd")
        self.crashed = False
        self.authors: dict[int, Any] = {}

    def teardown(self) -> None:
        rel.STEP_HOOK = None
        try:
            with self.hub.sessions() as s:
                assert verify(s).ok
        finally:
            self.hub.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _try(self, fn: Any) -> None:
        try:
            with self.hub.transaction() as s:
                fn(s)
        except EgressError:
            pass

    @initialize(target=requests)
    def first_request(self):
        """Every walk starts with a submitted request of two outputs (then anything goes)."""
        return self.create(ALICE, ["a.csv", "b.csv", "code.py"], True)

    @rule(
        target=requests,
        actor=hs.sampled_from([ALICE, ALICE, BOB, RITA, ADMIN]),
        paths=hs.lists(hs.sampled_from(FILES), max_size=3),
        then_submit=hs.booleans(),
    )
    def create(self, actor, paths, then_submit):
        """A new request, with files (some hostile) and perhaps submitted at once."""
        try:
            with self.hub.transaction() as s:
                rid = m.create_request(s, "study", title="t", actor=actor).id
        except EgressError:
            return 0
        self.authors[rid] = actor
        for path in paths:
            self.add(rid, None, path)
        if then_submit:
            self.submit(rid, None)
        return rid

    def _who(self, rid: int, actor: Any) -> Any:
        """``None`` stands for the request's author (the likeliest actor of author steps)."""
        return self.authors.get(rid, ALICE) if actor is None else actor

    @rule(
        rid=requests,
        actor=hs.sampled_from([None, None, None, ALICE, BOB, RITA]),
        path=hs.sampled_from(FILES),
    )
    def add(self, rid, actor, path):
        role = "code" if path.endswith(".py") else "output"
        actor = self._who(rid, actor)
        self._try(lambda s: m.add_file(s, self.data_dir, rid, path, role=role, actor=actor))

    @rule(path=hs.sampled_from(["a.csv", "b.csv"]), n=hs.integers(10, 99))
    def edit_workspace(self, path, n):
        write(self.ws, path, f"group,count\nz,{n}\n")

    @rule(rid=requests, actor=hs.sampled_from([None, None, None, ALICE, BOB, RITA]))
    def submit(self, rid, actor):
        actor = self._who(rid, actor)
        self._try(lambda s: m.submit(s, self.data_dir, rid, actor=actor))

    @rule(rid=requests, actor=hs.sampled_from([None, ALICE, BOB, RAJ]))
    def withdraw(self, rid, actor):
        actor = self._who(rid, actor)
        self._try(lambda s: m.withdraw(s, rid, actor=actor))

    @rule(
        rid=requests,
        actor=hs.sampled_from(ACTORS),
        path=hs.sampled_from(["a.csv", "b.csv", "code.py"]),
        decision=hs.sampled_from(m.DECISIONS),
        exception=hs.booleans(),
    )
    def vote(self, rid, actor, path, decision, exception):
        reason = "reviewed by hand" if exception else None
        self._try(lambda s: m.vote(s, rid, path, decision, actor=actor, exception_reason=reason))

    @rule(
        rid=requests,
        reviewers=hs.sampled_from([(RITA, RAJ), (RAJ, CORA), (RITA, BOB), (ADMIN, CORA)]),
        decisions=hs.lists(
            hs.sampled_from(["approve"] * 4 + ["changes", "reject"]), min_size=2, max_size=2
        ),
    )
    def review(self, rid, reviewers, decisions):
        """Two actors vote on every output file of the request (the common path)."""
        for actor, decision in zip(reviewers, decisions, strict=True):
            for path in ("a.csv", "b.csv"):
                self._try(
                    lambda s, a=actor, p=path, d=decision: m.vote(
                        s, rid, p, d, actor=a, exception_reason="by hand"
                    )
                )

    @rule(
        rid=requests,
        actor=hs.sampled_from([CORA, CORA, RITA, ALICE, ADMIN]),
        how=hs.sampled_from(["a", "a", "r", "x"]),
    )
    def decide(self, rid, actor, how):
        if how == "a":
            self._try(lambda s: m.approve(s, rid, actor=actor))
        elif how == "r":
            self._try(lambda s: m.return_request(s, rid, actor=actor, reason="fix"))
        else:
            self._try(lambda s: m.reject(s, rid, actor=actor, reason="no"))

    @rule(
        rid=requests,
        actor=hs.sampled_from([RITA, ADMIN, ALICE]),
        crash_at=hs.sampled_from([None, "committed", "copying", "copied", "renamed", "row_done"]),
    )
    def release(self, rid, actor, crash_at):
        def hook(step: str) -> None:
            if step == crash_at:
                raise Crash(step)

        rel.STEP_HOOK = hook
        try:
            rel.release(self.hub, rid, actor=actor)
        except EgressError:
            pass
        except Crash:
            self.crashed = True
        finally:
            rel.STEP_HOOK = None

    @rule(
        rid=requests,
        decision=hs.sampled_from(["approve", "approve", "approve", "changes", "reject"]),
        crash_at=hs.sampled_from([None, None, "committed", "copying", "renamed", "row_done"]),
        how=hs.sampled_from(["a", "a", "a", "r", "x"]),
        steps=hs.integers(1, 5),
    )
    def progress(self, rid, decision, crash_at, how, steps):
        """The next steps well-behaved actors take, so that walks reach every state."""
        for _ in range(steps):
            with self.hub.sessions() as s:
                req = s.get(EgressRequest, rid)
                current = req.state if req is not None else None
            if current == st.DRAFT or current == st.RETURNED:
                self.add(rid, None, "a.csv" if current == st.DRAFT else "b.csv")
                self.submit(rid, None)
            elif current in st.VOTING:
                self.review(rid, (RITA, RAJ), [decision, "approve"])
            elif current == st.REVIEWED:
                self.decide(rid, CORA, how)  # approving over a "changes" vote must fail
            elif current == st.APPROVED:
                self.release(rid, RITA, crash_at)
            else:
                return

    @rule()
    def restart(self):
        """The control plane restarts: a new engine, then recovery (as at start-up)."""
        self.hub.close()
        self.hub = open_installation(self.data_dir)
        rel.recover(self.hub)
        self.crashed = False
        with self.hub.sessions() as s:
            stuck = s.scalars(select(EgressRequest).where(EgressRequest.state == st.RELEASING))
            assert list(stuck) == [], "a request is still releasing after recovery"

    @precondition(lambda self: not self.crashed)
    @invariant()
    def nothing_releasing_without_a_crash(self):
        with self.hub.sessions() as s:
            assert (
                s.scalar(select(EgressRequest).where(EgressRequest.state == st.RELEASING)) is None
            )

    @invariant()
    def released_means_approved_twice_by_independent_reviewers(self):
        with self.hub.sessions() as s:
            for req in s.scalars(select(EgressRequest)):
                if req.state in (st.APPROVED, st.RELEASING, st.RELEASED):
                    assert m.approval_problems(s, req) == []
                    for f in req.files:
                        if f.role == "output":
                            voters = {v.reviewer for v in f.votes if v.decision == "approve"}
                            assert len(voters) >= 2
                            assert not voters & {"alice", "bob", req.author}
                            assert all(USERS[v].role in st.REVIEWER_ROLES for v in voters)

    @invariant()
    def at_most_one_release_and_never_a_partial_file(self):
        with self.hub.sessions() as s:
            released = s.scalars(select(AuditEvent).where(AuditEvent.action == "egress.released"))
            targets = [e.target for e in released]
            assert len(targets) == len(set(targets))
            for req in s.scalars(select(EgressRequest)):
                folder = self.data_dir.outbox / str(req.id)
                rows = {
                    o.name: o.sha256
                    for o in s.scalars(
                        select(EgressOutbox).where(EgressOutbox.request_id == req.id)
                    )
                }
                if req.state not in (st.RELEASING, st.RELEASED):
                    assert not rows and not folder.exists()
                visible = (
                    sorted(p.name for p in folder.iterdir() if p.name != "tmp")
                    if folder.exists()
                    else []
                )
                assert set(visible) <= set(rows)
                for name in visible:
                    data = (folder / name).read_bytes()
                    assert hashlib.sha256(data).hexdigest() == rows[name]
                if req.state == st.RELEASED:
                    assert visible == sorted(rows)

    @invariant()
    def every_state_change_follows_the_table(self):
        with self.hub.sessions() as s:
            events = s.scalars(
                select(AuditEvent)
                .where(AuditEvent.target.like("egress:%"))
                .order_by(AuditEvent.seq)
            )
            current: dict[str, str] = {}
            for ev in events:
                if ev.action == "egress.create":
                    current[ev.target] = st.DRAFT
                    continue
                target = ev.action.removeprefix("egress.")
                if target in st.STATES:
                    source = json.loads(ev.details)["from"]
                    assert current[ev.target] == source
                    assert (source, target) in st.TRANSITIONS
                    current[ev.target] = target
            for req in s.scalars(select(EgressRequest)):
                assert current[f"egress:{req.id}"] == req.state


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_walks_keep_the_invariants_on_sqlite() -> None:
    Airlock.store = "sqlite"
    Airlock.TestCase.settings = SETTINGS
    Airlock.TestCase().runTest()


@pytest.mark.postgres
def test_random_walks_keep_the_invariants_on_postgresql(postgres_server: str) -> None:
    Airlock.store, Airlock.server = "postgresql", postgres_server
    Airlock.TestCase.settings = settings(SETTINGS, max_examples=5)
    try:
        Airlock.TestCase().runTest()
    finally:
        Airlock.store, Airlock.server = "sqlite", None
