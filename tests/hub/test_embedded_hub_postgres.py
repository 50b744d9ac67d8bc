"""``hdh up`` on a PostgreSQL store, end to end: the hub's login, the spawner's permit check,
the guard's code audit and the control plane all share one real PostgreSQL server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import _create_pg_database
from tests.hdh_up import free_port, start_up, stop_up
from tests.hub.test_embedded_hub import (
    POLL_INTERVAL,
    READ_CODE,
    Up,
    _problem,
    execute,
    follow,
    login,
    spawn,
    wait_ready,
)

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(_problem() is not None, reason="no hub")]


@pytest.fixture(scope="module")
def up_pg(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Up]:
    url = _create_pg_database(postgres_server)
    data_dir = tmp_path_factory.mktemp("hub-pg") / "hdh"
    port = free_port()
    proc, _lines = start_up(
        data_dir,
        port,
        free_port(),
        seed=6,
        poll_interval=POLL_INTERVAL,
        stderr_file=data_dir.parent / "up.err",
        store_url=url,
    )
    try:
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        yield Up(proc, data_dir, f"http://127.0.0.1:{port}", "", creds, 0.0, store_url=url)
    finally:
        stop_up(proc)


def test_the_hub_runs_audited_code_with_its_state_in_postgresql(up_pg: Up) -> None:
    up = up_pg
    assert not (up.data_dir / "hdh.sqlite").exists()  # nothing fell back to SQLite
    browser = login(up, "alice")
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        assert spawn(api, "alice", "demo").status_code in (201, 202)
        wait_ready(api, "alice", "demo")
        assert follow(browser, f"{up.url}{base}lab").status_code == 200
        out, _ = execute(up, browser, base, READ_CODE)
        assert out.startswith("rows ")
        # the control plane (a hub service) reads the same store: alice's projects page
        page = follow(browser, f"{up.url}/services/hdh/ui/")
        assert page.status_code == 200 and "demo" in page.text
        # revoking the permit (CLI → PostgreSQL) stops the sandbox (spawner polls PostgreSQL)
        permits = json.loads(up.hdh("permit", "list", "--json").stdout)
        active = next(p for p in permits if p["status"] == "active")
        r = up.hdh("permit", "revoke", str(active["id"]), "--reason", "test: pg")
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        while "demo" in api.get("/users/alice").json()["servers"]:
            assert time.monotonic() - t0 < POLL_INTERVAL * 3 + 10, up.log_tail()
            time.sleep(0.2)
    browser.close()
    actions = [e["action"] for e in up.audit()]
    for expected in ("auth.login", "sandbox.start", "code.execute", "permit.revoke"):
        assert expected in actions, expected
    assert any(
        e["action"] == "code.execute" and e["details"]["code"] == READ_CODE for e in up.audit()
    )
    verify = up.hdh("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
