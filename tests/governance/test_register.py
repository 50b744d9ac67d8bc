"""The public register (issue 14, item 3): what it shows of projects, datasets, decisions and
releases, and what it never shows. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.egress import manager
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance import applications as ap
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance import register as rg
from jupyterlab_hdh.governance.accounts import create_user
from tests.egress import airlock as al


@pytest.fixture
def published(hub: Any) -> Any:
    """Project ``study`` with a permit and a released output (through the airlock), and
    project ``diabetes`` approved through the access desk; an application under review."""
    workspace = al.setup(hub)
    al.grant(hub)
    al.write(workspace, "table.csv")
    rid = al.draft(hub, ("table.csv", "output"))
    al.submit(hub, rid)
    al.vote_all(hub, rid)
    with hub.transaction() as s:
        manager.approve(s, rid, actor=al.RITA)
    assert rel.release(hub, rid, actor=al.ADMIN)
    with hub.transaction() as s:
        create_user(s, "adm", "admin", actor="test")
        draft = ap.Draft(
            kind="new",
            project="diabetes",
            title="Diabète et rein",
            purpose="Incidence de l'insuffisance rénale.",
            public_interest="Dépistage.",
            methodology="Cohorte.",
            datasets=("snds",),
            members=("bob",),
            duration_days=90,
        )
        app = ap.submit(s, draft, actor=al.ALICE)
        ap.give_opinion(s, app.id, "favourable", "Avis du 3 mai: rien à signaler.", actor=al.CORA)
        ap.decide(s, app.id, "favourable", reference="DR-2027-7", actor=pj.Actor("adm", "admin"))
        ap.submit(s, replace(draft, project="later", title="En cours"), actor=al.BOB)
    return hub


def test_the_register_shows_projects_datasets_decisions_and_releases(published) -> None:
    hub = published
    with hub.sessions() as s:
        reg = rg.snapshot(s, hub.data_dir)
    assert reg["format"] == "hdh-register/1"
    slugs = [p["slug"] for p in reg["projects"]]
    assert slugs == ["diabetes", "study"]  # "other" never had data: not in the register
    diabetes = rg.project_entry(reg, "diabetes")
    assert diabetes is not None
    assert diabetes["holder"] == ["alice"] and diabetes["status"] == "active"
    assert diabetes["datasets"] == ["snds/v1"]
    assert diabetes["decisions"][0]["reference"] == "DR-2027-7"
    assert diabetes["decisions"][0]["decision"] == "favourable"
    study = rg.project_entry(reg, "study")
    assert study is not None
    assert [o["title"] for o in study["released_outputs"]] == ["results"]
    assert [a["project"] for a in reg["under_review"]] == ["later"]
    snds = rg.dataset_entry(reg, "snds")
    assert snds is not None
    assert [p["slug"] for p in snds["projects"]] == ["diabetes", "study"]
    assert (snds["current_version"], snds["title"]) == ("v1", "snds")  # a record-less version
    # nothing private: no opinion's text or author, no file, no member but the holder
    text = rg.to_json(reg)
    for private in ("Avis du 3 mai", "cora", "table.csv", "mallory", "rita"):
        assert private not in text, private
    assert all("members" not in p for p in reg["projects"])


def test_a_revoked_permit_shows_as_revoked_with_its_date(published) -> None:
    hub = published
    with hub.transaction() as s:
        permit = pj.permits(s, pj.get_project(s, "study"))[-1]
        pj.revoke_permit(s, permit.id, reason="fin anticipée", actor=al.DAN)
    with hub.sessions() as s:
        study = rg.project_entry(rg.snapshot(s, hub.data_dir), "study")
    assert study is not None
    assert study["status"] == "revoked"
    assert study["permits"][-1]["revoked_at"] is not None
    assert "fin anticipée" not in json.dumps(study)  # the reason is the controller's


def test_the_register_publishes_the_latest_checkpoint_and_its_key(published) -> None:
    hub = published
    with hub.sessions() as s:
        assert rg.snapshot(s, hub.data_dir)["audit"] == {"checkpoint": None, "public_key": None}
    key, _ = cp.signing_key(hub.data_dir.keys, create=True)
    with hub.transaction() as s:
        cp.keep(hub.data_dir.root, cp.make_checkpoint(s, key, actor="test"))
    with hub.transaction() as s:
        newest = cp.make_checkpoint(s, key, actor="test")
        cp.keep(hub.data_dir.root, newest)
    with hub.sessions() as s:
        audit = rg.snapshot(s, hub.data_dir)["audit"]
    assert audit["checkpoint"] == newest
    public = cp.load_public_key(audit["public_key"].encode(), "register")
    cp.check_signature(audit["checkpoint"], public)  # anyone verifies it with the register's


def test_register_settings_are_checked(hub, tmp_path) -> None:
    (hub.data_dir.root / "register.toml").write_text(
        '[register]\npublisher = "CHU de Nulle-Part"\ncontact = "dpo@chu.example"\n'
    )
    assert rg.RegisterSettings.load(hub.data_dir).publisher == "CHU de Nulle-Part"
    (hub.data_dir.root / "register.toml").write_text('[register]\npublsher = "x"\n')
    with pytest.raises(rg.RegisterConfigError, match="unknown key \\[register\\] 'publsher'"):
        rg.RegisterSettings.load(hub.data_dir)
