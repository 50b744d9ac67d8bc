"""A sandbox supervised by an unprivileged user (the hub not run as root), for real.

CI runs as root, where sandboxes run as their project's own uid without a user
namespace. The other path — an ordinary user's hub, whose sandboxes get a user
namespace where they are uid 1000 — is run here from a real unprivileged uid:
a root-made view of the host (an outer bwrap: the same filesystem, with the
folders that user could not walk, such as ``/root`` above a pyenv interpreter,
replaced by a tmpfs holding only what Python needs), then ``setpriv`` to a uid
no account holds, which starts a sandbox with the ordinary ``Sandbox`` API.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="becoming another uid needs root (unprivileged: the normal path)"
)

REPO = Path(__file__).resolve().parents[2]

SUPERVISOR = r"""
import errno, json, os, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.sandbox.conftest import make_site
from jupyterlab_hdh.sandbox import Sandbox
from jupyterlab_hdh.sandbox.process import descendants

site = make_site(Path(tempfile.mkdtemp(prefix="hdh-unpriv-")))
spec = site.spec("p1", "alice", [("ds_a", "v1")])
code = '''
import errno, json, os, socket
import pyarrow.parquet as pq
def err(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
print(json.dumps({
    "uid": os.getuid(),
    "rows": pq.read_table("/data/ds_a/v1/part-0.parquet").num_rows,
    "write_data": err(lambda: open("/data/ds_a/v1/x", "w")),
    "other_workspace": err(lambda: os.listdir(%r)),
    "tcp": err(lambda: socket.create_connection(("1.1.1.1", 53), timeout=3)),
}))
''' % str(site.workspaces / "p2")
with Sandbox(spec) as sb:
    r = sb.client(timeout=60).execute(code)
    inside = json.loads(r.stdout.strip().splitlines()[-1]) if r.error is None else r.error
    host_uids = set()
    for pid in descendants(sb.pid):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        host_uids.add(int(next(l for l in status if l.startswith("Uid:")).split()[1]))
print(json.dumps({"host": spec.host, "inside": inside, "host_uids": sorted(host_uids),
                  "supervisor": os.getuid()}))
"""


def _free_uid() -> int:
    for uid in range(4242, 5000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("no free uid")  # pragma: no cover


def _unwalkable_tops(paths: list[Path]) -> list[str]:
    """The outermost folders above ``paths`` that another user may not walk into."""
    tops: list[str] = []
    for p in paths:
        for parent in reversed(p.parents):
            if str(parent) != "/" and not os.stat(parent).st_mode & 0o001:
                if str(parent) not in tops:
                    tops.append(str(parent))
                break
    return tops


def test_an_unprivileged_supervisor_runs_a_sandbox_in_a_user_namespace(
    bwrap_ok: None, tmp_path: Path
) -> None:
    needed = [Path(sys.base_prefix).resolve(), Path(sys.prefix), REPO]
    needed += [Path(sys.executable).resolve().parent]
    view = ["bwrap", "--dev-bind", "/", "/"]
    tops = _unwalkable_tops(needed)
    for top in tops:
        view += ["--perms", "0755", "--tmpfs", top]
    for p in needed:
        for parent in reversed(p.parents):  # walkable folders down to each path
            if any(parent.is_relative_to(t) and str(parent) != t for t in tops):
                view += ["--perms", "0755", "--dir", str(parent)]
        view += ["--ro-bind", str(p), str(p)]
    scratch = "/tmp/hdh-unprivileged"  # noqa: S108 - a tmpfs of the view only
    view += ["--perms", "01777", "--tmpfs", scratch, "--setenv", "TMPDIR", scratch]
    uid = _free_uid()
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    r = subprocess.run(
        [*view, "--", *drop, sys.executable, "-c", SUPERVISOR, str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["supervisor"] == uid and out["host"] is None  # no host identity: a user namespace
    inside = out["inside"]
    assert inside["uid"] == 1000 and inside["rows"] == 3, inside
    assert inside["write_data"] in (30, 13), inside  # EROFS / EACCES
    assert inside["other_workspace"] == 2, inside  # ENOENT: not even there
    assert inside["tcp"] in (101, 113, 99), inside  # ENETUNREACH / EHOSTUNREACH / EADDRNOTAVAIL
    assert out["host_uids"] == [uid], out  # every process of it, bwrap included, is that user
