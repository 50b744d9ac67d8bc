"""The embedded hub for real: ``hdh up`` → JupyterHub → configurable-http-proxy → guard → bwrap.

One ``hdh up`` per module (small demo: 150 patients, hub poll every 2 s). A
browser-like httpx client logs in through the hub's form as alice, her
named server ``demo`` is started through the hub's REST API with a token from
``hdh token alice``, the guard's OAuth dance is followed through the proxy, and
code that reads the permitted dataset runs in a kernel over the guard's
websocket; the audit log must hold that exact code. The API bridge is
attacked from that kernel (forged identity headers, an admin's token, routes
outside the allow-list, traversal, absolute URLs). Then: refusals (no
permit, unnamed server, a held sandbox lock, wrong password; a refused spawn
shows its reason with its status on the spawn page and in the API, and the
home page offers no default server), revocation
answered 403 by the bridge and stopping the running sandbox, and Ctrl-C
leaving no process behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow.parquet as pq
import pytest
import websocket

from jupyterlab_hdh.hub.config import HubConfigError, proxy_command
from jupyterlab_hdh.sandbox import bwrap_problem
from jupyterlab_hdh.sandbox.client import execute_request
from tests.hdh_up import free_port, start_up, stop_up
from tests.waiting import wait_for

POLL_INTERVAL = 2
READ_CODE = (
    "import pyarrow.parquet as pq\n"
    "print('rows', pq.read_metadata('/data/demo-snds/v1/IR_BEN_R.parquet').num_rows)"
)

LIBRARY_CODE = (
    "import json, hdh\n"
    "df = hdh.read('demo-snds.IR_BEN_R', columns=['BEN_NIR_PSA'])\n"
    "ds = hdh.datasets()[['dataset', 'version', 'mounted', 'permitted']]\n"
    "print(json.dumps({'rows': len(df), 'datasets': ds.values.tolist()}))"
)


def _problem() -> str | None:
    try:
        proxy_command()
    except HubConfigError as exc:
        return str(exc)
    return bwrap_problem()


pytestmark = pytest.mark.skipif(_problem() is not None, reason=str(_problem()))


@dataclass
class Up:
    proc: subprocess.Popen[str]
    data_dir: Path
    url: str
    api_url: str
    creds: dict[str, dict[str, str]]
    ready_s: float
    timings: dict[str, float] = field(default_factory=dict)
    store_url: str = ""  # "" = SQLite in data_dir

    def hdh(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jupyterlab_hdh.cli", "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            input=input,
            env={**os.environ, "HDH_STORE_URL": self.store_url},
            timeout=60,
        )

    def token(self, user: str) -> str:
        r = self.hdh("token", user)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def api(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/hub/api",
            headers={"Authorization": f"token {self.token(user)}"},
            timeout=60,
        )

    def audit(self) -> list[dict[str, Any]]:
        r = self.hdh("audit", "log", "--json", "--oldest-first", "--limit", "100000")
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def log_tail(self) -> str:
        return (self.data_dir / "jupyterhub" / "jupyterhub.log").read_text()[-4000:]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("hub") / "hdh"
    port = free_port()
    t0 = time.monotonic()
    proc, lines = start_up(
        data_dir,
        port,
        free_port(),
        seed=5,
        poll_interval=POLL_INTERVAL,
        stderr_file=data_dir.parent / "up.err",
    )
    try:
        ready = time.monotonic() - t0
        api_url = next(
            x.split()[3].removesuffix("/api/docs")
            for x in lines
            if x.startswith("HDH control plane:")
        )
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        yield Up(proc, data_dir, f"http://127.0.0.1:{port}", api_url, creds, ready)
    finally:
        stop_up(proc)


def login(up: Up, user: str, password: str | None = None) -> httpx.Client:
    """A cookie jar logged in to the hub through its login form."""
    c = httpx.Client(timeout=60)
    c.get(f"{up.url}/hub/login")
    xsrf = c.cookies.get("_xsrf", path="/hub/")
    r = c.post(
        f"{up.url}/hub/login",
        data={"username": user, "password": password or up.creds[user]["password"], "_xsrf": xsrf},
    )
    assert r.status_code == 302, r.text[:500]
    return c


def follow(c: httpx.Client, url: str, limit: int = 10) -> httpx.Response:
    for _ in range(limit):
        r = c.get(url, follow_redirects=False)
        if r.status_code not in (301, 302, 303, 307):
            return r
        url = str(r.url.join(r.headers["location"]))
    raise AssertionError("redirect loop")


def wait_ready(api: httpx.Client, user: str, server: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = api.get(f"/users/{user}").json()
        s = model["servers"].get(server)
        if s and s["ready"]:
            return
        if s is None or (not s["pending"] and not s["ready"]):
            raise AssertionError(f"server {user}/{server} failed: {model}")
        time.sleep(0.1)
    raise AssertionError(f"server {user}/{server} not ready in {timeout} s")


def spawn(api: httpx.Client, user: str, server: str) -> httpx.Response:
    return api.post(f"/users/{user}/servers/{server}", json={})


def execute(up: Up, c: httpx.Client, base: str, code: str) -> tuple[str, float]:
    """Start a kernel through the guard, run ``code``, return (stdout, seconds to the reply)."""
    xsrf = c.cookies.get("_xsrf", path=base)
    k = c.post(
        f"{up.url}{base}api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}
    )
    assert k.status_code == 201, k.text
    kid = k.json()["id"]
    cookie = "; ".join(f"{ck.name}={ck.value}" for ck in c.cookies.jar)
    ws = websocket.create_connection(
        f"{up.url.replace('http', 'ws', 1)}{base}api/kernels/{kid}/channels"
        f"?session_id={uuid.uuid4()}",
        cookie=cookie,
        origin=up.url,
        timeout=60,
    )
    t0 = time.monotonic()
    try:
        msg = execute_request(code, username="alice", store_history=True)
        ws.send(json.dumps(msg))
        out, reply = "", None
        while reply is None or out == "":
            m = json.loads(ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out += m["content"]["text"]
            elif m["msg_type"] == "execute_reply":
                reply = time.monotonic() - t0
                assert m["content"]["status"] == "ok", m["content"]
            elif m["msg_type"] == "error":
                raise AssertionError(m["content"])
        return out, reply
    finally:
        ws.close()
        c.delete(f"{up.url}{base}api/kernels/{kid}", headers={"X-XSRFToken": xsrf})


def sandbox_pids(up: Up) -> list[int]:
    runtime = str(up.data_dir / "sandboxes")
    found = []
    for p in psutil.process_iter(["cmdline", "name"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["name"] == "bwrap" and runtime in cmd:
            found.append(p.pid)
    return found


def sandbox_uid(up: Up, user: str, project: str) -> int:
    """The host uid (= gid) a root hub runs ``project``'s sandboxes as: 200000 + its id."""
    from sqlalchemy import select

    from jupyterlab_hdh.context import open_installation
    from jupyterlab_hdh.paths import DataDir
    from jupyterlab_hdh.store.models import Project

    hub = open_installation(DataDir.resolve(up.data_dir))
    with hub.sessions() as s:
        project_id = s.execute(select(Project.id).where(Project.slug == project)).scalar_one()
    return 200000 + project_id


# --- the tests, in order: they share the running hub ------------------------------------------


def test_up_is_ready_and_prints_the_catalogue(up: Up) -> None:
    assert up.api_url
    r = httpx.get(f"{up.api_url}/api/catalogue/datasets", timeout=10)
    assert [d["name"] for d in r.json()] == ["demo-snds"]
    assert httpx.get(f"{up.url}/hub/login", timeout=10).status_code == 200
    print(f"hdh up to ready (first run, 150 patients): {up.ready_s:.1f} s")


def test_after_login_a_researcher_lands_on_her_projects(up: Up) -> None:
    """Not on JupyterHub's home, whose 'Start My Server' HDH refuses (no default server)."""
    browser = httpx.Client(timeout=60)
    try:
        browser.get(f"{up.url}/hub/login")
        r = browser.post(
            f"{up.url}/hub/login",
            data={
                "username": "alice",
                "password": up.creds["alice"]["password"],
                "_xsrf": browser.cookies.get("_xsrf", path="/hub/"),
            },
        )
        assert r.status_code == 302, r.text[:300]
        page = follow(browser, str(r.url.join(r.headers["location"])))  # OAuth of the service
        assert page.url.path == "/services/hdh/ui/", page.url
        assert "Your projects" in page.text and "/hub/spawn/alice/demo" in page.text
        home = browser.get(f"{up.url}/hub/home")
        assert home.status_code == 200
        assert '<a href="/services/hdh/ui/">your projects</a>' in home.text
        assert "There is no default server" in home.text and "My Server" not in home.text
    finally:
        browser.close()


def test_wrong_password_is_refused_and_audited(up: Up) -> None:
    with httpx.Client(timeout=30) as c:
        c.get(f"{up.url}/hub/login")
        xsrf = c.cookies.get("_xsrf", path="/hub/")
        r = c.post(
            f"{up.url}/hub/login",
            data={"username": "alice", "password": "not-her-password", "_xsrf": xsrf},
        )
        assert r.status_code == 403 and "Invalid username or password" in r.text
        r = c.post(
            f"{up.url}/hub/login",
            data={"username": "nobody", "password": "whatever-pw", "_xsrf": xsrf},
        )
        assert r.status_code == 403
    failed = [e for e in up.audit() if e["action"] == "auth.login_failed"]
    assert {e["target"] for e in failed} >= {"user:alice", "user:nobody"}
    assert "not-her-password" not in json.dumps(failed)


def test_alice_spawns_demo_and_runs_audited_code_through_the_guard(up: Up) -> None:
    browser = login(up, "alice")
    assert any(e["action"] == "auth.login" and e["actor"] == "alice" for e in up.audit())
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        t0 = time.monotonic()
        r = spawn(api, "alice", "demo")
        assert r.status_code in (201, 202), r.text
        wait_ready(api, "alice", "demo")
        spawned = time.monotonic() - t0
        page = follow(browser, f"{up.url}{base}lab")  # OAuth: hub authorize → guard callback
        assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        contents = browser.get(f"{up.url}{base}api/contents")
        assert contents.status_code == 200, contents.text
        assert "content-security-policy" in contents.headers
        out, reply = execute(up, browser, base, READ_CODE)
        total = time.monotonic() - t0
        # the notebook library in the same sandbox: the mount, and the permit via the bridge
        lib, _ = execute(up, browser, base, LIBRARY_CODE)
    expected = pq.read_metadata(
        up.data_dir / "datasets" / "demo-snds" / "v1" / "IR_BEN_R.parquet"
    ).num_rows
    assert out.strip() == f"rows {expected}"
    assert json.loads(lib.strip().splitlines()[-1]) == {
        "rows": expected,
        "datasets": [["demo-snds", "v1", True, True]],
    }
    up.timings.update(spawn=spawned, reply=reply, total=total)
    print(
        f"spawn through the hub: ready {spawned:.2f} s; first execute_reply {reply:.2f} s after"
        f" the websocket opened; POST → first reply {total:.2f} s (incl. OAuth, kernel start)"
    )
    events = up.audit()
    executed = [e for e in events if e["action"] == "code.execute"]
    assert any(e["details"].get("code") == READ_CODE for e in executed), executed[-3:]
    starts = [e for e in events if e["action"] == "sandbox.start"]
    assert starts[-1]["details"]["mounts"] == [
        {"dataset": "demo-snds", "version": "v1", "target": "/data/demo-snds/v1"}
    ]
    assert "memory: none" not in starts[-1]["details"]["limits"]  # a memory limit is applied
    browser.close()
    if os.geteuid() == 0:  # a root hub: nothing of the sandbox but bwrap itself runs as root
        uid = sandbox_uid(up, "alice", "demo")
        inner = [
            p
            for outer in sandbox_pids(up)
            for p in psutil.Process(outer).children(recursive=True)
            if p.name() != "bwrap"
        ]
        assert inner and {p.uids().real for p in inner} == {uid}, inner
        ws = up.data_dir / "workspaces" / "demo"
        assert (ws.stat().st_uid, ws.stat().st_gid) == (uid, uid)


# The kernel-side attacker: raw requests on /bridge/api.sock (no client library that
# would normalise the paths or the request line for us).
BRIDGE_ATTACK = """
import json, socket
def ask(line, headers=()):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect('/bridge/api.sock')
    head = [line, 'Host: 127.0.0.1:%(api_port)s', 'Connection: close', *headers]
    s.sendall(('\\r\\n'.join(head) + '\\r\\n\\r\\n').encode())
    data = b''
    while (c := s.recv(65536)):
        data += c
    s.close()
    status_line, _, rest = data.partition(b'\\r\\n')
    body = rest.partition(b'\\r\\n\\r\\n')[2]
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode(errors='replace')[:200]
    return [int(status_line.split()[1]), body]
forged = ['X-HDH-Project: other', 'X-HDH-User: admin', 'X-HDH-Bridge: guessed',
          'Authorization: Bearer %(admin_token)s', 'Cookie: jupyterhub-session-id=x',
          'X-Forwarded-For: 127.0.0.1']
out = {'whoami': ask('GET /api/bridge/whoami HTTP/1.1', forged),
       'catalogue': ask('GET /api/catalogue/datasets HTTP/1.1', forged)}
for line in ['POST /api/optout HTTP/1.1', 'GET /api/audit/events HTTP/1.1',
             'GET /api/projects HTTP/1.1', 'GET /api/catalogue/../audit/events HTTP/1.1',
             'GET /api/catalogue/%%2e%%2e/audit/events HTTP/1.1',
             'GET /api/catalogue/datasets/..%%2F..%%2Faudit%%2Fevents HTTP/1.1',
             'GET http://127.0.0.1:%(api_port)s/api/audit/events HTTP/1.1',
             'GET //127.0.0.1:%(api_port)s/api/audit/events HTTP/1.1',
             'DELETE /api/bridge/whoami HTTP/1.1']:
    out[line] = ask(line, forged)
print(json.dumps(out))
"""


def _lab_session(up: Up, user: str, base: str) -> httpx.Client:
    """A browser logged in as ``user`` that went through the guard's OAuth for ``base``."""
    browser = login(up, user)
    page = follow(browser, f"{up.url}{base}lab")
    assert page.status_code == 200, page.text[:300]
    return browser


def test_the_bridge_ignores_a_forged_identity_and_refuses_other_routes(up: Up) -> None:
    base = "/user/alice/demo/"
    admin_token = up.creds["admin"]["token"]
    api_port = up.api_url.rsplit(":", 1)[1]
    browser = _lab_session(up, "alice", base)
    try:
        code = BRIDGE_ATTACK % {"api_port": api_port, "admin_token": admin_token}
        out, _ = execute(up, browser, base, code)
        result = json.loads(out.strip().splitlines()[-1])
        status, me = result.pop("whoami")
        assert status == 200, me
        assert (me["user"], me["project"]) == ("alice", "demo")  # the forgery had no effect
        assert [(m["dataset"], m["version"]) for m in me["mounts"]] == [("demo-snds", "v1")]
        status, datasets = result.pop("catalogue")
        assert status == 200 and [d["name"] for d in datasets] == ["demo-snds"]
        for line, (status, body) in result.items():
            assert status == 403, (line, body)
            assert body["reason"] == "bridge", (line, body)
        # the admin token really is an admin's: refused only because the bridge stands between
        r = httpx.get(
            f"{up.api_url}/api/audit/events",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        )
        assert r.status_code == 200
        # the forged bridge token straight at the control plane: refused there too
        r = httpx.get(
            f"{up.api_url}/api/bridge/whoami",
            headers={"X-HDH-Bridge": "guessed", "X-HDH-User": "alice", "X-HDH-Project": "demo"},
            timeout=10,
        )
        assert r.status_code == 403
        # the server extension's routes, through the proxy and the guard
        r = browser.get(f"{up.url}{base}hdh/whoami")
        assert r.status_code == 200, r.text
        assert (r.json()["user"], r.json()["project"]) == ("alice", "demo")
        assert [m["path"] for m in r.json()["mounts"]] == ["/data/demo-snds/v1"]  # not the host's
        r = browser.get(f"{up.url}{base}hdh/catalogue", params={"q": "IR_BEN_R"})
        assert r.status_code == 200, r.text
        hits = r.json()["results"]
        assert hits and all(hit["dataset"] == "demo-snds" for hit in hits), hits
        r = browser.get(f"{up.url}{base}hdh/catalogue")
        assert r.status_code == 200 and [d["name"] for d in r.json()["results"]] == ["demo-snds"]
        # the bridge's socket on the host, in a folder bound read-only: owner-only, or (root
        # hub) root's and open to the project's group, whose uid the sandbox runs as
        sock = up.data_dir / "sandboxes" / "demo--alice" / "bridge" / "api.sock"
        st = sock.stat()
        if os.geteuid() == 0:
            assert (oct(st.st_mode & 0o777), st.st_uid) == ("0o660", 0)
            assert st.st_gid == sandbox_uid(up, "alice", "demo")
        else:
            assert oct(st.st_mode & 0o777) == "0o600"
    finally:
        browser.close()
    # bob has no sandbox of alice's: another user reaching alice's /hdh is refused by the guard
    bob = login(up, "bob")
    try:
        r = follow(bob, f"{up.url}{base}hdh/whoami")
        assert r.status_code in (403, 404), r.text[:300]
    finally:
        bob.close()


def test_second_start_while_the_sandbox_is_held_fails_clearly(up: Up) -> None:
    """The sandbox lock refuses a second live sandbox of the same project and person."""
    with up.api("alice") as api:
        assert api.delete("/users/alice/servers/demo").status_code in (202, 204)
        deadline = time.monotonic() + 30
        while "demo" in api.get("/users/alice").json()["servers"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        lock = up.data_dir / "sandboxes" / "demo--alice" / "lock"
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a concurrent start would hold it
            r = spawn(api, "alice", "demo")
            assert r.status_code == 409, r.text
            assert "already running" in r.json()["message"]
        finally:
            os.close(fd)


def test_no_permit_and_unnamed_server_are_refused_with_the_reason(up: Up) -> None:
    with up.api("bob") as api:
        r = spawn(api, "bob", "demo")
        assert r.status_code >= 400
        assert "bob may not open project demo" in r.json()["message"]
        assert "not a member" in r.json()["message"]
        r = api.post("/users/bob/server", json={})
        assert r.status_code >= 400
        assert "/hub/spawn/bob/<project>" in r.json()["message"]
    assert not sandbox_pids(up) or all(
        "demo--bob" not in " ".join(psutil.Process(p).cmdline()) for p in sandbox_pids(up)
    )


def test_a_refused_spawn_shows_its_reason_in_the_browser_and_the_api(up: Up) -> None:
    """bob is no member of demo: 403 with the one-line reason, not 'Unhandled error' (500)."""
    reason = "bob may not open project demo: 'bob' is not a member of project 'demo'"
    browser = login(up, "bob")
    try:
        page = follow(browser, f"{up.url}/hub/spawn/bob/demo")
        assert page.status_code == 403, page.text[:500]
        assert reason in page.text.replace("&#39;", "'"), page.text[:2000]
        assert "Unhandled error" not in page.text
        # the home page offers no default server (it always failed), only the projects
        home = browser.get(f"{up.url}/hub/home")
        assert home.status_code == 200
        assert "My Server" not in home.text and 'id="start"' not in home.text
        assert "Add New Server" not in home.text
        assert 'href="/services/hdh/ui/"' in home.text
    finally:
        browser.close()
    with up.api("bob") as api:
        r = spawn(api, "bob", "demo")
        assert r.status_code == 403, r.text
        assert r.json()["message"] == reason
        r = api.post("/users/bob/server", json={})
        assert r.status_code == 403, r.text


WATCH_BRIDGE = """
import json, time, httpx
c = httpx.Client(transport=httpx.HTTPTransport(uds='/bridge/api.sock'),
                 base_url='http://bridge', timeout=10)
first = c.get('/api/bridge/whoami').status_code
open('/workspace/.bridge-watch', 'w').close()
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    r = c.get('/api/bridge/whoami')
    if r.status_code != 200:
        break
    time.sleep(0.01)
seen = json.dumps({'first': first, 'status': r.status_code, 'body': r.json()})
with open('/workspace/.bridge-seen', 'w') as f:  # first: the hub may stop us any moment now
    f.write(seen)
print(seen)
"""


def test_revoking_the_permit_stops_the_running_sandbox(up: Up) -> None:
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        r = spawn(api, "alice", "demo")
        assert r.status_code in (201, 202), r.text
        wait_ready(api, "alice", "demo")
        assert sandbox_pids(up)
        permits = json.loads(up.hdh("permit", "list", "--json").stdout)
        active = [p for p in permits if p["status"] == "active"][0]
        marker = up.data_dir / "workspaces" / "demo" / ".bridge-watch"
        result = marker.with_name(".bridge-seen")
        marker.unlink(missing_ok=True)
        result.unlink(missing_ok=True)
        revoked: list[subprocess.CompletedProcess[str]] = []

        def revoke_once_watched() -> None:
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            revoked.append(
                up.hdh("permit", "revoke", str(active["id"]), "--reason", "test: end of study")
            )

        # the kernel watches the bridge; the permit is revoked while it does
        browser = _lab_session(up, "alice", base)
        revoker = threading.Thread(target=revoke_once_watched)
        revoker.start()
        try:
            execute(up, browser, base, WATCH_BRIDGE)
        except (json.JSONDecodeError, websocket.WebSocketException):
            pass  # the hub's poll may stop the sandbox before the kernel's reply comes back
        finally:
            revoker.join(90)
            browser.close()
        assert revoked and revoked[0].returncode == 0, revoked
        assert result.exists(), "the kernel never saw the bridge refuse: " + up.log_tail()
        seen = json.loads(result.read_text())
        assert seen["first"] == 200
        assert seen["status"] == 403, seen
        assert seen["body"]["reason"] == "revoked" and "end of study" in seen["body"]["detail"]
        t0 = time.monotonic()
        while "demo" in api.get("/users/alice").json()["servers"] or sandbox_pids(up):
            assert time.monotonic() - t0 < POLL_INTERVAL * 3 + 10, up.log_tail()
            time.sleep(0.2)
    stops = [e for e in up.audit() if e["action"] == "sandbox.stop"]
    assert "end of study" in stops[-1]["details"]["reason"]
    # the bridge went with the sandbox
    assert not (up.data_dir / "sandboxes" / "demo--alice" / "bridge" / "api.sock").exists()


def test_the_control_plane_pages_log_in_through_the_hub(up: Up) -> None:
    anonymous = httpx.Client(timeout=30)
    r = anonymous.get(f"{up.url}/services/hdh/ui/", follow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["location"]
    c = login(up, "bob")
    page = follow(c, f"{up.url}/services/hdh/ui/")
    assert page.status_code == 200, page.text[:500]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "Your projects" in page.text and "bob" in page.text
    # the REST API is served under the service prefix too, and still needs its bearer token
    assert c.get(f"{up.url}/services/hdh/api/health").status_code == 200
    assert c.get(f"{up.url}/services/hdh/api/permits").status_code == 401
    # its Swagger page loads the OpenAPI spec from under the prefix, with no redirect
    docs = anonymous.get(f"{up.url}/services/hdh/api/docs")
    assert docs.status_code == 200
    spec_url = re.search(r"url: '([^']+)'", docs.text)
    assert spec_url and spec_url[1] == "/services/hdh/api/openapi.json", docs.text[:1000]
    spec = anonymous.get(f"{up.url}{spec_url[1]}", follow_redirects=False)
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "HDH control plane"


def test_choosing_another_dataset_version_restarts_the_sandbox_with_it(up: Up) -> None:
    raw = up.data_dir.parent / "second-extract"
    r = up.hdh(
        "data", "synth", "--patients", "40", "--seed", "11", "--raw", "--quiet", "--out", str(raw)
    )
    assert r.returncode == 0, r.stderr
    r = up.hdh("data", "ingest", str(raw), "--dataset", "demo-snds")
    assert r.returncode == 0, r.stderr
    r = up.hdh(
        "permit", "grant", "demo", "--member", "alice",
        "--dataset", "demo-snds/v1", "--dataset", "demo-snds/v2", "--days", "1",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        assert spawn(api, "alice", "demo").status_code in (201, 202)
        wait_ready(api, "alice", "demo")
        browser = _lab_session(up, "alice", base)
        panel = browser.get(f"{up.url}{base}hdh/mounts").json()
        assert [m["version"] for m in panel["mounts"]] == ["v2"]  # the newest by default
        assert [(p["version"], p["mounted"]) for p in panel["permitted"]] == [
            ("v1", False),
            ("v2", True),
        ]
        assert panel["change_url"] == "/services/hdh/ui/projects/demo/datasets"
        page = follow(browser, f"{up.url}/services/hdh/ui/projects/demo/datasets")
        assert page.status_code == 200, page.text[:500]
        assert "Saving restarts your sandbox" in page.text and "(it is running now)" in page.text
        form = re.search(r'name="_form" value="([0-9a-f]{64})"', page.text)
        assert form, page.text
        url = f"{up.url}/services/hdh/ui/projects/demo/datasets"
        # a post without the page's form token (another site's form) changes nothing
        forged = browser.post(url, data={"version": "demo-snds/v1"}, follow_redirects=False)
        assert forged.status_code == 403
        assert "demo" in api.get("/users/alice").json()["servers"]
        t0 = time.monotonic()
        done = browser.post(
            url, data={"version": "demo-snds/v1", "_form": form[1]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text[:500]
        assert done.headers["location"] == "/hub/spawn/alice/demo"
        assert "demo" not in api.get("/users/alice").json()["servers"]  # stopped before the reply
        lab = follow(browser, f"{up.url}/hub/spawn/alice/demo", limit=20)
        wait_ready(api, "alice", "demo")
        up.timings["mount_change_restart_s"] = time.monotonic() - t0
        assert lab.status_code == 200
        mounted = follow(browser, f"{up.url}{base}hdh/mounts").json()["mounts"]
        assert [m["version"] for m in mounted] == ["v1"]
        browser.close()
        api.delete("/users/alice/servers/demo")
        while "demo" in api.get("/users/alice").json()["servers"]:
            time.sleep(0.2)
    events = up.audit()
    chosen = [e for e in events if e["action"] == "mounts.select"][-1]
    assert chosen["actor"] == "alice" and chosen["details"]["mounts"] == ["demo-snds/v1"]
    start = [e for e in events if e["action"] == "sandbox.start"][-1]
    assert "demo-snds/v1" in json.dumps(start["details"]) and "v2" not in json.dumps(
        start["details"]["mounts"]
    )


DESK_CODE = (
    "import os\nopen('notes.txt', 'w').write('first results')\nprint(sorted(os.listdir('/data')))"
)


def test_the_access_desk_from_application_to_an_archived_workspace(up: Up) -> None:
    """Issue 14's whole path in the running product: alice applies, carol (committee) gives an
    opinion, the administrator records the authority's decision, which issues the permit;
    alice's sandbox of the new project mounts its data; the public register shows it
    without login; the permit ends: the sandbox stops and the workspace is archived."""
    api = up.api_url

    def call(user: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {up.creds[user]['token']}"}
        r = httpx.request(method, f"{api}{path}", json=body, headers=headers, timeout=60)
        assert r.status_code < 300, (path, r.status_code, r.text)
        return r.json()

    app = call(
        "alice",
        "POST",
        "/api/applications",
        {
            "kind": "new",
            "project": "desk-study",
            "title": "Parcours de soins des diabétiques",
            "purpose": "Décrire les parcours de soins.",
            "public_interest": "Mieux organiser le suivi.",
            "methodology": "Cohorte rétrospective.",
            "datasets": ["demo-snds"],
            "duration_days": 30,
        },
    )
    assert app["state"] == "submitted"
    opinion = {"opinion": "favourable", "text": "Protocole clair."}
    call("carol", "POST", f"/api/applications/{app['id']}/opinion", opinion)
    decision = {"decision": "favourable", "reference": "DR-2027-001"}
    decided = call("admin", "POST", f"/api/applications/{app['id']}/decide", decision)
    assert decided["state"] == "approved" and decided["permit"]
    # the register, through the hub's proxy, without login
    register = httpx.get(f"{up.url}/services/hdh/ui/register/", timeout=30)
    assert register.status_code == 200 and "Parcours de soins des diabétiques" in register.text
    base = "/user/alice/desk-study/"
    with up.api("alice") as hub_api:
        r = spawn(hub_api, "alice", "desk-study")
        assert r.status_code in (201, 202), r.text
        wait_ready(hub_api, "alice", "desk-study")
        browser = _lab_session(up, "alice", base)
        try:
            out, _ = execute(up, browser, base, DESK_CODE)
        finally:
            browser.close()
        assert out.strip() == "['demo-snds']"
        # the permit ends (an amendment brings its expiry to a few seconds from now)
        soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat(timespec="seconds")
        amended = up.hdh("permit", "amend", str(decided["permit"]), "--expires", soon)
        assert amended.returncode == 0, amended.stderr
        wait_for(
            lambda: "desk-study" not in hub_api.get("/users/alice").json()["servers"],
            "the hub to stop the sandbox of an expired permit",
            timeout=POLL_INTERVAL * 3 + 30,
        )
    marker = up.data_dir / "workspaces" / ".archive" / "desk-study.json"
    wait_for(marker.exists, "the control plane's sweep to archive the workspace", timeout=60)
    archived = json.loads(marker.read_text())
    assert archived["files"] >= 1 and "expired" in archived["reason"]
    notes = up.data_dir / "workspaces" / "desk-study" / "notes.txt"
    assert notes.read_text() == "first results" and not os.stat(notes).st_mode & 0o222
    actions = [e["action"] for e in up.audit()]
    path = ("application.submit", "application.opinion", "application.decide", "permit.grant")
    for action in (*path, "sandbox.start", "sandbox.stop", "workspace.archive"):
        assert action in actions, action
    ended = httpx.get(f"{up.url}/services/hdh/api/register", timeout=30).json()
    project = next(p for p in ended["projects"] if p["slug"] == "desk-study")
    assert project["status"] == "ended" and project["holder"] == ["alice"]
    assert project["decisions"][0]["reference"] == "DR-2027-001"


def test_ctrl_c_stops_hub_proxy_guard_and_sandboxes(up: Up) -> None:
    # a running sandbox again (new permit), so Ctrl-C has one to stop
    r = up.hdh(
        "permit", "grant", "demo", "--member", "alice", "--dataset", "demo-snds", "--days", "1"
    )
    assert r.returncode == 0, r.stderr
    with up.api("alice") as api:
        assert spawn(api, "alice", "demo").status_code in (201, 202)
        wait_ready(api, "alice", "demo")
    tree = psutil.Process(up.proc.pid).children(recursive=True)
    names = " ".join(" ".join(p.cmdline()) for p in tree)
    for part in ("jupyterhub", "configurable-http-proxy", "hdh-guard", "bwrap", "jupyter_server"):
        assert part in names, names
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(60) == 0
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not sandbox_pids(up)
    # state persists: the hub's database and secrets stay for the next start
    assert (up.data_dir / "jupyterhub" / "jupyterhub.sqlite").exists()
    assert oct((up.data_dir / "jupyterhub" / "cookie_secret").stat().st_mode & 0o777) == "0o600"
