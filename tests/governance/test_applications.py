"""The access desk (issue 14, item 1): application → opinions → the authority's decision →
the permit, and everything refused on the way changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user
from jupyterlab_hdh.store.models import Application, AuditEvent, Notification
from tests.governance.conftest import CONTROLLER
from tests.governance.fakes import fake_version

DANA = pj.Actor("dana", "researcher")
ALICE = pj.Actor("alice", "researcher")
COMM = pj.Actor("comm", "committee")
COMM2 = pj.Actor("comm2", "committee")
ADMIN = pj.Actor("adm", "admin")


@pytest.fixture
def desk(world: Any) -> Any:
    """The governance world plus dana (a researcher with no project), two committee members,
    an administrator and dataset pmsi_mco v1."""
    with world.transaction() as s:
        for name, role in (
            ("dana", "researcher"),
            ("comm", "committee"),
            ("comm2", "committee"),
            ("adm", "admin"),
        ):
            create_user(s, name, role, actor="test")
    fake_version(world, "pmsi_mco", 1)
    return world


def _draft(**kw: Any) -> ap.Draft:
    base: dict[str, Any] = {
        "kind": "new",
        "project": "diabetes-2027",
        "title": "Diabète et insuffisance rénale",
        "purpose": "Mesurer l'incidence de l'insuffisance rénale chez les diabétiques.",
        "public_interest": "Adapter le dépistage.",
        "methodology": "Cohorte rétrospective 2015-2024, SNDS.",
        "datasets": ("snds",),
        "members": ("carol",),
        "duration_days": 365,
    }
    base.update(kw)
    return ap.Draft(**base)


def _submit(hub: Any, **kw: Any) -> int:
    with hub.transaction() as s:
        return ap.submit(s, _draft(**kw), actor=DANA).id


def _state(hub: Any) -> dict[str, Any]:
    """Everything a refused step must leave as it was."""
    with hub.sessions() as s:
        return {
            "apps": [(a.id, a.state, a.round, a.title) for a in s.query(Application)],
            "opinions": s.query(ap.ApplicationOpinion).count(),
            "projects": [p.slug for p in pj.projects_of(s)],
            "permits": len(pj.permits(s)),
            "audit": s.query(AuditEvent).count(),
            "notifications": s.query(Notification).count(),
        }


def test_the_whole_path_from_application_to_sandbox_access(desk) -> None:
    hub = desk
    app_id = _submit(hub)
    with hub.sessions() as s:
        # the committee (not the team) and the administrators are told
        told = {n.user_name for n in s.query(Notification).filter_by(kind="application_submitted")}
        assert told == {"comm", "comm2", "adm"}
        assert s.query(Notification).filter_by(user_name="comm").one().link == (
            f"ui/applications/{app_id}"
        )
        assert pj.access_problem(s, "dana", "diabetes-2027") == "no project 'diabetes-2027'"
    with hub.transaction() as s:
        ap.give_opinion(s, app_id, "favourable", "Méthode solide.", actor=COMM)
    with hub.transaction() as s:
        app = ap.decide(s, app_id, "favourable", reference="CNIL DR-2027-042", actor=ADMIN)
        assert app.state == "approved" and app.permit_id is not None
        permit_id = app.permit_id
    with hub.sessions() as s:
        project = pj.get_project(s, "diabetes-2027")
        roles = {m.user.name: m.role for m in project.members}
        assert roles == {"dana": "lead", "carol": "member"}
        permit = pj.get_permit(s, permit_id)
        assert sorted(u.name for u in permit.members) == ["carol", "dana"]
        assert [f"{v.dataset.name}/{v.label}" for v in permit.dataset_versions] == ["snds/v1"]
        assert permit.compute_profile == "cpu"
        days = (permit.expires_at.replace(tzinfo=UTC) - datetime.now(UTC)).days
        assert 363 <= days <= 365
        # the sandbox's question: dana and carol may open it now, bob may not
        assert pj.access_problem(s, "dana", "diabetes-2027") is None
        assert pj.access_problem(s, "carol", "diabetes-2027") is None
        assert "not a member" in (pj.access_problem(s, "bob", "diabetes-2027") or "")
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
        i = actions.index("application.submit")
        assert actions[i:] == [
            "application.submit",
            "application.opinion",
            "project.create",
            "project.member.add",
            "project.member.add",
            "permit.grant",
            "application.decide",
        ]
        decided = s.query(AuditEvent).filter_by(action="application.decide").one()
        assert decided.actor == "adm"
        assert json.loads(decided.details)["reference"] == "CNIL DR-2027-042"
        # the applicant and the team hear of the decision, with the permit's number
        told = s.query(Notification).filter_by(kind="application_decided").all()
        assert {n.user_name for n in told} == {"dana", "carol"}
        assert all(f"permit #{permit_id}" in n.body for n in told)


def test_changes_requested_then_revised_is_a_new_round(desk) -> None:
    hub = desk
    app_id = _submit(hub)
    with hub.transaction() as s:
        ap.give_opinion(s, app_id, "changes_requested", "Précisez la cohorte.", actor=COMM)
    with hub.sessions() as s:
        view = ap.view(s, app_id, DANA)
        assert view["state"] == "changes_requested" and view["actions"] == ["revise", "withdraw"]
        # the applicant reads the opinion, not who gave it
        assert view["opinions"][0]["text"] == "Précisez la cohorte."
        assert view["opinions"][0]["member"] is None
        assert ap.view(s, app_id, ADMIN)["opinions"][0]["member"] == "comm"
    with pytest.raises(pj.ProjectConflict, match="revises it first"), hub.transaction() as s:
        ap.decide(s, app_id, "favourable", reference="R-1", actor=ADMIN)
    with pytest.raises(pj.ProjectConflict, match="no opinion now"), hub.transaction() as s:
        ap.give_opinion(s, app_id, "favourable", "ok", actor=COMM2)
    with hub.transaction() as s:
        ap.revise(
            s,
            app_id,
            ap.Revision(methodology="Cohorte 2015-2024, diabétiques de type 2.", note="Précisé."),
            actor=DANA,
        )
    with hub.sessions() as s:
        view = ap.view(s, app_id, COMM)
        assert (view["state"], view["round"]) == ("submitted", 2)
        assert view["methodology"].endswith("type 2.")
        assert view["actions"] == ["opinion"]  # comm gives one again, on round 2
    # round 2 has no opinion yet: no decision
    with (
        pytest.raises(pj.ProjectError, match="no opinion of the committee on round 2"),
        hub.transaction() as s,
    ):
        ap.decide(s, app_id, "favourable", reference="R-1", actor=ADMIN)
    with hub.transaction() as s:
        ap.give_opinion(s, app_id, "unfavourable", "Intérêt public faible.", actor=COMM)
    with hub.transaction() as s:
        app = ap.decide(s, app_id, "unfavourable", reference="R-2", text="Refus.", actor=ADMIN)
        assert app.state == "rejected" and app.permit_id is None
    with hub.sessions() as s:
        assert pj.projects_of(s) == pj.projects_of(s, "alice")  # nothing created
    with pytest.raises(pj.ProjectConflict, match="already ended"), hub.transaction() as s:
        ap.decide(s, app_id, "favourable", reference="R-3", actor=ADMIN)


def test_renewal_issues_a_new_permit_and_amendment_adds_to_the_active_one(desk) -> None:
    hub = desk
    with hub.transaction() as s:
        old = pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=10),
            actor=CONTROLLER,
        ).id
    # an amendment: pmsi_mco and bob (a member of the project not covered yet), on GPUs
    with hub.transaction() as s:
        amend = ap.submit(
            s,
            _draft(
                kind="amendment",
                project="cohort-2027",
                datasets=("pmsi_mco",),
                members=("bob",),
                duration_days=None,
                compute_profile="gpu",
            ),
            actor=ALICE,
        ).id
        ap.give_opinion(s, amend, "favourable", "ok", actor=COMM)
        app = ap.decide(s, amend, "favourable", reference="A-1", actor=ADMIN)
        assert app.permit_id == old  # amended in place: the permit's number stays
    with hub.sessions() as s:
        permit = pj.get_permit(s, old)
        assert sorted(u.name for u in permit.members) == ["alice", "bob"]
        assert sorted(v.dataset.name for v in permit.dataset_versions) == ["pmsi_mco", "snds"]
        assert permit.compute_profile == "gpu"
        assert pj.access_problem(s, "bob", "cohort-2027") is None
    # a renewal: a new permit of its own duration, which supersedes the old one
    with hub.transaction() as s:
        renew = ap.submit(
            s, _draft(kind="renewal", project="cohort-2027", duration_days=730), actor=ALICE
        ).id
        ap.give_opinion(s, renew, "favourable", "ok", actor=COMM2)
        new = ap.decide(s, renew, "favourable", reference="R-1", actor=ADMIN).permit_id
    with hub.sessions() as s:
        assert new != old
        assert pj.status(pj.get_permit(s, old)) == "revoked"
        permit = pj.get_permit(s, new)
        assert sorted(u.name for u in permit.members) == ["alice", "carol"]
        assert (permit.expires_at.replace(tzinfo=UTC) - datetime.now(UTC)).days >= 729
        assert pj.get_project(s, "cohort-2027").members[0].user.name == "alice"


@pytest.mark.parametrize(
    ("draft", "says"),
    [
        (_draft(datasets=("nope",)), "no dataset 'nope' in the catalogue"),
        (_draft(datasets=("snds/v9",)), "no version v9 of dataset 'snds'"),
        (_draft(datasets=()), "at least one dataset"),
        (_draft(members=("ghost",)), "the member 'ghost' has no account"),
        (_draft(members=("rev",)), "the member 'rev' is a reviewer"),
        (_draft(duration_days=0), "the duration must be 1 to"),
        (_draft(duration_days=None), "the duration must be 1 to"),
        (_draft(compute_profile="quantum"), "unknown compute profile 'quantum'"),
        (_draft(kind="takeover"), "unknown kind of application"),
        (_draft(project="Bad Slug"), "invalid project slug"),
        (_draft(project="review"), "reserved for the reviewers"),
        (_draft(project="cohort-2027"), "exists: apply for a renewal"),
        (_draft(title=""), "the title must not be empty"),
        (_draft(title="two\nlines"), "must be one line"),
        (_draft(public_interest="  "), "public-interest justification must not be empty"),
        (_draft(kind="renewal", project="nowhere"), "no project 'nowhere'"),
        (_draft(kind="renewal", project="cohort-2027"), "does not lead project"),
        (
            _draft(kind="amendment", project="cohort-2027", duration_days=None),
            "does not lead project",
        ),
    ],
)
def test_bad_applications_are_refused_and_change_nothing(desk, draft, says) -> None:
    hub = desk
    before = _state(hub)
    with pytest.raises((pj.ProjectError, pj.NotAuthorised), match=says), hub.transaction() as s:
        ap.submit(s, draft, actor=DANA)
    assert _state(hub) == before


def test_amendment_rules(desk) -> None:
    hub = desk
    amendment = _draft(kind="amendment", project="cohort-2027", duration_days=None)
    with pytest.raises(pj.ProjectError, match="no active permit to amend"), hub.transaction() as s:
        ap.submit(s, amendment, actor=ALICE)
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=10),
            actor=CONTROLLER,
        )
    with pytest.raises(pj.ProjectError, match="keeps the permit's expiry"), hub.transaction() as s:
        ap.submit(s, _draft(kind="amendment", project="cohort-2027"), actor=ALICE)
    with (
        pytest.raises(pj.ProjectConflict, match="already grants what this amendment asks for"),
        hub.transaction() as s,
    ):
        ap.submit(s, replace(amendment, datasets=("snds",), members=()), actor=ALICE)
    with pytest.raises(pj.ProjectError, match="adds a dataset or a member"), hub.transaction() as s:
        ap.submit(s, replace(amendment, datasets=(), members=()), actor=ALICE)


def test_who_may_do_what(desk) -> None:
    hub = desk
    app_id = _submit(hub)
    before = _state(hub)
    refusals = [
        # nobody but researchers applies for themselves
        (lambda s: ap.submit(s, _draft(project="x-1"), actor=COMM), "may not apply"),
        # a data controller may not submit for someone; an administrator may
        (
            lambda s: ap.submit(s, _draft(project="x-1"), actor=CONTROLLER, applicant="dana"),
            "may not apply for dana",
        ),
        # only committee members give opinions, never the applying team
        (lambda s: ap.give_opinion(s, app_id, "favourable", "ok", actor=ALICE), "not a committee"),
        (
            lambda s: ap.give_opinion(s, app_id, "favourable", "ok", actor=ADMIN, member="carol"),
            "not a committee",
        ),
        (lambda s: ap.give_opinion(s, app_id, "great", "ok", actor=COMM), "unknown opinion"),
        (lambda s: ap.give_opinion(s, app_id, "favourable", "", actor=COMM), "must not be empty"),
        # a decision: administrators only, after an opinion
        (
            lambda s: ap.decide(s, app_id, "favourable", reference="R", actor=CONTROLLER),
            "may not record the authority's decision",
        ),
        (
            lambda s: ap.decide(s, app_id, "favourable", reference="R", actor=ADMIN),
            "a decision follows an opinion",
        ),
        (lambda s: ap.withdraw(s, app_id, actor=ALICE), "may not withdraw"),
        (lambda s: ap.revise(s, app_id, ap.Revision(title="t"), actor=DANA), "when changes are"),
        (lambda s: ap.decide(s, 999, "favourable", reference="R", actor=ADMIN), "no application"),
    ]
    for call, says in refusals:
        with pytest.raises(Exception, match=says), hub.transaction() as s:
            call(s)
    assert _state(hub) == before
    with hub.sessions() as s:  # alice is not on the team: she does not see it at all
        with pytest.raises(ap.UnknownApplication):
            ap.view(s, app_id, ALICE)
        assert ap.visible(s, ALICE) == []
        assert [a.id for a in ap.visible(s, COMM)] == [app_id]
        assert [a.id for a in ap.visible(s, pj.Actor("carol", "researcher"))] == [app_id]
    # a second open application for the same project is refused
    with pytest.raises(pj.ProjectConflict, match="is still open"), hub.transaction() as s:
        ap.submit(s, _draft(), actor=DANA)


def test_an_opinion_by_a_committee_member_on_the_team_is_refused(desk) -> None:
    """A committee member who is also a member of the project (by an administrator's mistake,
    or who joins it) is in conflict of interest: refused, nothing recorded."""
    hub = desk
    app_id = _submit(hub)
    with hub.transaction() as s:  # comm gets listed as a member through a revision
        ap.give_opinion(s, app_id, "changes_requested", "add a statistician", actor=COMM2)
    with hub.transaction() as s:
        app = ap.get(s, app_id)
        app.members = [*app.members, "comm"]  # as if the team named them
    before = _state(hub)
    with pytest.raises(pj.NotAuthorised, match="conflict of interest"), hub.transaction() as s:
        ap.give_opinion(s, app_id, "favourable", "ok", actor=COMM)
    assert _state(hub) == before


def test_a_decision_that_cannot_be_carried_out_changes_nothing(desk) -> None:
    hub = desk
    app_id = _submit(hub, members=("carol",))
    with hub.transaction() as s:
        ap.give_opinion(s, app_id, "favourable", "ok", actor=COMM)
    # meanwhile carol's account was disabled, and someone created the project
    from jupyterlab_hdh.governance import accounts

    with hub.transaction() as s:
        accounts.set_disabled(s, "carol", True, actor="test")
    before = _state(hub)
    with (
        pytest.raises(pj.ProjectError, match="account of the member 'carol' is disabled"),
        hub.transaction() as s,
    ):
        ap.decide(s, app_id, "favourable", reference="R", actor=ADMIN)
    assert _state(hub) == before
    with hub.transaction() as s:
        accounts.set_disabled(s, "carol", False, actor="test")
        pj.create_project(s, "diabetes-2027", title="t", purpose="p", actor=CONTROLLER)
    before = _state(hub)
    with pytest.raises(pj.ProjectConflict, match="exists"), hub.transaction() as s:
        ap.decide(s, app_id, "favourable", reference="R", actor=ADMIN)
    assert _state(hub) == before
    # an unfavourable decision is still possible, and withdraws nothing else
    with hub.transaction() as s:
        assert ap.decide(s, app_id, "unfavourable", reference="R", actor=ADMIN).state == "rejected"


def test_an_operator_records_for_someone_and_the_audit_says_so(desk) -> None:
    hub = desk
    with hub.transaction() as s:
        app_id = ap.submit(s, _draft(), actor=ADMIN, applicant="dana").id
        ap.give_opinion(s, app_id, "favourable", "minutes of 3 May", actor=ADMIN, member="comm")
    with hub.sessions() as s:
        app = ap.get(s, app_id)
        assert (app.applicant, app.submitted_by) == ("dana", "adm")
        assert (app.opinions[0].member, app.opinions[0].recorded_by) == ("comm", "adm")
        ev = s.query(AuditEvent).filter_by(action="application.opinion").one()
        assert ev.actor == "adm" and json.loads(ev.details)["member"] == "comm"
    with hub.transaction() as s:
        ap.withdraw(s, app_id, actor=DANA)
    with hub.sessions() as s:
        assert ap.get(s, app_id).state == "withdrawn"
