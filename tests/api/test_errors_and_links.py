"""What a new user trips on in the control-plane API: the JupyterHub ``token`` scheme, error
bodies of one shape (validation errors included), DCAT links that resolve, the Swagger page
behind the hub's service prefix, the default ports, and the sandbox's own paths in ``whoami``."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from jupyterhub.services.auth import HubOAuth

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.api.browser import HubBrowserAuth
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user, issue_token
from tests.governance.fakes import fake_version

BASE = "http://testserver"
BRIDGE = "b" * 64


@pytest.fixture
def api(hub: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = {}
    with hub.transaction() as s:
        for name, role in (("adm", "admin"), ("res", "researcher")):
            tokens[role] = issue_token(s, create_user(s, name, role, actor="test"), actor="test")
    with TestClient(create_app(hub.data_dir, base_url=BASE)) as client:
        yield client, tokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _one_shape(r: Any) -> dict[str, Any]:
    """Every error body: ``{"detail": "one line", ["reason": str], ["errors": [...]]}``."""
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    assert "\n" not in body["detail"] and len(body["detail"]) <= 500, body
    assert set(body) <= {"detail", "reason", "errors"}, body
    assert isinstance(body.get("reason", ""), str), body
    return dict(body)


# --- item 7: the token scheme, and one shape of error -------------------------------------------


def test_the_jupyterhub_token_scheme_is_told_to_use_bearer(api: Any) -> None:
    client, tokens = api
    r = client.get("/api/audit/events", headers={"Authorization": f"token {tokens['admin']}"})
    assert r.status_code == 401
    detail = _one_shape(r)["detail"]
    assert "Authorization: Bearer" in detail and "token" in detail
    assert detail != "authentication required"
    # no header at all: says what to send too
    r = client.get("/api/audit/events")
    assert r.status_code == 401 and "Authorization: Bearer" in _one_shape(r)["detail"]
    r = client.get("/api/audit/events", headers={"Authorization": "Bearer "})
    assert r.status_code == 401 and "token is missing" in _one_shape(r)["detail"]
    # the same token with the right scheme works
    assert client.get("/api/audit/events", headers=_bearer(tokens["admin"])).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/audit/events", {"headers": {"Authorization": "Basic eDp5"}}, 401),
        ("get", "/api/audit/events", {"headers": _bearer("hdh_not-a-token")}, 401),
        ("get", "/api/no-such-route", {}, 404),
        ("get", "/api/catalogue/datasets/nope", {}, 404),
        ("delete", "/api/catalogue/datasets", {}, 405),
        ("get", "/api/catalogue/search", {}, 422),  # q missing
        ("get", "/api/catalogue/search", {"params": {"q": "x", "limit": "many"}}, 422),
        ("get", "/api/projects/x/access", {"headers": {"X-HDH-Bridge": "x"}}, 401),
    ],
)
def test_every_error_body_has_one_shape(
    api: Any, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    client, _tokens = api
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    _one_shape(r)


def test_validation_errors_keep_their_details_under_errors(api: Any) -> None:
    client, tokens = api
    r = client.post(
        "/api/projects", json={"slug": "p", "title": 3}, headers=_bearer(tokens["admin"])
    )
    assert r.status_code == 422
    body = _one_shape(r)
    assert body["detail"].startswith("title: ") or body["detail"].startswith("purpose: "), body
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "title"), ("body", "purpose")} <= locs, body
    assert all({"loc", "msg", "type"} <= set(e) for e in body["errors"])
    r = client.post("/api/projects", content=b"{not json", headers={**_bearer(tokens["admin"])})
    assert r.status_code == 422
    _one_shape(r)


def test_refusals_with_a_reason_keep_the_shape(hub: Any) -> None:
    fake_version(hub)
    with hub.transaction() as s:
        create_user(s, "bob", "researcher", actor="test")
        pj.create_project(s, "cohort", title="C", purpose="P", actor=pj.Actor("a", "admin"))
    with TestClient(create_app(hub.data_dir, bridge_token=BRIDGE)) as client:
        r = client.get(
            "/api/bridge/whoami",
            headers={"X-HDH-Bridge": BRIDGE, "X-HDH-User": "bob", "X-HDH-Project": "cohort"},
        )
    assert r.status_code == 403
    assert _one_shape(r)["reason"] == "not_a_member", r.json()


# --- item 13: DCAT links, Swagger behind the prefix, default ports --------------------------------


def _urls(node: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "@context":
                continue
            if k in keys:
                yield v["@id"] if isinstance(v, dict) else v
            else:
                yield from _urls(v, keys)
    elif isinstance(node, list):
        for v in node:
            yield from _urls(v, keys)


def test_every_dcat_access_and_download_url_resolves(
    hub: Any, raw_extract: Path, store_url: str
) -> None:
    from jupyterlab_hdh.ingestion import ingest

    shutil.copytree(raw_extract, hub.data_dir.incoming / "x")
    ingest(hub, hub.data_dir.incoming / "x", "demo-snds", actor="test")
    # `hdh catalogue export-dcat` (default --base-url: the control plane `hdh up` runs)
    exported = CliRunner().invoke(
        main,
        ["--data-dir", str(hub.data_dir.root), "--store-url", store_url]
        + ["catalogue", "export-dcat"],
    )
    assert exported.exit_code == 0, exported.output
    default_urls = list(_urls(json.loads(exported.stdout), ("dcat:accessURL",)))
    assert default_urls and all(u.startswith("http://127.0.0.1:8001/") for u in default_urls)
    with TestClient(create_app(hub.data_dir, base_url=BASE)) as client:
        doc = client.get("/api/catalogue/dcat.jsonld").json()
        assert {urlsplit(u).path for u in default_urls} == {
            urlsplit(u).path for u in _urls(doc, ("dcat:accessURL",))
        }
        access = list(_urls(doc, ("dcat:accessURL", "dcat:downloadURL")))
        pages = list(_urls(doc, ("dcat:landingPage", "foaf:homepage")))
        assert any(u.endswith("/demo-snds/v1/tables/ER_CAM_F") for u in access), access
        assert len(access) >= 20
        for url in access + pages:
            assert url.startswith(BASE + "/"), url
            r = client.get(urlsplit(url).path, follow_redirects=False)
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
        table = client.get(urlsplit(access[0]).path).json()
        assert table["name"] and table["columns"], table


def test_swagger_under_the_service_prefix_loads_its_openapi_directly(hub: Any) -> None:
    prefix = "/services/hdh/"
    auth = HubBrowserAuth(prefix, "hdh", HubOAuth(api_token="t", base_url=prefix))
    with TestClient(create_app(hub.data_dir, browser_auth=auth)) as client:
        page = client.get(f"{prefix}api/docs")
        assert page.status_code == 200
        found = re.search(r"url: '([^']+)'", page.text)
        assert found and found[1] == f"{prefix}api/openapi.json", page.text
        spec = client.get(found[1], follow_redirects=False)
        assert spec.status_code == 200 and spec.json()["openapi"], spec.text[:200]
        # its scripts and styles come from the control plane itself, never from a CDN
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith(f"{prefix}api/docs-static/") for a in assets), assets
        for asset in assets:
            got = client.get(asset)
            assert got.status_code == 200 and len(got.content) > 100, asset
        assert "cdn." not in page.text and "//" not in "".join(a[1:] for a in assets)
        # and straight on the API's port, without the prefix
        page = client.get("/api/docs")
        assert re.search(r"url: '([^']+)'", page.text)[1] == "/api/openapi.json"  # type: ignore[index]
        assert client.get("/api/openapi.json").status_code == 200


def test_serve_and_export_dcat_default_to_the_port_hdh_up_gives_the_api() -> None:
    def help_of(*command: str) -> str:
        return " ".join(CliRunner().invoke(main, [*command, "--help"]).output.split())

    up = help_of("up")
    assert "[default: PORT+1]" in up and re.search(r"--port INTEGER RANGE \[default: 8000", up)
    serve = help_of("serve")
    assert re.search(r"--port INTEGER RANGE [^[]*\[default: 8001", serve), serve
    export = help_of("catalogue", "export-dcat")
    assert "http://127.0.0.1:8001" in export and ":8000" not in export, export


# --- item 14: whoami shows the sandbox's paths ---------------------------------------------------


def test_bridged_whoami_shows_the_paths_inside_the_sandbox(hub: Any) -> None:
    fake_version(hub)
    admin = pj.Actor("a", "admin")
    with hub.transaction() as s:
        create_user(s, "alice", "researcher", actor="test")
        pj.create_project(s, "cohort", title="C", purpose="P", actor=admin)
        pj.add_member(s, "cohort", "alice", role="lead", actor=admin)
        pj.grant_permit(
            s,
            "cohort",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=3),
            actor=admin,
        )
    with TestClient(create_app(hub.data_dir, bridge_token=BRIDGE)) as client:
        r = client.get(
            "/api/bridge/whoami",
            headers={"X-HDH-Bridge": BRIDGE, "X-HDH-User": "alice", "X-HDH-Project": "cohort"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["path"] for m in body["mounts"]] == ["/data/snds/v1"]
    assert [(p["path"], p["mounted"]) for p in body["permitted"]] == [("/data/snds/v1", True)]
    assert str(hub.data_dir.root) not in r.text


def test_an_unexpected_failure_is_a_500_in_the_same_shape(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyterlab_hdh.catalogue import manager

    def broken(_s: Any) -> list[Any]:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(manager, "records", broken)
    app = create_app(hub.data_dir)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/catalogue/datasets")
    assert r.status_code == 500
    detail = _one_shape(r)["detail"]
    assert "disk on fire" not in detail and "log" in detail  # no internals, where to look
