"""Released files download under their own names (not ``<sha256>-<name>``): in
``hdh egress download``, in the API's listing and in its ``Content-Disposition``; two outputs
of the same name in different folders get distinct names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.egress import manager
from jupyterlab_hdh.egress import release as rel
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.store.models import User
from tests.egress import airlock

NORTH = "region,count\nnorth,120\nsouth,140\n"
SOUTH = "region,count\nnorth,220\nsouth,240\n"


def _released(hub: Any) -> int:
    workspace = airlock.setup(hub)
    airlock.write(workspace, "2024/table.csv", NORTH)
    airlock.write(workspace, "2025/table.csv", SOUTH)
    airlock.write(workspace, "figures/résumé é.csv", NORTH)
    rid = airlock.draft(
        hub,
        ("2024/table.csv", "output"),
        ("2025/table.csv", "output"),
        ("figures/résumé é.csv", "output"),
    )
    airlock.submit(hub, rid)
    airlock.vote_all(hub, rid)
    with hub.transaction() as s:
        manager.approve(s, rid, actor=airlock.RITA)
    assert rel.release(hub, rid, actor=airlock.ADMIN)
    return rid


def test_download_names_are_readable_and_distinct() -> None:
    assert rel.download_names(["a/t.csv", "b/t.csv", "c/u.csv"]) == [
        "a_t.csv",
        "b_t.csv",
        "u.csv",
    ]
    # a readable name never collides with another file's own name
    assert rel.download_names(["a/b_t.csv", "a_b/t.csv", "a/b/t.csv"]) == [
        "b_t.csv",
        "a_b_t.csv",
        "a_b_t-2.csv",
    ]
    assert rel.download_names(["x.csv"]) == ["x.csv"]


def test_cli_download_writes_the_files_own_names(hub: Any, store_url: str, tmp_path: Path) -> None:
    rid = _released(hub)
    runner = CliRunner()
    base = ["--data-dir", str(hub.data_dir.root), "--store-url", store_url, "egress"]
    dest = tmp_path / "results"
    out = runner.invoke(main, [*base, "download", str(rid), "--as", "alice", "-o", str(dest)])
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in dest.iterdir()) == [
        "2024_table.csv",
        "2025_table.csv",
        "résumé é.csv",
    ]
    assert (dest / "2024_table.csv").read_text() == NORTH
    assert (dest / "2025_table.csv").read_text() == SOUTH
    assert not re.search(r"[0-9a-f]{64}", out.output)
    shown = runner.invoke(main, [*base, "show", str(rid), "--as", "alice"]).output
    assert "  released: 2024_table.csv\n" in shown and "released: résumé é.csv" in shown
    # one file, by its readable name
    one = tmp_path / "one"
    one.mkdir()
    args = [*base, "download", str(rid), "2025_table.csv", "--as", "bob", "-o", str(one)]
    out = runner.invoke(main, args)
    assert out.exit_code == 0, out.output
    assert (one / "2025_table.csv").read_text() == SOUTH


def test_api_lists_and_serves_readable_names(hub: Any) -> None:
    rid = _released(hub)
    with hub.transaction() as s:
        user = s.scalar(select(User).where(User.name == "alice"))
        headers = {"Authorization": f"Bearer {accounts.issue_token(s, user, actor='test')}"}
    with TestClient(create_app(hub.data_dir, bridge_token="t" * 64)) as client:
        r = client.get(f"/api/egress/requests/{rid}/released", headers=headers)
        listed = {f["path"]: f for f in r.json()}
        assert {p: f["filename"] for p, f in listed.items()} == {
            "2024/table.csv": "2024_table.csv",
            "2025/table.csv": "2025_table.csv",
            "figures/résumé é.csv": "résumé é.csv",
        }
        f = listed["2025/table.csv"]
        r = client.get(f"/api/egress/requests/{rid}/released/{f['name']}", headers=headers)
        assert r.status_code == 200 and r.text == SOUTH
        assert r.headers["content-disposition"] == 'attachment; filename="2025_table.csv"'
        f = listed["figures/résumé é.csv"]
        r = client.get(f"/api/egress/requests/{rid}/released/{f['name']}", headers=headers)
        assert r.headers["content-disposition"] == (
            "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%C3%A9.csv"
        )
        # the readable name is a download address too
        r = client.get(f"/api/egress/requests/{rid}/released/2024_table.csv", headers=headers)
        assert r.status_code == 200 and r.text == NORTH
        view = client.get(f"/api/egress/requests/{rid}", headers=headers).json()
        assert sorted(f["filename"] for f in view["released"]) == sorted(
            f["filename"] for f in listed.values()
        )
