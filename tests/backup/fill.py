"""An installation filled through HDH's own domain functions, for the backup tests.

Users of every role (an e-mail, a password, an API token, a disabled account), a dataset
version with a rich catalogue record, an opt-out, projects, a permit amended to add a member
(``covered_at``), a mount selection, an export request through review and release (files,
votes, an exception, comments, the outbox, notifications), a second request left in draft,
an application through the committee's opinion to the authority's decision (a second
project and permit), a linkage row and a signed audit checkpoint: every table has rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.data import optout
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.store.models import Dataset, DatasetVersion, Linkage, Permit
from tests.egress import airlock as al

#: a valid NIR-like identifier (the README's opt-out example)
NIR = "184037512345690"
RECORD = {
    "title": "Échantillon SNDS « démo »",
    "keywords": ["décès", "hôpital", None],
    "nested": {"rows": 12345, "ratio": 0.125, "flag": True, "empty": {}, "none": None},
}


def fill(hub: Any) -> dict[str, Any]:
    """Fill ``hub`` (an initialised installation); returns the signed checkpoint."""
    ws = al.setup(hub)
    with hub.transaction() as s:
        dataset = Dataset(name="snds")
        s.add(dataset)
        s.flush()
        s.add(
            DatasetVersion(
                dataset_id=dataset.id,
                number=1,
                status="current",
                created_by="test",
                source="/incoming/extract",
                source_sha256="a" * 64,
                content_sha256="b" * 64,
                key_fingerprint=hub.keys.fingerprint(),
                optout_seq=0,
                record=RECORD,
                manifest={"files": [{"name": "IR_BEN_R.parquet", "rows": 3, "sha256": "c" * 64}]},
                quality={"checks": [], "score": None},
            )
        )
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "study",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=al.DAN,
        )
    with hub.transaction() as s:
        permit = s.query(Permit).one()
        pj.amend_permit(s, permit.id, pj.Amendment(add_members=("bob",)), actor=al.DAN)
        pj.select_mounts(s, "study", "alice", ["snds/v1"], hub.data_dir, actor=al.ALICE)
        alice = accounts.get_user(s, "alice")
        accounts.set_email(s, "alice", "alice@example.org", actor="test")
        accounts.set_password(s, alice, "correct horse battery staple", actor="test")
        accounts.issue_token(s, alice, actor="test")
        accounts.issue_token(s, accounts.get_user(s, "rita"), actor="test")
        optout.add(s, hub.keys, NIR, actor="test")
        s.add(
            Linkage(
                permit_id=permit.id,
                name="cohort",
                input_sha256="d" * 64,
                rows=10,
                matched=9,
                key_fingerprint=hub.keys.fingerprint(),
                report={"exact": 9, "none": 1},
                created_by="alice",
            )
        )
    # the airlock: one request reviewed and released, one left in draft
    al.write(ws, "out/table1.csv")
    al.write(ws, "out/small.csv", "group,count\na,2\n")  # fails the threshold check
    al.write(ws, "code.py", "print('table 1')\n")
    rid = al.draft(
        hub, ("out/table1.csv", "output"), ("out/small.csv", "output"), ("code.py", "code")
    )
    with hub.transaction() as s:
        m.comment(s, rid, "Table 1 of the paper", actor=al.ALICE)
    al.submit(hub, rid)
    with hub.transaction() as s:
        m.comment(s, rid, "small cell, fine once merged", actor=al.RITA, visibility="private")
    al.vote_all(hub, rid, "approve")
    with hub.transaction() as s:
        m.approve(s, rid, actor=al.CORA)
    rel.release(hub, rid, actor=al.RITA)
    al.write(ws, "draft.csv")
    al.draft(hub, ("draft.csv", "output"))
    # the access desk: an application through to the permit it issues
    with hub.transaction() as s:
        app = ap.submit(
            s,
            ap.Draft(
                kind="new",
                project="diabetes-2027",
                title="Diabète et insuffisance rénale",
                purpose="Mesurer l'incidence de l'insuffisance rénale.",
                public_interest="Adapter le dépistage.",
                methodology="Cohorte rétrospective, SNDS.",
                datasets=("snds",),
                duration_days=365,
            ),
            actor=al.BOB,
        )
        app_id = app.id
    with hub.transaction() as s:
        ap.give_opinion(s, app_id, "favourable", "Méthode solide.", actor=al.CORA)
    with hub.transaction() as s:
        ap.decide(s, app_id, "favourable", reference="CNIL DR-2027-042", actor=al.ADMIN)
    with hub.transaction() as s:
        accounts.set_disabled(s, "mallory", True, actor="test")
    key, _ = cp.signing_key(hub.data_dir.keys, create=True)
    with hub.transaction() as s:
        checkpoint = cp.make_checkpoint(s, key, actor="test")
    cp.keep(hub.data_dir.root, checkpoint)
    return checkpoint
