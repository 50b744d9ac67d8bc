"""``/api/bridge/access/<dataset>``: the catalogue browser's access badge, for the bridged
project only: mounted, permitted or not, the project's leads and how to obtain access."""

from __future__ import annotations

from typing import Any

from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.governance.accounts import create_user
from tests.api.test_bridge_api import ADMIN, TOKEN, _as, bridge  # noqa: F401 - the fixture
from tests.governance.fakes import fake_version


def test_a_mounted_dataset(bridge: Any) -> None:  # noqa: F811
    client, _hub, _ = bridge
    r = client.get("/api/bridge/access/snds", headers=_as("alice", "cohort"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["dataset"], body["project"], body["state"]) == ("snds", "cohort", "mounted")
    assert body["mounted"] == ["v1"] and body["permitted"] == ["v1"]
    assert [lead["name"] for lead in body["leads"]] == ["alice"]
    assert "/data/snds/" in body["how"]


def test_a_dataset_the_permit_does_not_cover_says_whom_to_ask(bridge: Any) -> None:  # noqa: F811
    client, hub, _ = bridge
    fake_version(hub, "other-data")
    with hub.transaction() as s:
        create_user(s, "lena", "researcher", actor="test").email = "lena@example.org"
        pj.add_member(s, "cohort", "lena", role="lead", actor=ADMIN)
    r = client.get("/api/bridge/access/other-data", headers=_as("alice", "cohort"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "not_permitted" and body["mounted"] == body["permitted"] == []
    assert [lead["name"] for lead in body["leads"]] == ["alice", "lena"]
    assert "lena <lena@example.org>" in body["how"] and "request access" in body["how"]


def test_only_through_the_bridge_and_with_a_permit(bridge: Any) -> None:  # noqa: F811
    client, _hub, tokens = bridge
    assert client.get("/api/bridge/access/snds").status_code == 401
    bad = client.get("/api/bridge/access/snds", headers=_as("alice", "cohort", token="x" * 64))
    assert bad.status_code == 403
    # bob is a member without a permit: no badge, the permit check answers first
    assert client.get("/api/bridge/access/snds", headers=_as("bob", "cohort")).status_code == 403
    # another project: alice is not a member there
    r = client.get("/api/bridge/access/snds", headers=_as("alice", "other"))
    assert r.status_code in (403, 404)
    # a user's API token is not the bridge
    user = {"Authorization": f"Bearer {tokens['alice']}"}
    assert client.get("/api/bridge/access/snds", headers=user).status_code == 401
    assert TOKEN


def test_names_that_are_not_dataset_names_are_refused(bridge: Any) -> None:  # noqa: F811
    client, _hub, _ = bridge
    for name in ("Snds", "-x", "a" * 64):
        r = client.get(f"/api/bridge/access/{name}", headers=_as("alice", "cohort"))
        assert r.status_code == 422, (name, r.text)
