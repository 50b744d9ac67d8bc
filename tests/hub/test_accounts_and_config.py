"""Local accounts (scrypt passwords, audited) and the embedded hub's generated configuration.

Fast unit tests on both store backends; the end-to-end hub is in ``test_embedded_hub.py``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from jupyterlab_hdh.audit.log import verify
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.hub import config as hub_config
from jupyterlab_hdh.store.models import AuditEvent, User


def test_password_hash_is_salted_scrypt_and_checked(hub: Any) -> None:
    with hub.transaction() as s:
        user = accounts.create_user(s, "alice", "researcher", actor="test")
        accounts.set_password(s, user, "correct horse", actor="test")
    with hub.sessions() as s:
        stored = s.scalar(select(User.password_hash).where(User.name == "alice"))
        assert stored.startswith("scrypt$") and "correct horse" not in stored
        assert accounts.check_password(s, "alice", "correct horse").name == "alice"
        assert accounts.check_password(s, "alice", "wrong horse") is None
        assert accounts.check_password(s, "nobody", "correct horse") is None
        assert accounts.check_password(s, "alice", "x" * 5000) is None
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert "user.password" in actions
    assert accounts.hash_password("same") != accounts.hash_password("same")  # random salt
    assert not accounts.verify_password("same", "md5$whatever")
    with hub.sessions() as s:
        assert verify(s).ok


def test_short_password_is_refused(hub: Any) -> None:
    with hub.transaction() as s:
        user = accounts.create_user(s, "bob", "reviewer", actor="test")
        with pytest.raises(accounts.AccountError, match="8 to 1024"):
            accounts.set_password(s, user, "short", actor="test")


def test_user_without_password_cannot_log_in(hub: Any) -> None:
    with hub.transaction() as s:
        accounts.create_user(s, "carol", "committee", actor="test")
    with hub.sessions() as s:
        assert accounts.check_password(s, "carol", "") is None
        assert accounts.check_password(s, "carol", "anything-at-all") is None


def test_hdh_user_passwd_from_stdin(tmp_path: Path, store_url: str) -> None:
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", store_url]
    runner = CliRunner()
    assert runner.invoke(main, [*base, "init"]).exit_code == 0
    assert runner.invoke(main, [*base, "user", "add", "dora", "--role", "admin"]).exit_code == 0
    r = runner.invoke(
        main, [*base, "user", "passwd", "dora", "--password-stdin"], input="pw-of-dora\n"
    )
    assert r.exit_code == 0 and "password of dora set" in r.output
    r = runner.invoke(main, [*base, "user", "passwd", "dora", "--password-stdin"], input="x\n")
    assert r.exit_code == 1 and "8 to 1024" in r.output
    r = runner.invoke(
        main, [*base, "user", "passwd", "ghost", "--password-stdin"], input="pw-long-one\n"
    )
    assert r.exit_code == 1 and "no user named 'ghost'" in r.output
    r = runner.invoke(main, [*base, "token", "dora"])
    assert r.exit_code == 1 and "hdh up" in r.output  # no hub configured yet


def test_authenticator_checks_the_store_and_audits(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyterlab_hdh.hub.authenticator import HdhAuthenticator
    from jupyterlab_hdh.hub.store import close_stores

    with hub.transaction() as s:
        accounts.set_password(
            s, accounts.create_user(s, "root", "admin", actor="t"), "admin-password", actor="t"
        )
        accounts.set_password(
            s, accounts.create_user(s, "eve", "researcher", actor="t"), "eve-password", actor="t"
        )
    # as `hdh up` passes it to the hub process
    monkeypatch.setenv("HDH_STORE_URL", hub.data_dir.store_url_override or "")
    auth = HdhAuthenticator(data_dir=str(hub.data_dir.root))
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.9"))

    def login(name: str, pw: str) -> Any:
        return asyncio.run(auth.authenticate(handler, {"username": name, "password": pw}))

    assert login("root", "admin-password") == {"name": "root", "admin": True}
    assert login("eve", "eve-password") == {"name": "eve", "admin": False}
    assert login("eve", "nope-nope") is None
    assert login("", "x") is None
    close_stores()
    with hub.sessions() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    logins = [(e.action, e.target) for e in events if e.action.startswith("auth.")]
    assert logins == [
        ("auth.login", "user:root"),
        ("auth.login", "user:eve"),
        ("auth.login_failed", "user:eve"),
    ]
    assert all("nope-nope" not in e.details for e in events)


def test_generated_config_wires_proxy_guard_spawner_and_secrets(tmp_path: Path) -> None:
    try:
        hub_config.proxy_command()
    except hub_config.HubConfigError as exc:
        pytest.skip(str(exc))
    plan = hub_config.write_hub_config(tmp_path, port=18123, poll_interval=7)
    assert oct(plan.config_file.stat().st_mode & 0o777) == "0o600"
    c = _load(plan)
    hubc = c["JupyterHub"]
    assert hubc["bind_url"] == "http://127.0.0.1:18123"
    assert hubc["allow_named_servers"] is True and hubc["cleanup_servers"] is True
    assert hubc["spawner_class"].endswith("SandboxSpawner")
    guard = next(s for s in hubc["services"] if s["name"] == "guard")
    assert guard["oauth_no_confirm"] is True
    assert guard["url"] == f"http://127.0.0.1:{plan.guard_port}"
    assert "--sockets-root" in guard["command"] and str(tmp_path / "sandboxes") in guard["command"]
    assert c["Spawner"]["poll_interval"] == 7
    assert c["SandboxSpawner"]["guard_url"] == guard["url"]
    assert c["ConfigurableHTTPProxy"]["command"][0].endswith("configurable-http-proxy")
    for name in ("cookie_secret", "proxy_token", "guard_token", "guard_cookie_secret", "cli_token"):
        path = tmp_path / "jupyterhub" / name
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    # no control-plane URL given: no API bridge (and no bridge token)
    assert c["SandboxSpawner"]["api_url"] == "" and c["SandboxSpawner"]["bridge_token_file"] == ""
    # every sandbox runs under memory and CPU limits by default (cgroups where allowed)
    assert 2**30 <= c["SandboxSpawner"]["memory_limit_bytes"] <= 8 * 2**30
    assert c["SandboxSpawner"]["cpu_limit"] >= 1
    assert not (tmp_path / "jupyterhub" / "bridge_token").exists()
    secret = (tmp_path / "jupyterhub" / "guard_token").read_text()
    plan = hub_config.write_hub_config(
        tmp_path, port=18123, api_url="http://127.0.0.1:18124"
    )  # secrets are created once, then kept
    assert (tmp_path / "jupyterhub" / "guard_token").read_text() == secret
    bridge_token = tmp_path / "jupyterhub" / "bridge_token"
    assert oct(bridge_token.stat().st_mode & 0o777) == "0o600"
    assert hub_config.bridge_token(tmp_path) == bridge_token.read_text()
    text = plan.config_file.read_text()
    assert "SandboxSpawner.api_url = 'http://127.0.0.1:18124'" in text
    assert f"SandboxSpawner.bridge_token_file = {str(bridge_token)!r}" in text
    assert bridge_token.read_text() not in text  # the spawner reads the file, not the config
    api, token = hub_config.hub_api(tmp_path)
    assert api == "http://127.0.0.1:18123/hub/api" and token
    assert json.loads((tmp_path / "jupyterhub" / "hub.json").read_text())["url"].endswith("18123")


def _load(plan: Any) -> dict[str, Any]:
    class Section(dict):  # type: ignore[type-arg]
        def __getattr__(self, k: str) -> Any:
            return self.setdefault(k, Section())

        def __setattr__(self, k: str, v: Any) -> None:
            self[k] = v

    c = Section()
    exec(compile(plan.config_file.read_text(), "cfg", "exec"), {"get_config": lambda: c}, {})  # noqa: S102
    return c


def test_the_control_plane_is_a_managed_hub_service_with_its_own_oauth_client(
    tmp_path: Path,
) -> None:
    try:
        hub_config.proxy_command()
    except hub_config.HubConfigError as exc:
        pytest.skip(str(exc))
    plan = hub_config.write_hub_config(tmp_path, port=18123, api_url="http://127.0.0.1:18124")
    c = _load(plan)
    api = next(s for s in c["JupyterHub"]["services"] if s["name"] == "hdh")
    assert api["url"] == "http://127.0.0.1:18124" and api["oauth_no_confirm"] is True
    cmd = api["command"]
    assert cmd[cmd.index("--data-dir") + 1] == str(tmp_path) and "serve" in cmd
    assert cmd[cmd.index("--port") + 1] == "18124"
    token_file = api["environment"]["HDH_BRIDGE_TOKEN_FILE"]
    assert token_file == str(tmp_path / "jupyterhub" / "bridge_token")
    assert Path(token_file).read_text() not in plan.config_file.read_text()
    roles = {r["name"]: r for r in c["JupyterHub"]["load_roles"]}
    assert "access:services!service=hdh" in roles["user"]["scopes"]
    # the service may stop users' sandboxes (the dataset-versions page restarts one), no more
    assert set(roles["hdh-control-plane"]["scopes"]) == {
        "read:users:name",
        "read:servers",
        "servers",
    }
    assert oct((tmp_path / "jupyterhub" / "api_token").stat().st_mode & 0o777) == "0o600"


def test_sandbox_limits_from_the_command_line(tmp_path: Path) -> None:
    try:
        hub_config.proxy_command()
    except hub_config.HubConfigError as exc:
        pytest.skip(str(exc))
    c = _load(hub_config.write_hub_config(tmp_path, memory_limit=3 * 2**30, cpu_limit=1.5))
    assert (c["SandboxSpawner"]["memory_limit_bytes"], c["SandboxSpawner"]["cpu_limit"]) == (
        3 * 2**30,
        1.5,
    )
    c = _load(hub_config.write_hub_config(tmp_path, memory_limit=0, cpu_limit=0))
    assert (c["SandboxSpawner"]["memory_limit_bytes"], c["SandboxSpawner"]["cpu_limit"]) == (0, 0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("0", 0)],
)
def test_memory_sizes_on_the_command_line(given: str, expected: int) -> None:
    from jupyterlab_hdh.cli.hub import _memory_size

    assert _memory_size(None, None, given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "message"),
    [("lots", "not a size"), ("-1G", "not a size"), ("inf", "not a size"), ("10M", "too small")],
)
def test_bad_memory_sizes_are_refused_before_anything_starts(
    tmp_path: Path, given: str, message: str
) -> None:
    from click.testing import CliRunner

    from jupyterlab_hdh.cli import main

    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "d"), "up", "--memory-limit", given]
    )
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "d").exists()  # nothing was set up
