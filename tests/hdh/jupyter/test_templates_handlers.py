"""``/hdh/templates``: the template list and the copy into the workspace, on a real Jupyter
server (the sandbox's extension and confined contents manager, token authentication)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest

from hdh.templates import get, templates
from tests.hdh.jupyter.server import CONFINED, hdh_jupyter_server

TOKEN = "t0ken-for-the-test"


@dataclass
class Server:
    url: str
    root: Path

    def get(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        return httpx.get(f"{self.url}/{path}", headers=_auth(token), timeout=30)

    def post(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        return httpx.post(f"{self.url}/{path}", headers=_auth(token), timeout=30)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"token {token}"} if token else {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("templates-server")
    root = base / "workspace"
    root.mkdir()
    with hdh_jupyter_server(base, root, token=TOKEN, args=[CONFINED]) as url:
        yield Server(url, root)


def test_the_list_holds_every_template_with_its_parameters(server: Server) -> None:
    r = server.get("hdh/templates")
    assert r.status_code == 200, r.text
    listed = {t["name"]: t for t in r.json()["results"]}
    assert set(listed) == {t.name for t in templates()}
    mi = listed["mi-pathway"]
    assert mi["title"] == "Care pathway after myocardial infarction"
    assert "myocardial infarction" in mi["description"]
    params = {p["name"]: p for p in mi["parameters"]}
    assert params["dataset"] == {
        "name": "dataset",
        "type": "str",
        "default": '"demo-snds"',
        "help": "a dataset with the DCIR and PMSI MCO tables",
    }
    assert params["window_days"]["type"] == "int" and params["window_days"]["default"] == "90"
    assert "output_dir" not in params and "interactive" not in params  # set by the runner


def test_the_routes_need_authentication(server: Server) -> None:
    assert server.get("hdh/templates", token=None).status_code in (401, 403)
    assert server.post("hdh/templates/mi-pathway/copy", token=None).status_code in (401, 403)
    assert not (server.root / "templates").exists()


def test_a_copy_never_overwrites(server: Server) -> None:
    paths = []
    for _ in range(3):
        r = server.post("hdh/templates/mi-pathway/copy")
        assert r.status_code == 201, r.text
        paths.append(r.json()["path"])
    assert paths == [
        "templates/mi-pathway.ipynb",
        "templates/mi-pathway-1.ipynb",
        "templates/mi-pathway-2.ipynb",
    ]
    original = nbformat.read(get("mi-pathway").path, as_version=4)
    for path in paths:
        copy = nbformat.read(server.root / path, as_version=4)
        assert [c.source for c in copy.cells] == [c.source for c in original.cells]
        assert copy.metadata["hdh"]["template"] == original.metadata["hdh"]["template"]
    # the copy is a normal workspace file: the contents API sees it
    listing = server.get("api/contents/templates").json()
    assert {e["name"] for e in listing["content"]} >= {"mi-pathway.ipynb", "mi-pathway-1.ipynb"}
    other = server.post("hdh/templates/breast-screening/copy")
    assert other.status_code == 201 and other.json()["path"] == "templates/breast-screening.ipynb"


def test_an_unknown_template_is_a_404_with_a_reason(server: Server) -> None:
    for name in ("no-such-study", "..", "mi-pathway.ipynb"):
        r = server.post(f"hdh/templates/{name}/copy")
        assert r.status_code == 404, (name, r.text)
        if name != "..":  # ".." is normalised away by the client: another route's 404
            detail = r.json()["detail"]
            assert detail == f"no template {name!r}" and "\n" not in detail


def test_the_copy_goes_through_the_confined_contents_manager(
    server: Server, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    moved = server.root / "templates.moved"
    if (server.root / "templates").exists():
        (server.root / "templates").rename(moved)
    try:
        (server.root / "templates").symlink_to(outside)  # a link out of the workspace
        r = server.post("hdh/templates/mi-pathway/copy")
        assert r.status_code == 403, r.text
        assert list(outside.iterdir()) == []
        (server.root / "templates").unlink()
        (server.root / "templates").write_text("a file, not a folder")
        r = server.post("hdh/templates/mi-pathway/copy")
        assert r.status_code == 409 and "templates is a file" in json.loads(r.text)["detail"]
    finally:
        (server.root / "templates").unlink(missing_ok=True)
        if moved.exists():
            moved.rename(server.root / "templates")
