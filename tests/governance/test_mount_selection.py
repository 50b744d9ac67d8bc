"""Choosing which permitted dataset versions a member's sandbox mounts (the data panel's
"change mounted versions"): defaults, choices, what is refused, what the audit log keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.store.models import AuditEvent, MountSelection
from tests.governance.fakes import fake_version

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
CONTROLLER = pj.Actor("ctl", "data_controller")
ALICE = pj.Actor("alice", "researcher")


@pytest.fixture
def two_versions(world):
    """snds v1 and v2, cim v1; the permit grants all three to alice and bob."""
    fake_version(world, "snds", 2)
    fake_version(world, "cim", 1)
    with world.transaction() as s:
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice", "bob"],
            datasets=["snds/v1", "snds/v2", "cim"],
            expires_at=T0 + timedelta(days=30),
            actor=CONTROLLER,
            now=T0,
        )
    return world


def _mounted(hub, user: str = "alice") -> list[str]:
    with hub.sessions() as s:
        permit = pj.active_permit(s, user, "cohort-2027", T0)
        return [f"{m.dataset}/{m.version}" for m in pj.member_mounts(s, permit, user, hub.data_dir)]


def _select(hub, versions, *, user="alice", actor=ALICE):
    with hub.transaction() as s:
        return pj.select_mounts(
            s, "cohort-2027", user, list(versions), hub.data_dir, actor=actor, now=T0
        )


def test_by_default_the_newest_permitted_version_of_each_dataset(two_versions) -> None:
    assert _mounted(two_versions) == ["cim/v1", "snds/v2"]
    with two_versions.sessions() as s:
        permit = pj.active_permit(s, "alice", "cohort-2027", T0)
        plan = pj.mount_plan(s, permit, "alice", two_versions.data_dir)
    assert [(p["dataset"], p["version"], p["mounted"]) for p in plan["permitted"]] == [
        ("cim", "v1", True),
        ("snds", "v1", False),
        ("snds", "v2", True),
    ]
    assert plan["mounts"][1]["path"] == str(two_versions.data_dir.datasets / "snds" / "v2")


def test_a_member_mounts_another_permitted_version_and_only_they_change(two_versions) -> None:
    mounts = _select(two_versions, ["snds/v1"])
    assert [f"{m.dataset}/{m.version}" for m in mounts] == ["cim/v1", "snds/v1"]
    assert _mounted(two_versions) == ["cim/v1", "snds/v1"]
    assert _mounted(two_versions, "bob") == ["cim/v1", "snds/v2"]  # bob's sandbox unchanged
    _select(two_versions, ["snds/v1", "snds/v2"])  # both side by side, e.g. to compare
    assert _mounted(two_versions) == ["cim/v1", "snds/v1", "snds/v2"]
    _select(two_versions, [])  # back to the defaults
    assert _mounted(two_versions) == ["cim/v1", "snds/v2"]
    with two_versions.sessions() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "mounts.select").order_by(AuditEvent.seq)
        ).all()
        assert [e.target for e in events] == ["project:cohort-2027/user:alice"] * 3
        assert '"mounts":["cim/v1","snds/v1"]' in events[0].details
        assert verify(s).ok


@pytest.mark.parametrize(
    ("versions", "error", "message"),
    [
        (["snds/v3"], pj.ProjectError, r"snds/v3 is not in permit #\d+ .*grants: cim/v1, snds/v1"),
        (["other/v1"], pj.ProjectError, "other/v1 is not in permit"),
        (["snds"], pj.ProjectError, "write NAME/vN"),
        (["../snds/v1"], pj.ProjectError, "invalid dataset version"),
        (["snds/v1\x00"], pj.ProjectError, "invalid dataset version"),
    ],
)
def test_versions_outside_the_permit_are_refused_and_nothing_changes(
    two_versions, versions, error, message
) -> None:
    _select(two_versions, ["snds/v1"])
    with pytest.raises(error, match=message):
        _select(two_versions, ["snds/v2", *versions])
    assert _mounted(two_versions) == ["cim/v1", "snds/v1"]


def test_only_the_member_or_a_controller_chooses(two_versions) -> None:
    with pytest.raises(pj.NotAuthorised, match="may not choose alice's mounts"):
        _select(two_versions, ["snds/v1"], actor=pj.Actor("bob", "researcher"))
    with pytest.raises(pj.NotAMember):
        _select(two_versions, ["snds/v1"], user="carol", actor=pj.Actor("carol", "researcher"))
    _select(two_versions, ["snds/v1"], actor=CONTROLLER)
    assert _mounted(two_versions) == ["cim/v1", "snds/v1"]


def test_a_choice_never_mounts_what_a_newer_permit_no_longer_grants(two_versions) -> None:
    _select(two_versions, ["snds/v1"])
    with two_versions.transaction() as s:  # the next permit grants snds v2 only
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds/v2"],
            expires_at=T0 + timedelta(days=30),
            actor=CONTROLLER,
            now=T0,
        )
    assert _mounted(two_versions) == ["snds/v2"]
    with two_versions.sessions() as s:  # the old choice is kept but ignored
        assert s.scalars(select(MountSelection)).all()


def test_an_older_version_is_grantable_while_it_has_every_opt_out_applied(world) -> None:
    from jupyterlab_hdh.data import optout
    from jupyterlab_hdh.store.models import DatasetVersion

    fake_version(world, "snds", 2)
    with world.transaction() as s:  # v2 is a newer extract: v1 superseded, nothing missing
        s.scalars(
            select(DatasetVersion).where(DatasetVersion.number == 1)
        ).one().status = "superseded"
    with world.transaction() as s:
        permit = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds/v1", "snds/v2"],
            expires_at=T0 + timedelta(days=30),
            actor=CONTROLLER,
            now=T0,
        )
        assert [v.label for v in permit.dataset_versions] == ["v1", "v2"]
    with world.transaction() as s:
        optout.add(s, world.keys, "184017512345658", actor="test")
    with world.transaction() as s, pytest.raises(pj.ProjectError, match="lacks 1 opt-out"):
        pj.resolve_dataset(s, "snds/v1")


def test_access_problem_is_the_one_line_the_guard_and_spawner_show(two_versions) -> None:
    with two_versions.sessions() as s:
        assert pj.access_problem(s, "alice", "cohort-2027", T0) is None
        assert "not a member" in (pj.access_problem(s, "carol", "cohort-2027", T0) or "")
        assert "expired" in (
            pj.access_problem(s, "alice", "cohort-2027", T0 + timedelta(days=31)) or ""
        )
