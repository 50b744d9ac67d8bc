"""The airlock workflow end to end on both store backends: who may do what, blinding, the gate,
resubmission, notifications, audit, and the released file a member downloads."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as r
from jupyterlab_hdh.egress.errors import (
    GateBlocked,
    InvalidFile,
    LimitExceeded,
    NotAllowed,
    NotFound,
    WrongState,
)
from jupyterlab_hdh.egress.snapshot import Limits
from jupyterlab_hdh.store.models import AuditEvent

from .airlock import (
    ADMIN,
    ALICE,
    BOB,
    CORA,
    DAN,
    MALLORY,
    RAJ,
    RITA,
    draft,
    setup,
    state,
    submit,
    vote_all,
    write,
)

SMALL = "group,count\na,1\nb,2\n"  # counts under any threshold: the checks fail it


def _audit_count(hub) -> int:
    with hub.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _actions(hub, request_id: int) -> list[str]:
    with hub.sessions() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"egress:{request_id}")
                .order_by(AuditEvent.seq)
            )
        )


def _view(hub, request_id: int, actor):
    with hub.sessions() as s:
        return m.get_request(s, request_id, actor=actor, provenance=False)


def test_submit_review_approve_release_download(hub) -> None:
    ws = setup(hub)
    original = "group,count\na,12\nb,15\n"
    write(ws, "out/table.csv", original)
    write(ws, "analysis.py", "print('hi')\n")
    rid = draft(hub, ("out/table.csv", "output"), ("analysis.py", "code"))
    write(ws, "out/table.csv", "group,count\na,1\n")  # edited after it was added
    submit(hub, rid)
    assert state(hub, rid) == "submitted"
    with hub.sessions() as s:
        assert [n["kind"] for n in m.notifications(s, "rita")] == ["submitted"]
        assert m.notifications(s, "alice") == []  # the author is not a reviewer
    vote_all(hub, rid, "approve", RITA)
    assert state(hub, rid) == "partially_reviewed"
    vote_all(hub, rid, "approve", CORA)  # committee members review too
    assert state(hub, rid) == "reviewed"
    with hub.transaction() as s:
        m.approve(s, rid, actor=RAJ)  # any independent reviewer consolidates
    assert state(hub, rid) == "approved"
    assert r.release(hub, rid, actor=RITA) is True
    assert state(hub, rid) == "released"
    with hub.sessions() as s:
        files = r.released_files(s, rid, actor=BOB)
        assert [f["path"] for f in files] == ["out/table.csv"]  # outputs only, never code
        path = r.released_file(s, hub.data_dir, rid, files[0]["name"], actor=BOB)
        assert path.read_text() == original  # the snapshot, not the later edit
        assert files[0]["sha256"] == hashlib.sha256(original.encode()).hexdigest()
        assert path.parent == hub.data_dir.outbox / str(rid)
        assert not (path.parent / "tmp").exists()
        kinds = [n["kind"] for n in m.notifications(s, "alice")]
        assert kinds == ["released", "approved"]
        for outsider in (RITA, MALLORY, ADMIN):
            with pytest.raises(NotFound):
                r.released_file(s, hub.data_dir, rid, files[0]["name"], actor=outsider)
        with pytest.raises(NotFound):
            r.released_file(s, hub.data_dir, rid, "../../hdh.sqlite", actor=BOB)
        assert verify(s).ok
    actions = _actions(hub, rid)
    assert actions[:3] == ["egress.create", "egress.file.add", "egress.file.add"]
    for step in ("submitted", "partially_reviewed", "reviewed", "approved"):
        assert f"egress.{step}" in actions
    assert actions[-2:] == ["egress.releasing", "egress.released"]
    assert actions.count("egress.vote") == 2


def test_only_members_create_and_only_the_author_edits(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    for outsider in (MALLORY, RITA, DAN, ADMIN):
        with hub.transaction() as s, pytest.raises(NotAllowed):
            m.create_request(s, "study", title="x", actor=outsider)
    with hub.transaction() as s, pytest.raises(NotFound):
        m.create_request(s, "nope", title="x", actor=ALICE)
    rid = draft(hub)
    with hub.transaction() as s, pytest.raises(NotAllowed, match="author"):
        m.add_file(s, hub.data_dir, rid, "t.csv", role="output", actor=BOB)
    with hub.transaction() as s, pytest.raises(NotFound):  # another project's member
        m.add_file(s, hub.data_dir, rid, "t.csv", role="output", actor=MALLORY)
    with hub.sessions() as s:
        # drafts are the author's: reviewers do not see them
        with pytest.raises(NotFound):
            m.get_request(s, rid, actor=RITA)
        assert m.list_requests(s, actor=RITA) == []
        assert [x["id"] for x in m.list_requests(s, actor=BOB)] == [rid]
        assert m.list_requests(s, actor=MALLORY) == []


def test_members_and_the_author_can_never_review_their_own_request(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    before = _audit_count(hub)
    for insider in (ALICE, BOB):
        with hub.transaction() as s, pytest.raises(NotAllowed):
            m.vote(s, rid, "t.csv", "approve", actor=insider, exception_reason="mine")
        with hub.transaction() as s, pytest.raises(NotAllowed):
            m.comment(s, rid, "looks fine", actor=insider, visibility="private")
    # a reviewer account claimed by a member's name is judged by the store's record
    with hub.transaction() as s, pytest.raises(NotAllowed):
        m.vote(s, rid, "t.csv", "approve", actor=m.Actor("bob", "reviewer"))
    # an administrator operates the platform but does not judge outputs
    with hub.transaction() as s, pytest.raises(NotAllowed):
        m.vote(s, rid, "t.csv", "approve", actor=ADMIN)
    assert _audit_count(hub) == before
    assert state(hub, rid) == "submitted"


def test_votes_and_private_comments_are_blinded_until_both_voted(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    with hub.transaction() as s:
        m.vote(s, rid, "t.csv", "changes", actor=RITA)
        m.comment(s, rid, "row b is risky", actor=RITA, visibility="private", path="t.csv")
        m.comment(s, rid, "please add a total", actor=RITA, visibility="public")
    raj = _view(hub, rid, RAJ)["files"][0]
    assert raj["vote_count"] == 1 and raj["votes"] == []
    assert [c["body"] for c in _view(hub, rid, RAJ)["comments"]] == ["please add a total"]
    rita = _view(hub, rid, RITA)
    assert [v["reviewer"] for v in rita["files"][0]["votes"]] == ["rita"]
    assert len(rita["comments"]) == 2  # her own private comment
    member = _view(hub, rid, BOB)
    assert member["files"][0]["votes"] == []
    assert [c["body"] for c in member["comments"]] == ["please add a total"]
    with hub.transaction() as s:
        m.vote(s, rid, "t.csv", "changes", actor=RAJ)
    raj_after = _view(hub, rid, RAJ)
    assert sorted(v["reviewer"] for v in raj_after["files"][0]["votes"]) == ["raj", "rita"]
    assert len(raj_after["comments"]) == 2
    with hub.transaction() as s:
        m.return_request(s, rid, actor=RAJ, reason="add totals")
    member = _view(hub, rid, BOB)
    assert len(member["files"][0]["votes"]) == 2  # decided: the requester sees the votes
    assert "row b is risky" not in [c["body"] for c in member["comments"]]  # never private
    assert "add totals" in [c["body"] for c in member["comments"]]


def test_votes_are_final_and_two_per_file(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    write(ws, "notes.md", "how it was made")
    rid = draft(hub, ("t.csv", "output"), ("notes.md", "supporting"))
    submit(hub, rid)
    with hub.transaction() as s:
        m.vote(s, rid, "t.csv", "reject", actor=RITA)
    with hub.transaction() as s, pytest.raises(WrongState, match="final"):
        m.vote(s, rid, "t.csv", "changes", actor=RITA)
    with hub.transaction() as s, pytest.raises(InvalidFile, match="only output"):
        m.vote(s, rid, "notes.md", "reject", actor=RAJ)
    with hub.transaction() as s, pytest.raises(InvalidFile, match="unknown vote"):
        m.vote(s, rid, "t.csv", "yes", actor=RAJ)
    with hub.transaction() as s, pytest.raises(NotFound):
        m.vote(s, rid, "missing.csv", "reject", actor=RAJ)
    with hub.transaction() as s:
        m.vote(s, rid, "t.csv", "reject", actor=RAJ)
    with hub.transaction() as s, pytest.raises(WrongState):
        m.vote(s, rid, "t.csv", "reject", actor=CORA)  # reviewed: no third vote
    with hub.transaction() as s, pytest.raises(GateBlocked, match="approval"):
        m.approve(s, rid, actor=CORA)
    with hub.transaction() as s:
        m.reject(s, rid, actor=CORA, reason="identifiable")
    assert state(hub, rid) == "rejected"
    with hub.transaction() as s, pytest.raises(WrongState, match="final"):
        m.withdraw(s, rid, actor=ALICE)
    with hub.sessions() as s:
        assert [n["kind"] for n in m.notifications(s, "alice")] == ["rejected"]


def test_a_failing_file_needs_an_exception_with_a_reason_to_be_approved(hub) -> None:
    ws = setup(hub)
    write(ws, "small.csv", SMALL)
    rid = draft(hub, ("small.csv", "output"))
    submit(hub, rid)
    assert _view(hub, rid, RITA)["files"][0]["check_status"] == "fail"
    with hub.transaction() as s, pytest.raises(GateBlocked, match="exception"):
        m.vote(s, rid, "small.csv", "approve", actor=RITA)
    with hub.transaction() as s, pytest.raises(InvalidFile, match="reason"):
        m.record_exception(s, rid, "small.csv", "   ", actor=RITA)
    with hub.transaction() as s, pytest.raises(NotAllowed):
        m.record_exception(s, rid, "small.csv", "fine by me", actor=ALICE)
    with hub.transaction() as s:
        m.record_exception(s, rid, "small.csv", "the counts are of hospitals", actor=RITA)
        # a client that repeats the reason with the vote is not refused for it
        m.vote(s, rid, "small.csv", "approve", actor=RITA, exception_reason="hospitals")
        m.vote(s, rid, "small.csv", "approve", actor=RAJ, exception_reason="agreed: hospitals")
        m.approve(s, rid, actor=CORA)
    assert state(hub, rid) == "approved"
    view = _view(hub, rid, ADMIN)
    assert {e["reviewer"] for e in view["files"][0]["exceptions"]} == {"rita", "raj"}
    assert "egress.exception" in _actions(hub, rid)


def test_returned_then_resubmitted_keeps_approvals_of_unchanged_files(hub) -> None:
    ws = setup(hub)
    write(ws, "a.csv")
    write(ws, "b.csv", "group,count\nx,20\ny,30\n")
    rid = draft(hub, ("a.csv", "output"), ("b.csv", "output"))
    submit(hub, rid)
    with hub.transaction() as s:
        for reviewer in (RITA, RAJ):
            m.vote(s, rid, "a.csv", "approve", actor=reviewer, exception_reason="ok")
            m.vote(s, rid, "b.csv", "changes", actor=reviewer)
    with hub.transaction() as s, pytest.raises(WrongState):
        m.add_file(s, hub.data_dir, rid, "b.csv", role="output", actor=ALICE)  # under review
    with hub.transaction() as s:
        m.return_request(s, rid, actor=RITA, reason="fix b")
    assert state(hub, rid) == "returned"
    write(ws, "b.csv", "group,count\nx,25\ny,35\n")
    with hub.transaction() as s:
        m.add_file(s, hub.data_dir, rid, "b.csv", role="output", actor=ALICE)
    view = _view(hub, rid, ADMIN)
    assert [f["vote_count"] for f in view["files"]] == [2, 0]  # replacing b reset its votes
    submit(hub, rid)
    assert state(hub, rid) == "partially_reviewed"  # a.csv's approvals were kept
    with hub.transaction() as s:
        for reviewer in (RITA, RAJ):
            m.vote(s, rid, "b.csv", "approve", actor=reviewer, exception_reason="ok")
    assert state(hub, rid) == "reviewed"
    with hub.transaction() as s:
        m.approve(s, rid, actor=CORA)
    view = _view(hub, rid, ADMIN)
    assert view["round"] == 2
    for f in view["files"]:  # approval binds to the hashes of the files as they are now
        assert {v["sha256"] for v in f["votes"]} == {f["sha256"]}


def test_withdraw_and_the_transitions_it_closes(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    with hub.transaction() as s, pytest.raises(NotAllowed):
        m.withdraw(s, rid, actor=BOB)  # a member, not the author
    with hub.transaction() as s:
        m.withdraw(s, rid, actor=ALICE, reason="wrong table")
    with hub.transaction() as s, pytest.raises(WrongState):
        m.vote(s, rid, "t.csv", "approve", actor=RITA, exception_reason="x")
    with hub.transaction() as s, pytest.raises(WrongState):
        m.submit(s, hub.data_dir, rid, actor=ALICE)
    with hub.transaction() as s, pytest.raises(WrongState):
        r.release(hub, rid, actor=RITA)
    assert state(hub, rid) == "withdrawn"


def test_submitting_needs_an_output_and_a_draft_cannot_be_released(hub) -> None:
    ws = setup(hub)
    write(ws, "code.py", "x = 1\n")
    rid = draft(hub, ("code.py", "code"))
    with hub.transaction() as s, pytest.raises(InvalidFile, match="no output"):
        m.submit(s, hub.data_dir, rid, actor=ALICE)
    with pytest.raises(NotFound):  # a reviewer does not even see a draft
        r.release(hub, rid, actor=RITA)
    with pytest.raises(WrongState, match="draft cannot become releasing"):
        r.release(hub, rid, actor=ADMIN)
    assert state(hub, rid) == "draft"
    assert not (hub.data_dir.outbox / str(rid)).exists()


def test_bad_input_is_refused_with_nothing_changed(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    rid = draft(hub)
    before = _audit_count(hub)
    cases: list[tuple[type[Exception], dict[str, Any]]] = [
        (InvalidFile, dict(role="table")),
        (InvalidFile, dict(role="output", context={"population": 3})),
        (InvalidFile, dict(role="output", context={"secret": "x"})),
        (InvalidFile, dict(role="output", context={"degrees_of_freedom": -1})),
        (InvalidFile, dict(role="output", context=["population"])),
        (InvalidFile, dict(role="output", controls="x" * 20_000)),
    ]
    for error, kwargs in cases:
        with hub.transaction() as s, pytest.raises(error):
            m.add_file(s, hub.data_dir, rid, "t.csv", actor=ALICE, **kwargs)
    with hub.transaction() as s, pytest.raises(InvalidFile):
        m.add_file(s, hub.data_dir, rid, "../other/x.csv", role="output", actor=ALICE)
    with hub.transaction() as s, pytest.raises(NotFound):
        m.add_file(s, hub.data_dir, 9999, "t.csv", role="output", actor=ALICE)
    with hub.transaction() as s, pytest.raises(InvalidFile):
        m.create_request(s, "study", title=" ", actor=ALICE)
    for bad_id in (True, "1", None, -1):  # True would be request #1 to a naive lookup
        with hub.transaction() as s, pytest.raises(NotFound):
            m.get_request(s, bad_id, actor=ALICE)  # type: ignore[arg-type]
        with hub.transaction() as s, pytest.raises(NotFound):
            m.withdraw(s, bad_id, actor=ALICE)  # type: ignore[arg-type]
        with hub.transaction() as s, pytest.raises(NotFound):
            r.released_files(s, bad_id, actor=ALICE)  # type: ignore[arg-type]
    assert _audit_count(hub) == before
    assert _view(hub, rid, ALICE)["files"] == []
    with hub.transaction() as s:
        f = m.add_file(
            s,
            hub.data_dir,
            rid,
            "t.csv",
            role="output",
            actor=ALICE,
            context={"population": "adults 2020", "variables": ["age"], "degrees_of_freedom": 3},
            controls="cells under 10 suppressed",
        )
        assert f.context["variables"] == ["age"]


def test_count_and_size_limits_per_request(hub) -> None:
    ws = setup(hub)
    for i in range(3):
        write(ws, f"t{i}.csv", "x" * 60)
    rid = draft(hub)
    limits = Limits(max_file_bytes=100, max_request_bytes=150, max_files=2)
    with hub.transaction() as s:
        for i in range(2):
            m.add_file(s, hub.data_dir, rid, f"t{i}.csv", role="output", actor=ALICE, limits=limits)
    with hub.transaction() as s, pytest.raises(LimitExceeded, match="maximum of 2 files"):
        m.add_file(s, hub.data_dir, rid, "t2.csv", role="output", actor=ALICE, limits=limits)
    with hub.transaction() as s:  # replacing a file does not count as one more
        m.remove_file(s, rid, "t1.csv", actor=ALICE)
    write(ws, "t2.csv", "x" * 95)
    with hub.transaction() as s, pytest.raises(LimitExceeded, match="per request"):
        m.add_file(s, hub.data_dir, rid, "t2.csv", role="output", actor=ALICE, limits=limits)
    assert [f["path"] for f in _view(hub, rid, ALICE)["files"]] == ["t0.csv"]


def test_notifications_are_marked_read(hub) -> None:
    ws = setup(hub)
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    with hub.transaction() as s:
        notes = m.notifications(s, "raj", unread_only=True)
        assert len(notes) == 1 and notes[0]["request_id"] == rid
        assert m.mark_read(s, "rita", [notes[0]["id"]]) == 0  # not hers
        assert m.mark_read(s, "raj") == 1
    with hub.sessions() as s:
        assert m.notifications(s, "raj", unread_only=True) == []
        assert m.notifications(s, "raj")[0]["read_at"] is not None


def test_output_figures_lose_their_metadata_when_added(hub) -> None:
    import io
    import json as _json

    from PIL import Image, PngImagePlugin
    from sqlalchemy import select as _select

    from jupyterlab_hdh.egress.snapshot import blob_path
    from jupyterlab_hdh.store.models import AuditEvent as _Event
    from tests.egress.airlock import ALICE, setup

    ws = setup(hub)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient 184017512345658 at row 12")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG", pnginfo=info)
    (ws / "fig.png").write_bytes(buf.getvalue())
    (ws / "fig-support.png").write_bytes(buf.getvalue())
    with hub.transaction() as s:
        req = m.create_request(s, "study", title="figure", actor=ALICE)
        out = m.add_file(s, hub.data_dir, req.id, "fig.png", role="output", actor=ALICE)
        sup = m.add_file(s, hub.data_dir, req.id, "fig-support.png", role="supporting", actor=ALICE)
        out_sha, sup_sha = out.sha256, sup.sha256
    stored = blob_path(hub.data_dir.egress_blobs, out_sha).read_bytes()
    assert b"184017512345658" not in stored  # what reviewers see and what is released
    with Image.open(io.BytesIO(stored)) as img:
        assert img.size == (8, 8) and img.getpixel((0, 0)) == (200, 10, 10)
        assert "Comment" not in img.info
    assert b"184017512345658" in (ws / "fig.png").read_bytes()  # the workspace is untouched
    # a supporting figure is shown to reviewers as it is (never released)
    assert blob_path(hub.data_dir.egress_blobs, sup_sha).read_bytes() == buf.getvalue()
    with hub.sessions() as s:
        added = s.scalars(
            _select(_Event).where(_Event.action == "egress.file.add").order_by(_Event.seq)
        ).all()
    details = _json.loads(added[0].details)
    assert details["path"] == "fig.png" and details["metadata_stripped"]
    assert _json.loads(added[1].details)["metadata_stripped"] == []
