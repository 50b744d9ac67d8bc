"""The control-plane REST API: public read-only catalogue, everything else authenticated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.catalogue.dcat import validate_dcat
from jupyterlab_hdh.governance.accounts import create_user, issue_token


@pytest.fixture
def api(hub, raw_extract: Path):
    shutil.copytree(raw_extract, hub.data_dir.incoming / "extract-2024")
    tokens = {}
    with hub.transaction() as s:
        for name, role in (("adm", "admin"), ("ctl", "data_controller"), ("res", "researcher")):
            tokens[role] = issue_token(s, create_user(s, name, role, actor="test"), actor="test")
    with TestClient(create_app(hub.data_dir)) as client:
        yield client, tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ingest(client: TestClient, token: str, **body) -> object:
    return client.post(
        "/api/datasets/snds/versions", json={"source": "extract-2024", **body}, headers=_auth(token)
    )


def test_ingest_requires_a_data_controller(api) -> None:
    client, tokens = api
    assert _ingest(client, "").status_code == 401
    assert _ingest(client, "hdh_not-a-token").status_code == 401
    r = _ingest(client, tokens["researcher"])
    assert r.status_code == 403 and "data_controller" in r.json()["detail"]
    r = _ingest(client, tokens["data_controller"], title="SNDS 2019-2023")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == "v1" and body["individuals"] > 0 and body["quality"]["passed"] > 0


@pytest.mark.parametrize("source", ["../keys", "/etc", "extract-2024/../../keys", "missing"])
def test_ingest_source_must_stay_inside_incoming(api, source: str) -> None:
    client, tokens = api
    r = _ingest(client, tokens["data_controller"], source=source)
    assert r.status_code == 422
    assert "Traceback" not in r.text
    assert client.get("/api/catalogue/datasets").json() == []


def test_catalogue_is_public_and_read_only(api) -> None:
    client, tokens = api
    assert _ingest(client, tokens["data_controller"]).status_code == 201
    listing = client.get("/api/catalogue/datasets")
    assert listing.status_code == 200 and [d["name"] for d in listing.json()] == ["snds"]
    detail = client.get("/api/catalogue/datasets/snds").json()
    assert detail["versions"][0]["version"] == "v1"
    assert {t["name"] for t in detail["tables"]} >= {"IR_BEN_R", "ER_PRS_F"}
    dictionary = client.get("/api/catalogue/datasets/snds/versions/v1/tables/ER_PRS_F?format=csv")
    assert dictionary.status_code == 200 and "BEN_NIR_PSA" in dictionary.text
    quality = client.get("/api/catalogue/datasets/snds/versions/v1/quality").json()
    assert quality["checks"]
    hits = client.get("/api/catalogue/search", params={"q": "deces"}).json()
    assert any(h["table"] == "KI_CCI_R" or "décès" in h["snippet"].lower() for h in hits)
    dcat = client.get("/api/catalogue/dcat.jsonld")
    assert dcat.headers["content-type"].startswith("application/ld+json")
    conforms, report = validate_dcat(dcat.json())
    assert conforms, report
    for method in ("post", "put", "delete"):
        assert getattr(client, method)("/api/catalogue/datasets/snds").status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/api/catalogue/datasets/nope",
        "/api/catalogue/datasets/snds/versions/v9",
        "/api/catalogue/datasets/snds/versions/latest",
        "/api/catalogue/datasets/snds/versions/v1/tables/NOPE",
    ],
)
def test_unknown_catalogue_entries_are_404(api, path: str) -> None:
    client, tokens = api
    _ingest(client, tokens["data_controller"])
    r = client.get(path)
    assert r.status_code == 404 and r.json()["detail"]


def test_search_rejects_bad_queries(api) -> None:
    client, _ = api
    assert client.get("/api/catalogue/search", params={"q": ""}).status_code == 422
    assert client.get("/api/catalogue/search", params={"q": "x" * 201}).status_code == 422


def test_optout_and_reapply_over_the_api(api, raw_extract: Path) -> None:
    import pyarrow.parquet as pq

    client, tokens = api
    _ingest(client, tokens["data_controller"])
    nir = pq.read_table(raw_extract / "IR_BEN_R.parquet")["BEN_IDT_ANO"][0].as_py()
    assert client.post("/api/optout", json={"identifier": nir}).status_code == 401
    r = client.post(
        "/api/optout", json={"identifier": nir}, headers=_auth(tokens["data_controller"])
    )
    assert r.status_code == 201 and r.json() == {"register_id": 1, "added": True}
    bad = client.post(
        "/api/optout", json={"identifier": "12"}, headers=_auth(tokens["data_controller"])
    )
    assert bad.status_code == 422
    r = client.post("/api/optout/reapply", headers=_auth(tokens["data_controller"]))
    assert r.status_code == 200 and "v2" in r.json()["outcomes"]["snds"]
    assert client.get("/api/catalogue/datasets/snds").json()["version"] == "v2"


def test_audit_is_for_administrators(api) -> None:
    client, tokens = api
    _ingest(client, tokens["data_controller"])
    assert client.get("/api/audit/verify").status_code == 401
    assert (
        client.get("/api/audit/verify", headers=_auth(tokens["data_controller"])).status_code == 403
    )
    r = client.get("/api/audit/verify", headers=_auth(tokens["admin"]))
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["checked"] >= 5
    events = client.get("/api/audit/events", headers=_auth(tokens["admin"])).json()
    assert "dataset.ingest" in [e["action"] for e in events]


def test_openapi_spec_is_published(api) -> None:
    client, _ = api
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert (
        "/api/catalogue/search" in spec["paths"]
        and "/api/datasets/{name}/versions" in spec["paths"]
    )
