"""Disabled accounts: refused by the hub's login and session refresh, by the API's bearer
tokens, on both store backends; the migration that adds them keeps every user active."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.audit import verify
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import AuditEvent


def test_a_disabled_user_is_refused_by_the_hub_login_and_its_refresh(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyterlab_hdh.hub.authenticator import HdhAuthenticator
    from jupyterlab_hdh.hub.store import close_stores

    with hub.transaction() as s:
        accounts.set_password(
            s, accounts.create_user(s, "eve", "researcher", actor="t"), "eve-password", actor="t"
        )
    monkeypatch.setenv("HDH_STORE_URL", hub.data_dir.store_url_override or "")
    auth = HdhAuthenticator(data_dir=str(hub.data_dir.root))
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.9"))
    eve = SimpleNamespace(name="eve")

    def login() -> Any:
        return asyncio.run(
            auth.authenticate(handler, {"username": "eve", "password": "eve-password"})
        )

    try:
        assert auth.refresh_pre_spawn and auth.auth_refresh_strict
        assert login() == {"name": "eve", "admin": False}
        assert asyncio.run(auth.refresh_user(eve)) is True
        with hub.transaction() as s:
            assert accounts.set_disabled(s, "eve", True, actor="t")
        assert login() is None
        assert asyncio.run(auth.refresh_user(eve)) is False  # open sessions end
        assert asyncio.run(auth.refresh_user(SimpleNamespace(name="ghost"))) is False
        with hub.transaction() as s:
            assert accounts.set_disabled(s, "eve", False, actor="t")
        assert login() == {"name": "eve", "admin": False}
    finally:
        close_stores()
    with hub.sessions() as s:
        events = [(e.action, e.target) for e in s.scalars(select(AuditEvent))]
        assert verify(s).ok
    assert [a for a, _ in events if a.startswith(("auth.", "user.dis", "user.en"))] == [
        "auth.login",
        "user.disable",
        "auth.login_failed",
        "user.enable",
        "auth.login",
    ]


def test_the_api_refuses_a_disabled_users_token_and_a_revoked_one(hub: Any) -> None:
    with hub.transaction() as s:
        admin = accounts.create_user(s, "adm", "admin", actor="t")
        token = accounts.issue_token(s, admin, actor="t")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(hub.data_dir)) as client:
        assert client.get("/api/audit/verify", headers=headers).status_code == 200
        with hub.transaction() as s:
            accounts.set_disabled(s, "adm", True, actor="t")
        assert client.get("/api/audit/verify", headers=headers).status_code == 401
        with hub.transaction() as s:
            accounts.set_disabled(s, "adm", False, actor="t")
        assert client.get("/api/audit/verify", headers=headers).status_code == 200
        with hub.transaction() as s:
            assert accounts.revoke_tokens(s, "adm", actor="t") == 1
        assert client.get("/api/audit/verify", headers=headers).status_code == 401


def test_the_migration_to_disabled_accounts_keeps_every_user_active(store_url: str) -> None:
    engine = db.make_engine(store_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0006")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (name, role, created_at, email)"
                " VALUES ('old', 'researcher', CURRENT_TIMESTAMP, 'old@example.org')"
            )
        )
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with factory() as s:
        [row] = accounts.list_users(s)
        assert row["name"] == "old" and row["disabled"] is False and row["tokens"] == 0
        assert accounts.is_active(s, "old")
    command.downgrade(config, "0006")
    assert "disabled_at" not in {c["name"] for c in sa.inspect(engine).get_columns("users")}
    engine.dispose()


def test_a_disabled_member_may_not_open_the_project_nor_use_its_bridge(world: Any) -> None:
    """The permit check refuses a disabled account: the hub's spawn and poll (which stops a
    running sandbox), the API bridge and ``hdh permit check`` all ask it."""
    from datetime import UTC, datetime, timedelta

    from jupyterlab_hdh.governance import projects as pj

    hub = world
    with hub.transaction() as s:
        pj.grant_permit(
            s,
            "cohort-2027",
            members=["alice"],
            datasets=["snds"],
            expires_at=datetime.now(UTC) + timedelta(days=30),
            actor=pj.Actor("ctl", "data_controller"),
        )
    with hub.sessions() as s:
        assert pj.access_problem(s, "alice", "cohort-2027") is None
    with hub.transaction() as s:
        accounts.set_disabled(s, "alice", True, actor="t")
    with hub.sessions() as s:
        with pytest.raises(pj.PermitError) as refused:
            pj.active_permit(s, "alice", "cohort-2027")
        assert refused.value.reason == "account_disabled"
        assert pj.access_problem(s, "alice", "cohort-2027") == (
            "the account of 'alice' is disabled (an administrator can `hdh user enable alice`)"
        )
    with hub.transaction() as s:
        accounts.set_disabled(s, "alice", False, actor="t")
    with hub.sessions() as s:
        assert pj.access_problem(s, "alice", "cohort-2027") is None
