"""Fixtures of the governance tests: users of every role, a dataset, a project."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user
from jupyterlab_hdh.ingestion import ingest
from tests.governance.fakes import fake_version

CONTROLLER = pj.Actor("ctl", "data_controller")


def _world(hub, ingest_from: Path | None):
    with hub.transaction() as s:
        for name, role in (
            ("alice", "researcher"),
            ("bob", "researcher"),
            ("carol", "researcher"),
            ("rev", "reviewer"),
            ("ctl", "data_controller"),
        ):
            create_user(s, name, role, actor="test")
    if ingest_from is None:
        fake_version(hub)
    else:
        ingest(hub, ingest_from, "snds", actor="test")
    with hub.transaction() as s:
        pj.create_project(
            s, "cohort-2027", title="Cohorte diabète", purpose="Étude\nde cohorte", actor=CONTROLLER
        )
        pj.add_member(s, "cohort-2027", "alice", role="lead", actor=CONTROLLER)
        pj.add_member(s, "cohort-2027", "bob", actor=CONTROLLER)
    return hub


@pytest.fixture
def world(hub):
    """Users of every role, dataset snds v1 (a catalogue row), project cohort-2027 (alice
    leads, bob is a member)."""
    return _world(hub, None)


@pytest.fixture
def ingested(hub, raw_extract: Path):
    """The same world, with snds v1 really ingested from the raw extract."""
    return _world(hub, raw_extract)
