"""Projects, members and permits: who may open which sandbox now, with which dataset versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.ingestion import reapply_optout
from jupyterlab_hdh.store.models import (
    AuditEvent,
    Permit,
    Project,
    ProjectMember,
)

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
ADMIN = pj.Actor.administrator("cli:test")
CONTROLLER = pj.Actor("ctl", "data_controller")


def _actions(hub, after: int = 0) -> list[str]:
    with hub.sessions() as s:
        return list(
            s.scalars(
                select(AuditEvent.action).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
            )
        )


def _last_seq(hub) -> int:
    with hub.sessions() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def _grant(hub, *, members=("alice",), datasets=("snds",), days=30, now=T0, actor=CONTROLLER):
    with hub.transaction() as s:
        return pj.grant_permit(
            s,
            "cohort-2027",
            members=list(members),
            datasets=list(datasets),
            expires_at=now + timedelta(days=days),
            actor=actor,
            now=now,
        ).id


def test_a_permit_lets_its_members_open_the_project_with_its_mounts(ingested) -> None:
    hub = ingested
    permit_id = _grant(hub, members=("alice", "bob"), datasets=("snds/v1",))
    with hub.sessions() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027", T0 + timedelta(days=1))
        assert permit.id == permit_id
        assert pj.active_permit(s, "bob", "cohort-2027", T0 + timedelta(days=1)).id == permit_id
        mounts = pj.mounts(permit, hub.data_dir)
        assert [(m.dataset, m.version) for m in mounts] == [("snds", "v1")]
        assert mounts[0].path == hub.data_dir.datasets / "snds" / "v1"
        assert mounts[0].path.is_absolute() and (mounts[0].path / "IR_BEN_R.parquet").exists()
        assert pj.status(permit, T0 + timedelta(days=1)) == "active"
        view = pj.project_view(s, pj.get_project(s, "cohort-2027"), hub.data_dir, T0)
        assert [m["user"] for m in view["members"]] == ["alice", "bob"]
        assert view["permits"][0]["mounts"][0]["path"] == str(mounts[0].path)
        assert verify(s).ok
    assert {"project.create", "project.member.add", "permit.grant"} <= set(_actions(hub))


def test_a_dataset_name_alone_means_its_current_version(ingested, raw_extract: Path) -> None:
    hub = ingested
    nir = pq.read_table(raw_extract / "IR_BEN_R.parquet")["BEN_IDT_ANO"][0].as_py()
    with hub.transaction() as s:
        optout.add(s, hub.keys, nir, actor="test")
    reapply_optout(hub, actor="test")
    _grant(hub, datasets=("snds",))
    with hub.sessions() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027", T0)
        assert [m.version for m in pj.mounts(permit, hub.data_dir)] == ["v2"]
    with hub.transaction() as s, pytest.raises(pj.ProjectError, match="superseded"):
        pj.resolve_dataset(s, "snds/v1")


@pytest.mark.parametrize(
    ("user", "error", "message"),
    [
        ("carol", pj.NotAMember, "'carol' is not a member of project 'cohort-2027'"),
        ("nobody", pj.NotAMember, "not a member"),
        ("bob", pj.NotCovered, "does not cover 'bob'"),
    ],
)
def test_who_is_not_covered_gets_the_reason(world, user: str, error: type, message: str) -> None:
    _grant(world)
    with world.sessions() as s, pytest.raises(error, match=message) as caught:
        pj.active_permit(s, user, "cohort-2027", T0)
    assert isinstance(caught.value, pj.PermitError)


def test_unknown_project_and_no_permit(world) -> None:
    with world.sessions() as s:
        with pytest.raises(pj.UnknownProject, match="no project 'nope'") as caught:
            pj.active_permit(s, "alice", "nope", T0)
        assert isinstance(caught.value, LookupError) and isinstance(caught.value, pj.PermitError)
        with pytest.raises(pj.NoPermit, match="no permit covering 'alice'"):
            pj.active_permit(s, "alice", "cohort-2027", T0)


def test_an_expired_permit_says_when(world) -> None:
    permit_id = _grant(world, days=10)
    later = T0 + timedelta(days=10, seconds=1)
    with world.sessions() as s:
        expected = f"#{permit_id} .* expired at 2027-01-11T09:00:00"
        with pytest.raises(pj.PermitExpired, match=expected):
            pj.active_permit(s, "alice", "cohort-2027", later)
        assert [p.id for p in pj.expiring(s, later)] == [permit_id]
        assert pj.expiring(s, T0 + timedelta(days=1)) == []
        assert pj.expiring(s, later, since=later - timedelta(minutes=1)) != []
        assert pj.expiring(s, later + timedelta(days=1), since=later) == []
        assert pj.revalidate(s, [("alice", "cohort-2027")], T0) == []
        (stop,) = pj.revalidate(s, [("alice", "cohort-2027")], later)
        assert isinstance(stop[2], pj.PermitExpired)


def test_a_revoked_permit_says_when_by_whom_and_why(world) -> None:
    permit_id = _grant(world)
    revoked_at = T0 + timedelta(days=2)
    with world.transaction() as s:
        pj.revoke_permit(
            s, permit_id, reason="breach of the data agreement", actor=ADMIN, now=revoked_at
        )
    with world.sessions() as s:
        with pytest.raises(
            pj.PermitRevoked,
            match=r"revoked at 2027-01-03T09:00:00\+00:00 by cli:test because: breach of the data",
        ):
            pj.active_permit(s, "alice", "cohort-2027", revoked_at + timedelta(seconds=1))
        # before the revocation it was valid
        assert pj.active_permit(s, "alice", "cohort-2027", T0 + timedelta(days=1)).id == permit_id
        assert [p.id for p in pj.expiring(s, revoked_at)] == [permit_id]
    with world.transaction() as s, pytest.raises(pj.ProjectConflict, match="already revoked"):
        pj.revoke_permit(s, permit_id, reason="again", actor=ADMIN, now=revoked_at)
    with world.transaction() as s, pytest.raises(pj.UnknownPermit):
        pj.revoke_permit(s, 999, reason="x", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="reason"):
        pj.revoke_permit(s, permit_id, reason="  ", actor=ADMIN)


def test_a_new_grant_supersedes_the_active_permit(world) -> None:
    first = _grant(world, members=("alice", "bob"))
    second = _grant(world, members=("alice",), now=T0 + timedelta(days=1))
    at = T0 + timedelta(days=2)
    with world.sessions() as s:
        assert pj.active_permit(s, "alice", "cohort-2027", at).id == second
        with pytest.raises(pj.NotCovered):
            pj.active_permit(s, "bob", "cohort-2027", at)
        old = s.get(Permit, first)
        assert pj.status(old, at) == "revoked"
        assert old.revoke_reason == f"superseded by permit #{second}"
        assert [p.id for p in pj.expiring(s, at)] == [first]
    assert _actions(world)[-2:] == ["permit.revoke", "permit.grant"]


def test_a_removed_member_loses_access_at_once(world) -> None:
    _grant(world, members=("alice", "bob"))
    with world.transaction() as s:
        pj.remove_member(s, "cohort-2027", "bob", actor=pj.Actor("alice", "researcher"))
    with world.sessions() as s, pytest.raises(pj.NotAMember):
        pj.active_permit(s, "bob", "cohort-2027", T0)
    with world.sessions() as s:
        running = [("alice", "cohort-2027"), ("bob", "cohort-2027")]
        assert [u for u, _, _ in pj.revalidate(s, running, T0)] == ["bob"]
    with world.transaction() as s, pytest.raises(pj.UnknownMember):
        pj.remove_member(s, "cohort-2027", "bob", actor=ADMIN)
    assert _actions(world)[-1] == "project.member.remove"
    # the lead adds bob back: the old permit does not cover him again
    with world.transaction() as s:
        lead = pj.Actor("alice", "researcher")
        pj.add_member(s, "cohort-2027", "bob", actor=lead, now=T0 + timedelta(minutes=30))
    with world.sessions() as s, pytest.raises(pj.NotCovered, match="rejoined"):
        pj.active_permit(s, "bob", "cohort-2027", T0 + timedelta(minutes=40))
    _grant(world, members=("alice", "bob"), now=T0 + timedelta(hours=1))
    with world.sessions() as s:
        assert pj.active_permit(s, "bob", "cohort-2027", T0 + timedelta(hours=2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": ("carol",)}, "'carol' is not a member"),
        ({"members": ("ghost",)}, "'ghost' is not a member"),
        ({"members": ()}, "at least one project member"),
        ({"datasets": ("nope",)}, "no dataset 'nope'"),
        ({"datasets": ("snds/v9",)}, "no version v9 of dataset 'snds'"),
        ({"datasets": ("snds/latest",)}, "invalid dataset"),
        ({"datasets": ("../snds",)}, "invalid dataset"),
        ({"datasets": ()}, "at least one dataset"),
        ({"days": 0}, "not in the future"),
        ({"days": -3}, "not in the future"),
    ],
)
def test_bad_grants_are_refused_and_write_nothing(world, kwargs: dict, message: str) -> None:
    before = _last_seq(world)
    with pytest.raises(pj.ProjectError, match=message):
        _grant(world, **kwargs)
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Permit)) == 0
    assert _last_seq(world) == before


def test_a_naive_expiry_is_refused(world) -> None:
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="timezone-aware"):
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime(2030, 1, 1),
            actor=ADMIN,
        )


def test_expiry_in_another_timezone_is_stored_in_utc(world) -> None:
    paris = timezone(timedelta(hours=1))
    with world.transaction() as s:
        pid = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime(2027, 2, 1, 0, 0, tzinfo=paris),
            actor=ADMIN,
            now=T0,
        ).id
    with world.sessions() as s:
        assert pj.utc(s.get(Permit, pid).expires_at) == datetime(2027, 1, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "actor",
    [pj.Actor("alice", "researcher"), pj.Actor("rev", "reviewer"), pj.Actor("x", "committee")],
)
def test_only_controllers_and_admins_grant_revoke_and_create(world, actor: pj.Actor) -> None:
    before = _last_seq(world)
    with pytest.raises(pj.NotAuthorised, match="needs data_controller or admin"):
        _grant(world, actor=actor)
    permit_id = _grant(world)
    with world.transaction() as s, pytest.raises(pj.NotAuthorised):
        pj.revoke_permit(s, permit_id, reason="no", actor=actor)
    with world.transaction() as s, pytest.raises(pj.NotAuthorised):
        pj.create_project(s, "mine", title="t", purpose="p", actor=actor)
    assert _actions(world, before) == ["permit.grant"]


def test_members_are_researchers_managed_by_controllers_or_the_lead(world) -> None:
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="only researchers"):
        pj.add_member(s, "cohort-2027", "rev", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="no user named 'ghost'"):
        pj.add_member(s, "cohort-2027", "ghost", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectConflict, match="already a member"):
        pj.add_member(s, "cohort-2027", "bob", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="unknown project role"):
        pj.add_member(s, "cohort-2027", "carol", role="owner", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.NotAuthorised, match="project's lead"):
        pj.add_member(s, "cohort-2027", "carol", actor=pj.Actor("bob", "researcher"))
    with world.transaction() as s:  # alice leads the project
        pj.add_member(s, "cohort-2027", "carol", actor=pj.Actor("alice", "researcher"))
    with world.sessions() as s:
        assert [p.slug for p in pj.projects_of(s, "carol")] == ["cohort-2027"]
        assert pj.projects_of(s, "rev") == []


@pytest.mark.parametrize(
    "slug",
    [
        *("..", "a/b", "a\x00b", "Cohort", "c\u043ehort", "x" * 40, "", "-lead"),
        *("a_b", "a.b", "cohort\n", " a", "%2e%2e"),
    ],
)
def test_bad_slugs_are_refused_with_nothing_written(world, slug: str) -> None:
    before = _last_seq(world)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="invalid project slug"):
        pj.create_project(s, slug, title="t", purpose="p", actor=ADMIN)
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 1
        with pytest.raises(pj.UnknownProject):
            pj.get_project(s, slug)
    assert _last_seq(world) == before


def test_project_fields_are_checked(world) -> None:
    with world.transaction() as s, pytest.raises(pj.ProjectConflict, match="already exists"):
        pj.create_project(s, "cohort-2027", title="t", purpose="p", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="title must not be empty"):
        pj.create_project(s, "p1", title=" ", purpose="p", actor=ADMIN)
    with (
        world.transaction() as s,
        pytest.raises(pj.ProjectError, match="a control character"),
    ):
        pj.create_project(s, "p1", title="a\x00b", purpose="p", actor=ADMIN)
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="longer than"):
        pj.create_project(s, "p1", title="t", purpose="p" * 5001, actor=ADMIN)
    with world.transaction() as s:
        assert pj.create_project(s, "x" * 39, title="t", purpose="p", actor=ADMIN).slug == "x" * 39


def test_every_change_is_in_a_verifying_audit_chain(world) -> None:
    before = _last_seq(world)
    permit_id = _grant(world, members=("alice", "bob"))
    with world.transaction() as s:
        pj.remove_member(s, "cohort-2027", "bob", actor=ADMIN)
        pj.revoke_permit(s, permit_id, reason="project ended", actor=ADMIN, now=T0)
    assert _actions(world, before) == ["permit.grant", "project.member.remove", "permit.revoke"]
    with world.sessions() as s:
        assert verify(s).ok
        grant = s.scalar(select(AuditEvent).where(AuditEvent.action == "permit.grant"))
        assert grant.target == f"permit:{permit_id}" and '"snds/v1"' in grant.details
        assert s.scalar(select(func.count()).select_from(ProjectMember)) == 1


def test_concurrent_grants_leave_one_active_permit(world) -> None:
    """Grants on one project serialise (row lock on PostgreSQL, the write lock on SQLite)."""
    import threading

    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def grant() -> None:
        try:
            barrier.wait()
            with world.transaction() as s:
                pj.grant_permit(
                    s,
                    "cohort-2027",
                    members=["alice"],
                    datasets=["snds"],
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                    actor=CONTROLLER,
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    at = datetime.now(UTC)
    with world.sessions() as s:
        statuses = [pj.status(p, at) for p in pj.permits(s)]
        assert statuses.count("active") == 1 and len(statuses) == 4
        assert verify(s).ok


def test_concurrent_revocations_record_one(world) -> None:
    import threading

    permit_id = _grant(world, now=datetime.now(UTC))
    before = _last_seq(world)
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def revoke() -> None:
        barrier.wait()
        try:
            with world.transaction() as s:
                pj.revoke_permit(s, permit_id, reason="stop", actor=ADMIN)
            outcomes.append("revoked")
        except pj.ProjectConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=revoke) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "revoked"]
    assert _actions(world, before) == ["permit.revoke"]


def test_concurrent_creations_of_one_slug_make_one_project(world) -> None:
    import threading

    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            with world.transaction() as s:
                pj.create_project(s, "race", title="t", purpose="p", actor=ADMIN)
            outcomes.append("created")
        except pj.ProjectConflict as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=create) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", *["project 'race' already exists"] * 2]
    with world.sessions() as s:
        assert verify(s).ok
