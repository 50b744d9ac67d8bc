"""Insider attacks on the guard's routes (issue 8): what the sandbox writes is never served raw.

A real ``jupyter server`` (with JupyterLab) behind the real guard. The server's
config folder is the folder the tests write into, as a kernel could in a
sandbox whose Jupyter folders were writable: a binary file under a notebook
name, raw user settings and workspaces over their caps, kernelspec files that
are not the kernel's logo, and answers whose media type is not the route's.
``tests/sandbox/test_jupyter_paths_attack.py`` does the same from a real
sandbox's kernel.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyterlab_server.workspaces_handler import slugify

from .conftest import BASE, GuardServer, Upstream

#: Bytes no text decoder accepts and that show up in base64 if ever served.
BLOB = b"PAR1\x00\xff\xfe" + os.urandom(4096) + b"hdh-secret-table-bytes"


def _leaks(body: bytes, payload: bytes) -> bool:
    marker = payload[-22:]
    return marker in body or base64.b64encode(payload)[-40:] in body


@pytest.fixture
def planted(upstream: Upstream) -> Iterator[list[Path]]:
    """Files a test writes into the upstream's folders, removed afterwards."""
    made: list[Path] = []
    yield made
    for p in made:
        p.unlink(missing_ok=True)


def config_dir(upstream: Upstream) -> Path:
    # tests/guard/conftest.py: JUPYTER_CONFIG_DIR is the folder of the socket
    return Path(upstream.sock).parent


@pytest.mark.parametrize("name", ["x.ipynb", "sub/data.ipynb", "x.csv", "x"])
def test_binary_file_is_refused_whatever_its_name(
    guard: GuardServer, upstream: Upstream, planted: list[Path], name: str
) -> None:
    target = upstream.root / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(BLOB)
    planted.append(target)
    with guard.client() as c:
        for query in ("content=1&type=file", "type=file&content=1", "content=1"):
            r = c.get(BASE + "api/contents/" + name + "?" + query)
            assert r.status_code in (400, 403), (query, r.status_code, r.text[:200])
            assert not _leaks(r.content, BLOB), query
        r = c.get(BASE + "api/contents/" + name + "?content=1&type=file")
        assert r.status_code == 403 and "binary" in r.json()["message"]
        # the file's model without content is still listed
        meta = c.get(BASE + "api/contents/" + name + "?content=0")
        assert meta.status_code == 200 and meta.json()["content"] is None


def test_text_notebook_and_text_file_still_served(
    guard: GuardServer, upstream: Upstream, planted: list[Path]
) -> None:
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (upstream.root / "ok.ipynb").write_text(json.dumps(nb))
    (upstream.root / "ok.txt").write_text("plain text")
    planted += [upstream.root / "ok.ipynb", upstream.root / "ok.txt"]
    with guard.client() as c:
        r = c.get(BASE + "api/contents/ok.ipynb?content=1")
        assert r.status_code == 200 and r.json()["format"] == "json"
        r = c.get(BASE + "api/contents/ok.ipynb?content=1&type=file")
        assert r.status_code == 200 and r.json()["format"] == "text"
        r = c.get(BASE + "api/contents/ok.txt?content=1")
        assert r.status_code == 200 and r.json()["content"] == "plain text"


def _settings_file(upstream: Upstream) -> Path:
    d = config_dir(upstream) / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    d.mkdir(parents=True, exist_ok=True)
    return d / "themes.jupyterlab-settings"


def test_raw_settings_over_the_cap_are_not_served(
    guard: GuardServer, upstream: Upstream, planted: list[Path]
) -> None:
    # JSON5 comments are kept verbatim in the answer's "raw": a carrier for any bytes
    payload = base64.b64encode(os.urandom(1024 * 1024 + 4096))
    path = _settings_file(upstream)
    path.write_bytes(b"{\n// " + payload + b"\n}\n")
    planted.append(path)
    with guard.client() as c:
        one = c.get(BASE + "lab/api/settings/@jupyterlab/apputils-extension:themes")
        assert one.status_code == 403, one.status_code
        assert payload[-64:] not in one.content
        listing = c.get(BASE + "lab/api/settings")
        assert listing.status_code == 403, listing.status_code
        assert payload[-64:] not in listing.content
    # a normal settings file is served, as JSON
    path.write_text('{"theme": "JupyterLab Dark"}')
    with guard.client() as c:
        one = c.get(BASE + "lab/api/settings/@jupyterlab/apputils-extension:themes")
        assert one.status_code == 200 and "JupyterLab Dark" in one.json()["raw"]
        assert one.headers["content-type"].startswith("application/json")


def test_workspace_over_the_cap_is_not_served(
    guard: GuardServer, upstream: Upstream, planted: list[Path]
) -> None:
    d = config_dir(upstream) / "lab" / "workspaces"
    d.mkdir(parents=True, exist_ok=True)
    payload = base64.b64encode(os.urandom(300 * 1024)).decode()
    big = d / (slugify("big") + ".jupyterlab-workspace")
    big.write_text(json.dumps({"data": {"x": payload}, "metadata": {"id": "big"}}))
    planted.append(big)
    with guard.client() as c:
        r = c.get(BASE + "lab/api/workspaces/big")
        assert r.status_code == 403 and payload[-64:].encode() not in r.content


def test_kernelspec_route_serves_only_logos(guard: GuardServer) -> None:
    with guard.client() as c:
        specs = c.get(BASE + "api/kernelspecs").json()["kernelspecs"]
        resources = specs["python3"]["resources"]
        assert resources, specs
        for url in resources.values():
            r = c.get(url)
            assert r.status_code == 200, url
            assert r.headers["content-type"].split(";")[0] in ("image/png", "image/svg+xml")
        # every other file of a kernelspec folder (kernel.json, anything dropped there)
        for rest in ("kernel.json", "kernel.js", "data.tar", "logo-64x64.png.tar", "x/logo-1.png"):
            r = c.get(BASE + "kernelspecs/python3/" + rest)
            assert r.status_code == 404, (rest, r.status_code)


def test_answer_of_another_media_type_is_refused(guard: GuardServer) -> None:
    with guard.client() as c:
        ok = c.get(BASE + "lab/api/licenses/")
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/json")
        # the same route asked for Markdown or CSV: not the route's media type
        for fmt in ("markdown", "csv"):
            r = c.get(BASE + f"lab/api/licenses/?format={fmt}&full_text=true")
            assert r.status_code == 403, (fmt, r.status_code, r.headers.get("content-type"))
            assert "content type" in r.json()["message"]


@pytest.mark.parametrize(
    "rest",
    [
        "custom/custom.css",  # the config folder's custom/ (kernel-writable in a sandbox)
        "api/config/notebook",  # config sections read from the config path
        "lab/extensions/jupyterlab_pygments/package.json",  # outside the extension's static/
        "static",
        "lab/api/news",
    ],
)
def test_routes_outside_the_table_never_reach_the_sandbox(guard: GuardServer, rest: str) -> None:
    before = len(guard.forwarded)
    with guard.client() as c:
        r = c.get(BASE + rest)
    assert r.status_code == 404, (rest, r.status_code)
    assert len(guard.forwarded) == before  # refused by the policy, not by the sandbox
