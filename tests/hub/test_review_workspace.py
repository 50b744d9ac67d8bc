"""The review workspace for real: ``hdh up`` → hub → guard → a bubblewrap sandbox with no dataset.

The named server ``review`` is a reviewer's own JupyterLab (issue 12, item 2): bob (a
reviewer in the demo) finds it on the hub's home page and on the control plane's review list,
spawns it, and code run in it through the guard sees no ``/data`` mount, no API bridge, and
writes to his own folder ``<data-dir>/review-workspaces/bob/``, which outlives the server;
under a root hub it runs as bob's review uid (``review_id_base + his user id``), not a
project's, without the data group. The code is audited like any project's. Refusals: a
researcher's spawn of ``review`` (403, one line), a researcher and another reviewer reaching
bob's workspace through the guard, a project called ``review``, and the workspace of a
reviewer whose account is disabled (the hub's poll stops it).

One ``hdh up`` for this module (the ``up`` fixture of ``test_embedded_hub.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import psutil
from sqlalchemy import select

from jupyterlab_hdh.hub.config import hub_api
from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE, REVIEW_ID_BASE
from tests.hub import test_embedded_hub
from tests.hub.test_embedded_hub import (
    POLL_INTERVAL,
    Up,
    _lab_session,
    execute,
    follow,
    login,
    sandbox_pids,
    spawn,
    wait_ready,
)
from tests.waiting import wait_for

pytestmark = test_embedded_hub.pytestmark  # skipped where bwrap or the proxy is missing
up = test_embedded_hub.up  # this module's own `hdh up` (a module-scoped fixture)

BASE = "/user/bob/review/"
#: What the review sandbox sees of itself, from a kernel started through the guard.
LOOK_AROUND = """
import json, os
open('/workspace/notes.txt', 'w').write('checked table 2 of request 1')
print(json.dumps({
    'data': os.listdir('/data'),
    'bridge': os.listdir('/bridge'),
    'bridge_sock': os.path.exists('/bridge/api.sock'),
    'cwd': os.getcwd(),
    'uid': os.getuid(),
    'gid': os.getgid(),
    'groups': os.getgroups(),
    'project': os.environ.get('HDH_PROJECT'),
    'keys': os.path.exists(%(keys)r),
}))
"""


def review_uid(up: Up, user: str) -> int:
    """The host uid (= gid) a root hub runs ``user``'s review workspace as."""
    from jupyterlab_hdh.context import open_installation
    from jupyterlab_hdh.paths import DataDir
    from jupyterlab_hdh.store.models import User

    hub = open_installation(DataDir.resolve(up.data_dir))
    with hub.sessions() as s:
        user_id = s.execute(select(User.id).where(User.name == user)).scalar_one()
    return REVIEW_ID_BASE + user_id


def review_pids(up: Up, user: str) -> list[int]:
    """The processes inside ``user``'s review sandbox (bwrap itself left out)."""
    runtime = str(up.data_dir / "sandboxes" / f"review--{user}")
    return [
        p.pid
        for outer in sandbox_pids(up)
        if runtime in " ".join(psutil.Process(outer).cmdline())
        for p in psutil.Process(outer).children(recursive=True)
        if p.name() != "bwrap"
    ]


def supplementary_groups(pid: int) -> set[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Groups:"):
            return {int(g) for g in line.split()[1:]}
    raise AssertionError(f"no Groups line for {pid}")


def servers(up: Up, user: str) -> dict[str, object]:
    """``user``'s servers, as the hub's ``hdh-cli`` service sees them (``user`` may be
    disabled, their own tokens then refused)."""
    api, token = hub_api(up.data_dir)
    r = httpx.get(f"{api}/users/{user}", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json()["servers"])


# --- the tests, in order: they share the running hub ------------------------------------------


def test_a_reviewer_is_offered_the_review_workspace(up: Up) -> None:
    bob = login(up, "bob")
    try:
        home = bob.get(f"{up.url}/hub/home")
        assert home.status_code == 200
        assert 'href="/hub/spawn/bob/review">Open the review workspace</a>' in home.text
        page = follow(bob, f"{up.url}/services/hdh/ui/egress/")
        assert page.status_code == 200, page.text[:500]
        assert 'href="/hub/spawn/bob/review">Review in JupyterLab</a>' in page.text
        page = bob.get(f"{up.url}/services/hdh/ui/egress/", headers={"Accept-Language": "fr"})
        assert 'href="/hub/spawn/bob/review">Relire dans JupyterLab</a>' in page.text
    finally:
        bob.close()
    alice = login(up, "alice")  # a researcher: neither link
    try:
        assert "review workspace" not in alice.get(f"{up.url}/hub/home").text
        page = follow(alice, f"{up.url}/services/hdh/ui/egress/")
        assert page.status_code == 200 and "spawn/alice/review" not in page.text
    finally:
        alice.close()


def test_a_reviewer_works_in_a_sandbox_with_no_dataset_and_no_bridge(up: Up) -> None:
    with up.api("bob") as api:
        r = spawn(api, "bob", "review")
        assert r.status_code in (201, 202), r.text
        wait_ready(api, "bob", "review")
    browser = _lab_session(up, "bob", BASE)
    try:
        lab = browser.get(f"{up.url}{BASE}lab")
        assert lab.status_code == 200 and "<html" in lab.text.lower()
        code = LOOK_AROUND % {"keys": str(up.data_dir / "keys")}
        out, _ = execute(up, browser, BASE, code)
        seen = json.loads(out.strip().splitlines()[-1])
        # the sandbox's server extension has no bridge to call: it says so, acting as no one
        whoami = browser.get(f"{up.url}{BASE}hdh/whoami")
        assert whoami.status_code == 503, whoami.text
        home = browser.get(f"{up.url}/hub/home")  # the running server is listed
        assert 'data-server-name="review"' in home.text and "(review workspace)" in home.text
    finally:
        browser.close()
    assert seen["data"] == [] and seen["bridge"] == [] and seen["bridge_sock"] is False, seen
    assert seen["cwd"] == "/workspace" and seen["project"] == "review" and not seen["keys"]
    notes = up.data_dir / "review-workspaces" / "bob" / "notes.txt"
    assert notes.read_text() == "checked table 2 of request 1"
    assert oct(notes.parent.parent.stat().st_mode & 0o777) == "0o700"
    events = up.audit()
    starts = [e for e in events if e["action"] == "sandbox.start" and e["actor"] == "bob"]
    assert starts[-1]["details"]["project"] == "review"
    assert starts[-1]["details"]["mounts"] == [] and starts[-1]["details"]["permit"] is None
    assert starts[-1]["target"] == "sandbox:review--bob"
    executed = [e for e in events if e["action"] == "code.execute" and e["actor"] == "bob"]
    assert any(
        e["details"].get("code") == code and e["details"].get("project") == "review"
        for e in executed
    ), executed[-3:]
    assert not (up.data_dir / "sandboxes" / "review--bob" / "bridge" / "api.sock").exists()
    if os.geteuid() == 0:  # a root hub: bob's review uid, no project's, not in the data group
        uid = review_uid(up, "bob")
        assert (seen["uid"], seen["gid"]) == (uid, uid)
        assert HOST_ID_BASE not in seen["groups"] and set(seen["groups"]) <= {uid}
        inner = review_pids(up, "bob")
        assert inner and {psutil.Process(p).uids().real for p in inner} == {uid}, inner
        assert all(HOST_ID_BASE not in supplementary_groups(p) for p in inner)
        ws = notes.parent
        assert (ws.stat().st_uid, ws.stat().st_gid) == (uid, uid)
        assert oct(ws.stat().st_mode & 0o777) == "0o700"


def test_nobody_else_reaches_a_reviewers_workspace(up: Up) -> None:
    """alice (a researcher) and carol (a committee member, who has her own) get 403 from the
    guard on bob's running review server; the guard refuses them before it reaches the sandbox."""
    assert "review" in servers(up, "bob")
    for intruder in ("alice", "carol"):
        c = login(up, intruder)
        try:
            for path in ("lab", "api/contents/notes.txt", "api/kernels"):
                r = follow(c, f"{up.url}{BASE}{path}")
                assert r.status_code == 403, (intruder, path, r.status_code, r.text[:300])
                assert r.json()["message"] == "this server belongs to another user", r.text
        finally:
            c.close()


def test_a_researchers_spawn_of_review_is_refused_with_the_reason(up: Up) -> None:
    reason = "review is the reviewers' workspace: alice is a researcher"
    with up.api("alice") as api:
        r = spawn(api, "alice", "review")
        assert r.status_code == 403, r.text
        assert r.json()["message"] == reason
    browser = login(up, "alice")
    try:
        page = follow(browser, f"{up.url}/hub/spawn/alice/review")
        assert page.status_code == 403, page.text[:500]
        assert reason in page.text.replace("&#39;", "'")
    finally:
        browser.close()
    assert "review" not in servers(up, "alice")
    assert not (up.data_dir / "review-workspaces" / "alice").exists()
    assert all(
        "review--alice" not in " ".join(psutil.Process(p).cmdline()) for p in sandbox_pids(up)
    )


def test_no_project_may_be_called_review(up: Up) -> None:
    r = up.hdh("project", "create", "review", "--title", "Review", "--purpose", "a clash")
    assert r.returncode != 0
    assert "reserved for the reviewers' workspaces" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    listed = json.loads(up.hdh("project", "list", "--json").stdout)
    assert "review" not in [p["slug"] for p in listed]


def test_the_workspace_outlives_its_server_and_a_disabled_reviewer_loses_it(up: Up) -> None:
    """Stopped and started again, bob's notes are there; disabled, his workspace stops within
    a poll (the spawner's poll asks the same question as the spawn)."""
    with up.api("bob") as api:
        assert api.delete("/users/bob/servers/review").status_code in (202, 204)
        wait_for(lambda: "review" not in servers(up, "bob"), "bob's review server to stop")
        assert spawn(api, "bob", "review").status_code in (201, 202)
        wait_ready(api, "bob", "review")
    browser = _lab_session(up, "bob", BASE)
    try:
        notes = browser.get(f"{up.url}{BASE}api/contents/notes.txt")
        assert notes.status_code == 200, notes.text
        assert notes.json()["content"] == "checked table 2 of request 1"
    finally:
        browser.close()
    assert up.hdh("user", "disable", "bob").returncode == 0
    try:
        wait_for(
            lambda: "review" not in servers(up, "bob") and not review_pids(up, "bob"),
            "the disabled reviewer's workspace to stop",
            timeout=POLL_INTERVAL * 3 + 20,
        )
        stops = [
            e
            for e in up.audit()
            if e["action"] == "sandbox.stop" and e["target"] == "sandbox:review--bob"
        ]
        assert "disabled" in stops[-1]["details"]["reason"], stops[-1]
    finally:
        assert up.hdh("user", "enable", "bob").returncode == 0
