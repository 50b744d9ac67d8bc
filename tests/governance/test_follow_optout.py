"""Opt-outs reach running projects: permits move to the versions without the opted-out persons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.ingestion import reapply_optout
from jupyterlab_hdh.store.models import AuditEvent
from tests.governance.test_projects import CONTROLLER, _grant

NOW = datetime.now(UTC)


def _object(hub, raw_extract: Path) -> None:
    nir = pq.read_table(raw_extract / "IR_BEN_R.parquet")["BEN_IDT_ANO"][0].as_py()
    with hub.transaction() as s:
        optout.add(s, hub.keys, nir, actor="desk")
    reapply_optout(hub, actor="test")


def test_active_permit_follows_the_optout_version(ingested, raw_extract: Path) -> None:
    hub = ingested
    old_id = _grant(hub, members=("alice", "bob"), datasets=("snds/v1",), now=NOW)
    _object(hub, raw_extract)
    with hub.transaction() as s:
        moved = pj.follow_optout_versions(s, actor=CONTROLLER)
    assert len(moved) == 1 and moved[0][0] == old_id and moved[0][1] is not None
    assert "snds/v2" in moved[0][2]
    with hub.sessions() as s:
        permit = pj.active_permit(s, "bob", "cohort-2027")
        assert permit.id == moved[0][1]
        assert [(m.dataset, m.version) for m in pj.mounts(permit, hub.data_dir)] == [("snds", "v2")]
        assert {u.name for u in permit.members} == {"alice", "bob"}
        old = pj.get_permit(s, old_id)
        assert old.revoked_at is not None and "superseded" in (old.revoke_reason or "")
        assert verify(s).ok
        assert s.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "permit.grant")
            .order_by(AuditEvent.seq.desc())
        )
    with hub.transaction() as s:
        assert pj.follow_optout_versions(s, actor=CONTROLLER) == []  # idempotent


def test_permit_that_cannot_move_is_revoked(ingested, raw_extract: Path) -> None:
    hub = ingested
    old_id = _grant(hub, members=("bob",), datasets=("snds/v1",), now=NOW)
    with hub.transaction() as s:
        pj.remove_member(s, "cohort-2027", "bob", actor=CONTROLLER)
    _object(hub, raw_extract)
    with hub.transaction() as s:
        moved = pj.follow_optout_versions(s, actor=CONTROLLER)
    assert moved[0][0] == old_id and moved[0][1] is None and moved[0][2].startswith("revoked")
    with hub.sessions() as s:
        assert pj.get_permit(s, old_id).revoked_at is not None


def test_researchers_cannot_reissue_permits(ingested) -> None:
    import pytest

    with ingested.transaction() as s, pytest.raises(pj.NotAuthorised):
        pj.follow_optout_versions(s, actor=pj.Actor("alice", "researcher"))


def test_expired_permits_are_left_alone(ingested, raw_extract: Path) -> None:
    hub = ingested
    _grant(hub, datasets=("snds/v1",), now=NOW - timedelta(days=40), days=30)
    _object(hub, raw_extract)
    with hub.transaction() as s:
        assert pj.follow_optout_versions(s, actor=CONTROLLER) == []
