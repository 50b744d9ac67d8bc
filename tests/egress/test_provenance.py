"""Provenance shown to reviewers: the code its project ran (as the guard audited it) before a
file was snapshotted, its notebooks, and the request's code files — nothing from later or from
another project."""

from __future__ import annotations

import hashlib
from typing import Any

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.egress import manager as m
from jupyterlab_hdh.egress import provenance as prov
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.guard.audit import KernelMessage, SaveBody, kernel_event, save_event
from jupyterlab_hdh.store.models import EgressRequest

from .airlock import ADMIN, ALICE, BOB, RITA, draft, setup, submit, write


def _run(hub: Any, project: str, code: str, user: str = "alice") -> None:
    """Record what the guard records for an executed cell."""
    msg = KernelMessage(
        channel="shell",
        header={"msg_type": "execute_request", "msg_id": code[:8], "session": "s"},
        content={"code": code},
    )
    event = kernel_event(msg, user=user, project=project, kernel_id="k1")
    assert event is not None
    with hub.transaction() as s:
        record(
            s, actor=event.actor, action=event.action, target=event.target, details=event.details
        )


def _save(hub: Any, project: str, path: str, content: bytes) -> None:
    event = save_event(
        SaveBody("notebook", "json", content, None),
        user="alice",
        project=project,
        path=path,
        body_sha256=hashlib.sha256(content).hexdigest(),
        body_size=len(content),
    )
    with hub.transaction() as s:
        record(
            s, actor=event.actor, action=event.action, target=event.target, details=event.details
        )


def test_the_code_run_before_the_snapshot_newest_first(hub) -> None:
    ws = setup(hub)
    _run(hub, "study", "import pandas as pd")
    _run(hub, "study", "df = pd.read_parquet('/data/snds/v1')")
    _run(hub, "other", "secret_other_project()", user="mallory")
    _save(hub, "study", "analysis.ipynb", b'{"cells": []}')
    _save(hub, "study", "analysis.ipynb", b'{"cells": [1]}')
    _save(hub, "study", "notes.txt", b"not a notebook")
    write(ws, "t.csv")
    write(ws, "make_table.py", "df.groupby('g').size()\n")
    rid = draft(hub, ("t.csv", "output"), ("make_table.py", "code"))
    _run(hub, "study", "after_the_snapshot()")
    submit(hub, rid)
    with hub.sessions() as s:
        req = s.get(EgressRequest, rid)
        assert req is not None
        items = prov.provenance(s, req, req.files[0])
    kinds = [i["kind"] for i in items]
    assert kinds[0] == "file" and items[0]["path"] == "t.csv"
    codes = [i["code"] for i in items if i["kind"] == "execution"]
    assert codes == ["df = pd.read_parquet('/data/snds/v1')", "import pandas as pd"]
    execution = next(i for i in items if i["kind"] == "execution")
    assert execution["user"] == "alice" and execution["kernel_id"] == "k1"
    assert execution["sha256"] == hashlib.sha256(codes[0].encode()).hexdigest()
    notebooks = [i for i in items if i["kind"] == "notebook"]
    assert [n["path"] for n in notebooks] == ["analysis.ipynb"]  # the newest save only
    assert notebooks[0]["sha256"] == hashlib.sha256(b'{"cells": [1]}').hexdigest()
    assert [i["path"] for i in items if i["kind"] == "code_file"] == ["make_table.py"]


def test_a_similar_project_name_does_not_leak_its_code(hub) -> None:
    ws = setup(hub)
    with hub.transaction() as s:
        pj.create_project(s, "study-2", title="t", purpose="p", actor=ADMIN)
    _run(hub, "study-2", "code_of_study_2()")
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    with hub.sessions() as s:
        req = s.get(EgressRequest, rid)
        assert req is not None
        assert [i["kind"] for i in prov.provenance(s, req, req.files[0])] == ["file"]


def test_executions_are_capped(hub) -> None:
    ws = setup(hub)
    for i in range(5):
        _run(hub, "study", f"step({i})")
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    with hub.sessions() as s:
        req = s.get(EgressRequest, rid)
        assert req is not None
        items = prov.provenance(s, req, req.files[0], max_executions=2)
    assert [i["code"] for i in items if i["kind"] == "execution"] == ["step(4)", "step(3)"]


def test_reviewers_see_provenance_in_the_request_view(hub) -> None:
    ws = setup(hub)
    _run(hub, "study", "make_the_table()")
    write(ws, "t.csv")
    rid = draft(hub, ("t.csv", "output"))
    submit(hub, rid)
    with hub.sessions() as s:
        for viewer in (RITA, ADMIN):
            files = m.get_request(s, rid, actor=viewer)["files"]
            codes = [i.get("code") for i in files[0]["provenance"]]
            assert "make_the_table()" in codes
        for member in (ALICE, BOB):
            assert "provenance" not in m.get_request(s, rid, actor=member)["files"][0]
