"""``hdh application ...`` (issue 14, item 6): the access desk from the operator's console,
from the application to the permit that opens the sandbox; each step e-mails whom it
concerns; a refusal is one line, a non-zero status and changes nothing. On both stores."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jupyterlab_hdh.cli import applications as cli_ap
from jupyterlab_hdh.cli import common as cli_common
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.cli_context import actor as console
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user
from jupyterlab_hdh.store.models import AuditEvent, Notification, User
from tests.governance.test_applications import _state


@pytest.fixture
def desk(world: Any) -> Any:
    """The governance world plus a committee member and an administrator."""
    with world.transaction() as s:
        create_user(s, "comm", "committee", actor="test")
        create_user(s, "adm", "admin", actor="test")
    return world


def _hdh(hub: Any):
    base = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        base += ["--store-url", hub.data_dir.store_url]

    def run(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, [*base, "application", *args])
        assert "Traceback" not in result.output
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


NEW = [
    "submit",
    "--project",
    "diabetes-2027",
    "--applicant",
    "carol",
    "--title",
    "Diabète et insuffisance rénale",
    "--purpose",
    "Mesurer l'incidence de l'insuffisance rénale.",
    "--public-interest",
    "Adapter le dépistage.",
    "--methodology",
    "Cohorte rétrospective, SNDS.",
    "--dataset",
    "snds/v1",
    "--member",
    "bob",
    "--days",
    "365",
    "--profile",
    "gpu",
]


def test_from_the_application_to_the_sandbox(desk, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller

    from jupyterlab_hdh.hub.config import free_port
    from tests.egress.test_notify import Inbox

    hub, hdh = desk, _hdh(desk)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("HDH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HDH_SMTP_PORT", str(port))
    monkeypatch.setenv("HDH_SMTP_DOMAIN", "hdh.example")
    try:
        r = hdh(*NEW)
        assert r.stdout == (
            "application #1 (new) for project diabetes-2027 submitted by carol;"
            " the committee is notified\n"
        )
        told = sorted(to for tos, _ in inbox.messages for to in tos)
        assert told == ["adm@hdh.example", "comm@hdh.example"]
        r = hdh("opinion", "1", "--member", "comm", "--opinion", "favourable", "--text", "Solide.")
        assert r.stdout == (
            "comm's opinion on application #1 (round 1): favourable; the application is submitted\n"
        )
        r = hdh("decide", "1", "--decision", "favourable", "--reference", "CNIL DR-2027-042")
        with hub.sessions() as s:
            permit_id = ap.get(s, 1).permit_id
        assert r.stdout == (
            f"application #1 approved (CNIL DR-2027-042): permit #{permit_id} issued"
            " for project diabetes-2027\n"
        )
    finally:
        controller.stop()
    # carol heard of the opinion and of the decision, bob of the decision
    told = sorted(to for tos, _ in inbox.messages for to in tos)
    assert told == [
        "adm@hdh.example",
        "bob@hdh.example",
        "carol@hdh.example",
        "carol@hdh.example",
        "comm@hdh.example",
    ]
    with hub.sessions() as s:
        # the researchers may open the project they applied for
        assert pj.access_problem(s, "carol", "diabetes-2027") is None
        assert pj.access_problem(s, "bob", "diabetes-2027") is None
        assert pj.get_permit(s, permit_id).compute_profile == "gpu"
        assert s.query(Notification).filter(Notification.emailed_at.is_(None)).count() == 0
        # the audit says the console did it, and for whom
        submitted = s.query(AuditEvent).filter_by(action="application.submit").one()
        assert submitted.actor == console()
        assert json.loads(submitted.details)["applicant"] == "carol"
        opinion = s.query(AuditEvent).filter_by(action="application.opinion").one()
        assert opinion.actor == console() and json.loads(opinion.details)["member"] == "comm"
    shown = json.loads(hdh("show", "1").stdout)
    assert shown["state"] == "approved" and shown["permit"] == permit_id
    assert shown["submitted_by"] == console() and shown["applicant"] == "carol"
    assert shown["opinions"][0]["member"] == "comm"  # an administrator sees who
    assert shown["decision_reference"] == "CNIL DR-2027-042" and shown["actions"] == []
    listed = json.loads(hdh("list", "--json").stdout)
    assert [(a["id"], a["state"], a["permit"]) for a in listed] == [(1, "approved", permit_id)]
    assert hdh("list").stdout == (
        "#1\tdiabetes-2027\tnew\tapproved\tround 1\tcarol\tDiabète et insuffisance rénale"
        f"\tCNIL DR-2027-042\tpermit #{permit_id}\n"
    )
    assert hdh("list", "--state", "submitted").stdout == "no application\n"


def test_changes_requested_revised_then_withdrawn(desk) -> None:
    hub, hdh = desk, _hdh(desk)
    hdh(*NEW)
    r = hdh("opinion", "1", "--member", "comm", "--opinion", "changes_requested", "--text", "?")
    assert r.stdout.endswith("the application is changes requested\n")
    assert json.loads(hdh("show", "1").stdout)["actions"] == ["revise", "withdraw", "decide"]
    assert "\tchanges requested\tround 1\t" in hdh("list", "--project", "diabetes-2027").stdout
    r = hdh("revise", "1", "--no-members", "--days", "200", "--note", "Sans bob.")
    assert r.stdout == ("application #1 revised: round 2 submitted; the committee is notified\n")
    shown = json.loads(hdh("show", "1").stdout)
    assert (shown["round"], shown["members"], shown["duration_days"]) == (2, [], 200)
    assert shown["datasets"] == ["snds/v1"] and shown["title"].startswith("Diabète")  # kept
    assert shown["actions"] == ["withdraw"]  # no opinion on round 2 yet: no decision
    assert hdh("withdraw", "1").stdout == "application #1 withdrawn\n"
    assert json.loads(hdh("list", "--json", "--state", "withdrawn").stdout)[0]["id"] == 1
    with hub.sessions() as s:
        assert pj.access_problem(s, "carol", "diabetes-2027") == "no project 'diabetes-2027'"


def _refused(hdh: Any, hub: Any, args: list[str], reason: str) -> None:
    before = _state(hub)
    r = hdh(*args, ok=False)
    assert r.exit_code == 1, r.output
    assert r.stdout == "" and r.stderr == f"Error: {reason}\n"
    assert _state(hub) == before


def test_refusals_are_one_line_and_change_nothing(desk) -> None:
    hub, hdh = desk, _hdh(desk)
    dataset = NEW.index("snds/v1")
    unknown = [*NEW[:dataset], "nope", *NEW[dataset + 1 :]]
    _refused(hdh, hub, unknown, "no dataset 'nope' in the catalogue")
    _refused(
        hdh,
        hub,
        [*NEW, "--member", "zoe"],
        "the member 'zoe' has no account: create it first (hdh user add)",
    )
    hdh(*NEW)
    _refused(
        hdh,
        hub,
        ["decide", "1", "--decision", "favourable", "--reference", "R"],
        "application #1 has no opinion of the committee on round 1: a decision follows an opinion",
    )
    # an opinion from the applying team: a researcher of it, then a committee member on it
    _refused(
        hdh,
        hub,
        ["opinion", "1", "--member", "bob", "--opinion", "favourable", "--text", "ok"],
        "bob is not a committee member: only they give opinions",
    )
    with hub.transaction() as s:  # bob, listed on the application, now sits on the committee
        s.query(User).filter_by(name="bob").one().role = "committee"
    _refused(
        hdh,
        hub,
        ["opinion", "1", "--member", "bob", "--opinion", "favourable", "--text", "ok"],
        "bob belongs to the team of application #1: a conflict of interest",
    )
    for args in (
        ["show", "7"],
        ["withdraw", "7"],
        ["revise", "7", "--title", "T"],
        ["opinion", "7", "--member", "comm", "--opinion", "favourable", "--text", "ok"],
        ["decide", "7", "--decision", "unfavourable", "--reference", "R"],
    ):
        _refused(hdh, hub, args, "no application #7")


def test_the_choices_are_the_domains() -> None:
    assert cli_ap.KINDS == ap.KINDS and cli_ap.OPINIONS == ap.OPINIONS
    assert tuple(cli_ap.STATES) == (*ap.OPEN_STATES, *ap.ENDED_STATES)
    assert cli_ap.DECISIONS == ap.DECISIONS and cli_common.COMPUTE_PROFILES == pj.COMPUTE_PROFILES
