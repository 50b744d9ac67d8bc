"""Amending a permit in place (issue 14, item 2): what it adds counts from the next spawn,
what it takes away at once; every change is checked before any is made; an ended permit is
renewed, never amended. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.store.models import AuditEvent
from tests.governance.conftest import CONTROLLER
from tests.governance.fakes import fake_version

Amend = pj.Amendment


@pytest.fixture
def permitted(world: Any) -> tuple[Any, int]:
    """cohort-2027's permit: alice, snds v1, 30 days; carol, a member since before it, is not
    covered; bob is removed and added back after it; pmsi_mco v1 is in the catalogue."""
    fake_version(world, "pmsi_mco", 1)
    with world.transaction() as s:
        pj.add_member(s, "cohort-2027", "carol", actor=CONTROLLER)
        pj.remove_member(s, "cohort-2027", "bob", actor=CONTROLLER)
    with world.transaction() as s:
        permit = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=CONTROLLER,
        )
        pid = permit.id
    with world.transaction() as s:
        pj.add_member(s, "cohort-2027", "bob", actor=CONTROLLER)  # joins after the permit
    return world, pid


def _view(hub: Any, permit_id: int) -> dict[str, Any]:
    with hub.sessions() as s:
        p = pj.get_permit(s, permit_id)
        return {
            "members": sorted(u.name for u in p.members),
            "datasets": sorted(f"{v.dataset.name}/{v.label}" for v in p.dataset_versions),
            "expires_at": p.expires_at,
        }


def test_members_datasets_and_expiry_change_in_place_and_are_audited(permitted) -> None:
    hub, pid = permitted
    before = _view(hub, pid)
    later = datetime.now(UTC) + timedelta(days=90)
    with hub.transaction() as s:
        amended = pj.amend_permit(
            s,
            pid,
            Amend(add_members=("carol",), add_datasets=("pmsi_mco",), expires_at=later),
            actor=CONTROLLER,
        )
        assert amended.id == pid  # the decision's reference stays
    after = _view(hub, pid)
    assert after["members"] == ["alice", "carol"]
    assert after["datasets"] == ["pmsi_mco/v1", "snds/v1"]
    assert abs((after["expires_at"].replace(tzinfo=UTC) - later).total_seconds()) < 1
    with hub.sessions() as s:
        # carol may open the project from her next spawn, with both datasets
        assert pj.access_problem(s, "carol", "cohort-2027") is None
        permit = pj.active_permit(s, "carol", "cohort-2027")
        mounted = pj.member_mounts(s, permit, "carol", hub.data_dir)
        assert sorted(m.dataset for m in mounted) == ["pmsi_mco", "snds"]
        ev = s.query(AuditEvent).filter_by(action="permit.amend").one()
    details = json.loads(ev.details)
    assert ev.actor == "ctl" and ev.target == f"permit:{pid}"
    assert details["before"]["members"] == before["members"] == ["alice"]
    assert details["after"]["datasets"] == ["pmsi_mco/v1", "snds/v1"]


def test_a_member_who_joined_after_the_permit_is_covered_from_the_amendment(permitted) -> None:
    hub, pid = permitted
    with hub.sessions() as s:  # bob was removed, then added back after the permit
        assert "does not cover 'bob'" in (pj.access_problem(s, "bob", "cohort-2027") or "")
    with hub.transaction() as s:
        pj.amend_permit(
            s, pid, Amend(add_members=("bob",), compute_profile="gpu"), actor=CONTROLLER
        )
    with hub.sessions() as s:
        assert pj.access_problem(s, "bob", "cohort-2027") is None
        assert pj.get_permit(s, pid).compute_profile == "gpu"
    # removed and added back once more: the amendment no longer covers him
    with hub.transaction() as s:
        pj.remove_member(s, "cohort-2027", "bob", actor=CONTROLLER)
    with hub.transaction() as s:
        pj.add_member(s, "cohort-2027", "bob", actor=CONTROLLER)
    with hub.sessions() as s:
        assert "rejoined" in (pj.access_problem(s, "bob", "cohort-2027") or "")


def test_what_is_taken_away_holds_at_once(permitted) -> None:
    hub, pid = permitted
    with hub.transaction() as s:
        pj.amend_permit(s, pid, Amend(add_members=("carol",)), actor=CONTROLLER)
    with hub.transaction() as s:
        pj.amend_permit(s, pid, Amend(remove_members=("carol",)), actor=CONTROLLER)
    with hub.sessions() as s:
        # the guard and the hub ask this of every request and poll: carol is out now
        assert "does not cover 'carol'" in (pj.access_problem(s, "carol", "cohort-2027") or "")
        assert pj.access_problem(s, "alice", "cohort-2027") is None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (Amend(), "nothing to amend"),
        (Amend(add_members=("alice",)), "already covered"),
        (Amend(add_members=("rev",)), "is not a member of 'cohort-2027'"),
        (Amend(add_members=("nobody",)), "is not a member"),
        (Amend(compute_profile="quantum"), "unknown compute profile 'quantum'"),
        (Amend(remove_members=("bob",)), "is not covered by permit"),
        (Amend(remove_members=("alice",)), "at least one project member"),
        (Amend(add_datasets=("snds",)), "already grants snds/v1"),
        (Amend(add_datasets=("nope",)), "no dataset 'nope' in the catalogue"),
        (Amend(add_datasets=("Bad Name",)), "invalid dataset"),
        (Amend(remove_datasets=("pmsi_mco",)), "grants no 'pmsi_mco'"),
        (Amend(remove_datasets=("snds",)), "at least one dataset"),
        (Amend(expires_at=datetime.now(UTC) - timedelta(days=1)), "not in the future"),
        (Amend(expires_at=datetime(2030, 1, 1)), "timezone-aware"),  # noqa: DTZ001
        # a valid change with a bad one: nothing of it is made
        (Amend(add_members=("carol",), add_datasets=("nope",)), "no dataset 'nope'"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(permitted, change, says) -> None:
    hub, pid = permitted
    before = _view(hub, pid)
    with pytest.raises(pj.ProjectError, match=says), hub.transaction() as s:
        pj.amend_permit(s, pid, change, actor=CONTROLLER)
    assert _view(hub, pid) == before
    with hub.sessions() as s:
        assert s.query(AuditEvent).filter_by(action="permit.amend").count() == 0


def test_only_grantors_amend_and_ended_permits_are_renewed_not_amended(permitted) -> None:
    hub, pid = permitted
    with pytest.raises(pj.NotAuthorised, match="may not amend permits"), hub.transaction() as s:
        pj.amend_permit(
            s, pid, Amend(add_members=("carol",)), actor=pj.Actor("alice", "researcher")
        )
    with hub.transaction() as s:
        pj.revoke_permit(s, pid, reason="study stopped", actor=CONTROLLER)
    with pytest.raises(pj.ProjectConflict, match="renewed by a new one"), hub.transaction() as s:
        pj.amend_permit(s, pid, Amend(add_members=("carol",)), actor=CONTROLLER)


def test_hdh_permit_amend(permitted) -> None:
    hub, pid = permitted
    data = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        data += ["--store-url", hub.data_dir.store_url]
    r = CliRunner().invoke(
        main,
        [*data, "permit", "amend", str(pid), "--add-member", "carol", "--add-dataset", "pmsi_mco"],
    )
    assert r.exit_code == 0, r.output
    assert f"permit #{pid} of cohort-2027 amended: alice, carol" in r.output
    r = CliRunner().invoke(main, [*data, "permit", "amend", str(pid), "--remove-member", "bob"])
    assert r.exit_code == 1 and "'bob' is not covered by permit" in r.output
    assert "Traceback" not in r.output
