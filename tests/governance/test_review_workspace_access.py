"""The review workspace's slug: no project may take it, and only reviewers and admins open it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, set_disabled
from jupyterlab_hdh.store.models import AuditEvent, Project

ADMIN = pj.Actor.administrator("cli:test")


def _count(hub, model) -> int:
    with hub.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_no_project_may_take_the_review_slug(world) -> None:
    projects, events = _count(world, Project), _count(world, AuditEvent)
    with world.transaction() as s, pytest.raises(pj.ProjectError) as caught:
        pj.create_project(s, pj.REVIEW_WORKSPACE, title="t", purpose="p", actor=ADMIN)
    message = str(caught.value)
    assert "\n" not in message
    assert "'review' is reserved for the reviewers' workspaces" in message
    assert caught.value.http_status == 422
    with pytest.raises(pj.ProjectError, match="reserved for the reviewers' workspaces"):
        pj.check_slug("review")
    # nothing written, and near names stay ordinary slugs
    assert (_count(world, Project), _count(world, AuditEvent)) == (projects, events)
    for slug in ("reviews", "review-2027", "my-review"):
        assert pj.check_slug(slug) == slug


def test_reviewers_committee_and_admins_may_open_the_review_workspace(world) -> None:
    with world.transaction() as s:
        create_user(s, "cmt", "committee", actor="test")
        create_user(s, "adm", "admin", actor="test")
    with world.sessions() as s:
        for name in ("rev", "cmt", "adm"):
            assert pj.access_problem(s, name, pj.REVIEW_WORKSPACE) is None, name


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("alice", "review is the reviewers' workspace: alice is a researcher"),
        ("ctl", "review is the reviewers' workspace: ctl is a data_controller"),
        ("nobody", "review is the reviewers' workspace: nobody is no HDH user"),
    ],
)
def test_others_are_refused_the_review_workspace_with_the_reason(world, user, reason) -> None:
    with world.sessions() as s:
        assert pj.access_problem(s, user, pj.REVIEW_WORKSPACE) == reason


def test_a_disabled_reviewer_is_refused_the_review_workspace(world) -> None:
    with world.transaction() as s:
        set_disabled(s, "rev", True, actor="test")
    with world.sessions() as s:
        problem = pj.access_problem(s, "rev", pj.REVIEW_WORKSPACE)
    assert problem == (
        "the account of 'rev' is disabled (an administrator can `hdh user enable rev`)"
    )
    with world.transaction() as s:
        set_disabled(s, "rev", False, actor="test")
    with world.sessions() as s:
        assert pj.access_problem(s, "rev", pj.REVIEW_WORKSPACE) is None


def test_the_review_workspace_is_not_a_project_reviewers_can_open(world) -> None:
    """A reviewer is no member of any project: ``review`` is the only server they may open,
    and it is no project (no permit, no mounts through active_permit)."""
    with world.sessions() as s:
        assert "not a member" in (pj.access_problem(s, "rev", "cohort-2027") or "")
        with pytest.raises(pj.UnknownProject):
            pj.active_permit(s, "rev", pj.REVIEW_WORKSPACE)
