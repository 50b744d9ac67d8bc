"""Helpers for the airlock workflow tests: a project with members, reviewers and a workspace.

Not a conftest (other test files of this folder belong to other modules): the
tests import :func:`setup` and the actors from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import projects as pj

ADMIN = pj.Actor.administrator("cli:test")
ALICE = pj.Actor("alice", "researcher")  # the author, a member of "study"
BOB = pj.Actor("bob", "researcher")  # another member of "study"
MALLORY = pj.Actor("mallory", "researcher")  # a member of "other"
RITA = pj.Actor("rita", "reviewer")
RAJ = pj.Actor("raj", "reviewer")
CORA = pj.Actor("cora", "committee")
DAN = pj.Actor("dan", "data_controller")
USERS = {a.name: a for a in (ALICE, BOB, MALLORY, RITA, RAJ, CORA, DAN)}


def setup(hub: Any) -> Path:
    """Users, projects ``study`` (alice lead, bob) and ``other`` (mallory); returns the
    ``study`` workspace."""
    with hub.transaction() as s:
        for actor in USERS.values():
            accounts.create_user(s, actor.name, actor.role, actor="test")
        for slug in ("study", "other"):
            pj.create_project(s, slug, title=slug, purpose="tests", actor=ADMIN)
        pj.add_member(s, "study", "alice", role="lead", actor=ADMIN)
        pj.add_member(s, "study", "bob", actor=ADMIN)
        pj.add_member(s, "other", "mallory", role="lead", actor=ADMIN)
    for slug in ("study", "other"):
        hub.data_dir.workspace(slug).mkdir(parents=True, exist_ok=True)
    return hub.data_dir.workspace("study")


def grant(hub: Any, members: tuple[str, ...] = ("alice",), days: int = 3) -> None:
    """An active permit on ``study`` (a catalogue-only dataset) for ``members``: what the
    bridged routes re-check."""
    from datetime import UTC, datetime, timedelta

    from tests.governance.fakes import fake_version

    fake_version(hub)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "study",
            members=list(members),
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=days),
            actor=DAN,
        )


def write(workspace: Path, name: str, text: str = "group,count\na,12\nb,15\n") -> Path:
    path = workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def draft(hub: Any, *files: tuple[str, str], author: pj.Actor = ALICE) -> int:
    """A draft request of ``study`` with ``(path, role)`` files (already in the workspace)."""
    with hub.transaction() as s:
        req = m.create_request(s, "study", title="results", actor=author)
        for path, role in files:
            m.add_file(s, hub.data_dir, req.id, path, role=role, actor=author)
        return req.id


def submit(hub: Any, request_id: int, author: pj.Actor = ALICE) -> None:
    with hub.transaction() as s:
        m.submit(s, hub.data_dir, request_id, actor=author)


def vote_all(hub: Any, request_id: int, decision: str = "approve", *reviewers: pj.Actor) -> None:
    """Every reviewer votes ``decision`` on every output (with an exception if gated)."""
    for reviewer in reviewers or (RITA, RAJ):
        with hub.transaction() as s:
            view = m.get_request(s, request_id, actor=reviewer, provenance=False)
            for f in view["files"]:
                if f["role"] == "output":
                    m.vote(
                        s,
                        request_id,
                        f["path"],
                        decision,
                        actor=reviewer,
                        exception_reason=(
                            "checked by hand"
                            if decision == "approve" and f["check_status"] == "fail"
                            else None
                        ),
                    )


def state(hub: Any, request_id: int) -> str:
    with hub.sessions() as s:
        return m.get_request(s, request_id, actor=ADMIN, provenance=False)["state"]
