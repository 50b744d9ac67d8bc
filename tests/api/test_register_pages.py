"""The public register's pages and JSON, without login, in French and English, and its static
export (issue 14, items 3 and 6: ``hdh register export``). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.routes.register import CheckpointOut, RegisterOut
from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.cli import main
from tests.governance.test_register import published  # noqa: F401  (the fixture)


def test_anyone_reads_the_register_without_logging_in(published) -> None:  # noqa: F811
    hub = published
    with TestClient(create_app(hub.data_dir)) as client:
        page = client.get("/ui/register/")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        text = page.text
        assert "Public register of projects" in text
        assert "Diabète et rein" in text and "study" in text
        assert 'href="/ui/register/projects/diabetes"' in text
        assert "En cours" in text  # the new application under review
        project = client.get("/ui/register/projects/diabetes")
        assert project.status_code == 200
        assert "DR-2027-7" in project.text and "favourable" in project.text
        study = client.get("/ui/register/projects/study").text
        assert "results" in study  # the title of the released output
        dataset = client.get("/ui/register/datasets/snds").text
        assert "/ui/register/projects/diabetes" in dataset
        optout = client.get("/ui/register/opt-out")
        assert "Your right to object" in optout.text and "CNIL" in optout.text
        missing = client.get("/ui/register/projects/nowhere")
        assert missing.status_code == 404 and "No project nowhere" in missing.text
        as_json = client.get("/api/register").json()
        RegisterOut.model_validate(as_json)  # what the API's documentation says
        assert [p["slug"] for p in as_json["projects"]] == ["diabetes", "study"]
        # in French, by the browser's language
        fr = client.get("/ui/register/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert "Registre public des projets" in fr.text and 'lang="fr"' in fr.text
        assert (
            "Votre droit d’opposition"
            in client.get("/ui/register/opt-out", headers={"Accept-Language": "fr"}).text
        )


def test_the_register_publishes_the_audit_checkpoint_and_key(published) -> None:  # noqa: F811
    hub = published
    with TestClient(create_app(hub.data_dir)) as client:
        assert client.get("/ui/register/audit/checkpoint.json").status_code == 404
        assert "No audit checkpoint" in client.get("/ui/register/").text
        key, _ = cp.signing_key(hub.data_dir.keys, create=True)
        with hub.transaction() as s:
            cp.keep(hub.data_dir.root, cp.make_checkpoint(s, key, actor="test"))
        checkpoint = client.get("/ui/register/audit/checkpoint.json").json()
        CheckpointOut.model_validate(checkpoint)
        pem = client.get("/ui/register/audit/public-key.pem")
        assert pem.headers["content-type"].startswith("application/x-pem-file")
        cp.check_signature(checkpoint, cp.load_public_key(pem.content, "register"))
        assert "Latest signed checkpoint" in client.get("/ui/register/").text


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"#]+)"', html)


def test_hdh_register_export_writes_a_static_site(published, tmp_path: Path) -> None:  # noqa: F811
    hub = published
    out = tmp_path / "site"
    args: list[Any] = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        args += ["--store-url", hub.data_dir.store_url]
    result = CliRunner().invoke(main, [*args, "register", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    register = json.loads((out / "register.json").read_text())
    assert {p["slug"] for p in register["projects"]} == {"diabetes", "study"}
    for lang, title in (("fr", "Registre public des projets"), ("en", "Public register")):
        index = (out / lang / "index.html").read_text()
        assert title in index
        for page in (out / lang).glob("*.html"):
            for href in _links(page.read_text()):
                assert (page.parent / href).resolve().exists(), (page.name, href)
    assert (out / "fr" / "project-diabetes.html").exists()
    assert (out / "en" / "dataset-snds.html").exists()
    # exported again: replaced whole, nothing of the old copy left behind
    (out / "stale.txt").write_text("old")
    result = CliRunner().invoke(main, [*args, "register", "export", "--out", str(out)])
    assert result.exit_code == 0 and not (out / "stale.txt").exists()
    assert not list(tmp_path.glob(".site*"))
