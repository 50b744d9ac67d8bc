"""``/hdh/catalogue/...``: the catalogue browser's routes on a real Jupyter server (the
sandbox's extension, token authentication) in front of a fake API bridge (a real HTTP server
on a Unix socket): search with filters, a dataset's page with the member's access, a table's
data dictionary; every control-plane call goes through the bridge and is read-only."""

from __future__ import annotations

import json
import os
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from hdh.errors import BadArgument
from hdh.jupyter.handlers import (
    catalogue_facets,
    catalogue_filters,
    dataset_matches,
    local_access,
)
from tests.hdh.jupyter.server import hdh_jupyter_server

TOKEN = "t0ken-for-the-catalogue"


def _dataset(name: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": "v1",
        "title": f"Title of {name}",
        "description": f"About {name}",
        "theme": ["HEAL"],
        "coding_systems": ["CIM-10"],
        "access_rights": "restricted",
        "synthetic": False,
        "temporal_start": "2019-01-01",
        "temporal_end": "2021-12-31",
        "records": 10,
        "individuals": 5,
        **kw,
    }


SNDS = _dataset("demo-snds", synthetic=True, coding_systems=["CIM-10", "CCAM"])
REGISTRY = _dataset(
    "cancer-registry",
    theme=["HEAL", "SOCI"],
    access_rights="non-public",
    temporal_start="2010-01-01",
    temporal_end="2012-12-31",
)

TABLE = {
    "name": "ER_PRS_F",
    "title": "Prestations",
    "rows": 3,
    "columns": [{"name": "BEN_NIR_PSA"}],
}
ANSWERS: dict[str, Any] = {
    "/api/catalogue/datasets": [SNDS, REGISTRY],
    "/api/catalogue/search": [
        {
            "kind": "table",
            "dataset": "demo-snds",
            "version": "v1",
            "table": "ER_PRS_F",
            "variable": None,
            "score": 1.0,
            "snippet": "prestations",
            "field": "title",
        },
        {
            "kind": "dataset",
            "dataset": "cancer-registry",
            "version": "v1",
            "table": None,
            "variable": None,
            "score": 0.5,
            "snippet": "prestations",
            "field": "description",
        },
    ],
    "/api/catalogue/datasets/demo-snds": {**SNDS, "tables": [TABLE], "versions": []},
    "/api/catalogue/datasets/demo-snds/versions/v1/quality": {"summary": {"passed": 4}},
    "/api/catalogue/datasets/cancer-registry": {**REGISTRY, "tables": [], "versions": []},
    "/api/bridge/access/demo-snds": {
        "dataset": "demo-snds",
        "project": "demo",
        "state": "mounted",
        "mounted": ["v1"],
        "permitted": ["v1"],
        "leads": [{"name": "alice", "email": None}],
        "how": "mounted",
    },
    "/api/bridge/access/cancer-registry": {
        "dataset": "cancer-registry",
        "project": "demo",
        "state": "not_permitted",
        "mounted": [],
        "permitted": [],
        "leads": [{"name": "alice", "email": None}],
        "how": "Ask the project lead (alice) to request access.",
    },
    "/api/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F": TABLE,
}


@dataclass
class Server:
    url: str
    data: Path
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def get(self, path: str, token: str | None = TOKEN, **params: str) -> httpx.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.get(f"{self.url}/{path}", headers=headers, params=params, timeout=30)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("catalogue-server")
    (base / "workspace").mkdir()
    data = base / "data"
    (data / "demo-snds" / "v1").mkdir(parents=True)  # what this sandbox mounts
    calls: list[tuple[str, str, dict[str, str]]] = []

    class Bridge(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlsplit(self.path)
            calls.append((self.command, url.path, dict(parse_qsl(url.query))))
            found = self.command == "GET" and url.path in ANSWERS
            body = json.dumps(ANSWERS[url.path] if found else {"detail": "no such thing"})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST = _answer  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    folder = tempfile.mkdtemp(prefix="hdhc", dir="/tmp")  # AF_UNIX paths are short
    sock = os.path.join(folder, "api.sock")
    bridge = _UnixHTTPServer(sock, Bridge)
    threading.Thread(target=bridge.serve_forever, daemon=True).start()
    env = {
        "HDH_BRIDGE_SOCKET": sock,
        "HDH_DATA_ROOT": str(data),
        "HDH_USER": "alice",
        "HDH_PROJECT": "demo",
    }
    try:
        with hdh_jupyter_server(base, base / "workspace", token=TOKEN, env=env) as url:
            yield Server(url, data, calls)
    finally:
        bridge.shutdown()
        bridge.server_close()


def test_search_without_words_lists_the_datasets_with_the_facets(server: Server) -> None:
    r = server.get("hdh/catalogue/search")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [h["dataset"] for h in body["results"]] == ["demo-snds", "cancer-registry"]
    assert body["results"][0]["title"] == "Title of demo-snds"
    assert body["facets"] == {
        "theme": ["HEAL", "SOCI"],
        "coding_system": ["CCAM", "CIM-10"],
        "access_rights": ["non-public", "restricted"],
        "synthetic": [False, True],
        "years": [2010, 2021],
    }


def test_search_with_words_and_filters(server: Server) -> None:
    server.calls.clear()
    r = server.get("hdh/catalogue/search", q="prestations", synthetic="yes")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(h["dataset"], h["table"]) for h in body["results"]] == [("demo-snds", "ER_PRS_F")]
    assert body["filters"] == {"synthetic": True}
    assert [d["name"] for d in body["datasets"]] == ["demo-snds"]
    search = [c for c in server.calls if c[1] == "/api/catalogue/search"]
    assert search == [("GET", "/api/catalogue/search", {"q": "prestations", "limit": "100"})]
    assert all(method == "GET" for method, _, _ in server.calls)
    # time coverage: 2011 only overlaps the registry
    r = server.get("hdh/catalogue/search", q="prestations", **{"from": "2011", "to": "2011"})
    assert [h["dataset"] for h in r.json()["results"]] == ["cancer-registry"]
    r = server.get("hdh/catalogue/search", theme="SOCI", access_rights="non-public")
    assert [h["dataset"] for h in r.json()["results"]] == ["cancer-registry"]
    r = server.get("hdh/catalogue/search", coding_system="CCAM")
    assert [h["dataset"] for h in r.json()["results"]] == ["demo-snds"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"access_rights": "open"}, "access_rights is one of"),
        ({"synthetic": "maybe"}, "synthetic is yes or no"),
        ({"from": "20x1"}, "from is a year"),
        ({"from": "2022", "to": "2020"}, "from is after to"),
    ],
)
def test_bad_filters_are_a_readable_400(server: Server, args: dict[str, str], reason: str) -> None:
    r = server.get("hdh/catalogue/search", **args)
    assert r.status_code == 400 and reason in r.json()["detail"], r.text


def test_a_mounted_dataset_page(server: Server) -> None:
    r = server.get("hdh/catalogue/datasets/demo-snds")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dataset"]["tables"] == [
        {"name": "ER_PRS_F", "title": "Prestations", "rows": 3, "column_count": 1}
    ]
    assert body["quality"] == {"summary": {"passed": 4}}
    assert body["access"]["state"] == "mounted" and body["access"]["mounted"] == ["v1"]
    assert body["change_url"] == "/services/hdh/ui/projects/demo/datasets"


def test_a_dataset_not_permitted_says_how_to_obtain_access(server: Server) -> None:
    r = server.get("hdh/catalogue/datasets/cancer-registry")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["quality"] is None and "quality_error" not in body  # no report: 404 upstream
    access = body["access"]
    assert access["state"] == "not_permitted" and access["mounted"] == []
    assert "request access" in access["how"] and access["leads"][0]["name"] == "alice"


def test_an_unknown_dataset_is_the_control_planes_404(server: Server) -> None:
    r = server.get("hdh/catalogue/datasets/nothing-here")
    assert r.status_code == 404 and r.json()["detail"] == "no such thing"


def test_a_tables_dictionary(server: Server) -> None:
    r = server.get("hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F")
    assert r.status_code == 200, r.text
    assert r.json() == TABLE


@pytest.mark.parametrize(
    "path",
    [
        "hdh/catalogue/datasets/Demo",
        "hdh/catalogue/datasets/demo-snds/versions/v1/tables/1X",
        "hdh/catalogue/datasets/demo-snds/versions/v1/quality",
        "hdh/catalogue/datasets/demo-snds/access",
    ],
)
def test_other_paths_are_not_routes(server: Server, path: str) -> None:
    server.calls.clear()
    assert server.get(path).status_code == 404
    assert server.calls == []  # nothing reached the bridge


def test_the_routes_need_authentication(server: Server) -> None:
    for path in (
        "hdh/catalogue/search",
        "hdh/catalogue/datasets/demo-snds",
        "hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F",
    ):
        assert server.get(path, token=None).status_code in (401, 403), path
        assert server.get(path, token="wrong").status_code in (401, 403), path


def test_the_filter_functions() -> None:
    assert catalogue_filters({"theme": " HEAL ", "to": "2020"}) == {"theme": "HEAL", "to": 2020}
    with pytest.raises(BadArgument):
        catalogue_filters({"to": "99"})
    undated = _dataset("x", temporal_start=None, temporal_end=None)
    assert dataset_matches(undated, {}) and not dataset_matches(undated, {"from": 2000})
    open_ended = _dataset("y", temporal_end=None)
    assert dataset_matches(open_ended, {"from": 2019, "to": 2019})
    assert catalogue_facets([])["years"] is None


def test_the_access_badge_trusts_the_sandboxs_own_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/data`` says what is mounted; the control plane says what the permit grants."""
    monkeypatch.setenv("HDH_DATA_ROOT", str(tmp_path))
    (tmp_path / "snds" / "v2").mkdir(parents=True)
    chosen = {"state": "mounted", "mounted": ["v3"], "permitted": ["v2", "v3"], "how": "x"}
    # chosen on the control plane, not mounted here yet (the sandbox has not restarted)
    other = local_access("other", {**chosen, "dataset": "other"})
    assert other["state"] == "permitted" and other["mounted"] == []
    assert "restart the sandbox" in other["how"]
    assert other["restart"] is True  # the widget words it in the user's language
    # mounted here: mounted, whatever the control plane thought
    here = local_access("snds", {"state": "permitted", "permitted": ["v2"], "how": "y"})
    assert here["state"] == "mounted" and here["mounted"] == ["v2"]
    assert "/data/snds/" in here["how"]
    assert "restart" not in here
    # no answer from the control plane: only what is mounted is known
    assert local_access("snds", None)["state"] == "mounted"
    assert local_access("other", None)["state"] == "unknown"
