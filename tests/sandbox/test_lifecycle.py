"""Lifecycle of REAL sandboxes: one at a time per (project, user), clean stop, clear errors."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest

from jupyterlab_hdh.sandbox import (
    Sandbox,
    SandboxBusyError,
    SandboxClient,
    SandboxClientError,
    SandboxConfigError,
    SandboxStartError,
)
from jupyterlab_hdh.sandbox.process import descendants
from tests.sandbox.conftest import Site

pytestmark = pytest.mark.timeout(120)


def test_second_start_is_refused_and_first_keeps_running(sandbox: Sandbox, site: Site) -> None:
    twin = Sandbox(site.spec("p1", "alice", [("ds_a", "v1")]))
    with pytest.raises(SandboxBusyError, match="already running"):
        twin.start()
    twin.stop()  # a refused twin owns nothing: stopping it touches nothing
    assert sandbox.alive
    assert sandbox.socket_path.exists()
    assert sandbox.client().status()["kernels"] >= 0
    with pytest.raises(SandboxBusyError):
        sandbox.start()


def test_stop_leaves_no_process_and_no_socket(bwrap_ok: None, site: Site) -> None:
    sb = Sandbox(site.spec("p2", "bob", [("ds_b", "v1")]))
    t0 = time.monotonic()
    sb.start()
    client = sb.client()
    r = client.execute("print(6 * 7)")
    first_reply = time.monotonic() - t0
    assert r.stdout.strip() == "42"
    kid = client.start_kernel()  # leave a kernel running on purpose
    assert sb.pid is not None
    procs = [psutil.Process(p) for p in [sb.pid, *descendants(sb.pid)]]
    assert len(procs) >= 4  # bwrap, bwrap init, server, kernel
    sb.stop()
    gone, alive = psutil.wait_procs(procs, timeout=5)
    assert alive == []
    assert not sb.alive
    assert not os.path.lexists(sb.socket_path)
    assert kid
    # the lock is released: the same sandbox starts again
    sb.start()
    # a server that dies on its own: the next start() cleans up and starts again
    assert sb.pid is not None
    os.kill(sb.pid, 9)
    time.sleep(0.5)
    assert not sb.alive
    sb.start()
    assert sb.client().status()
    sb.stop()
    print(f"start to first execute_reply: {first_reply:.2f} s")


def test_stop_is_idempotent_and_kills_a_stuck_server(bwrap_ok: None, site: Site) -> None:
    sb = Sandbox(site.spec("p2", "carol", []), stop_grace=0.5)
    sb.start()
    assert sb.pid is not None
    procs = [psutil.Process(p) for p in [sb.pid, *descendants(sb.pid)]]
    for p in procs[2:]:  # the server ignores SIGTERM (a user could do this)
        p.suspend()
    sb.stop()
    sb.stop()
    _, alive = psutil.wait_procs(procs, timeout=5)
    assert alive == []


def test_missing_dataset_gives_clear_error_and_nothing_started(bwrap_ok: None, site: Site) -> None:
    spec = site.spec("p2", "dave", [("ds_a", "v1"), ("ds_a", "v7")])
    before = {p.pid for p in psutil.process_iter()}
    with pytest.raises(SandboxConfigError, match="ds_a version v7 is not available"):
        Sandbox(spec).start()
    assert not spec.runtime_dir.exists()
    new = [p for p in psutil.process_iter() if p.pid not in before and p.name() == "bwrap"]
    assert new == []


def test_a_sandbox_never_runs_as_the_hosts_root(bwrap_ok: None, site: Site) -> None:
    """A root supervisor must name an unprivileged host identity; without root, none works."""
    from jupyterlab_hdh.sandbox import HostIdentity

    if os.geteuid() == 0:
        spec = site.spec("p2", "hank", [], host=None)
        message = "refusing to run a sandbox as the host's root"
    else:
        spec = site.spec("p2", "hank", [], host=HostIdentity.for_project(2))
        message = "only a root supervisor"
    with pytest.raises(SandboxConfigError, match=message):
        Sandbox(spec).start()
    assert not spec.runtime_dir.exists()  # refused before anything was created


@pytest.mark.skipif(os.geteuid() != 0, reason="host identities are a root supervisor's")
def test_host_ids_a_host_user_or_group_holds_are_refused(bwrap_ok: None, site: Site) -> None:
    """The sandbox must not share a uid with a real account (nobody, 65534, exists everywhere)."""
    from jupyterlab_hdh.sandbox import HostIdentity

    spec = site.spec("p2", "ivan", [], host=HostIdentity(65534, 65534, 200000))
    with pytest.raises(SandboxConfigError, match="uid 65534 is user nobody.*host_id_base"):
        Sandbox(spec).start()
    assert not spec.runtime_dir.exists()


def test_server_that_dies_gives_its_log_and_releases_the_lock(
    bwrap_ok: None, site: Site, tmp_path: Path
) -> None:
    broken = tmp_path / "venv"
    (broken / "bin").mkdir(parents=True)
    spec = site.spec("p2", "erin", [], python_prefix=broken)
    with pytest.raises(SandboxStartError, match="exited") as err:
        Sandbox(spec, start_timeout=20).start()
    assert "bin/python" in str(err.value)  # bwrap's execvp message, from the log
    assert not os.path.lexists(spec.socket_path)
    with pytest.raises(SandboxStartError):
        Sandbox(spec, start_timeout=20).start()  # not SandboxBusyError: lock released


def test_sandbox_cannot_redirect_its_socket_or_block_a_restart(bwrap_ok: None, site: Site) -> None:
    """Kernel code replaces /sock/jupyter.sock by a folder; stop and restart still work."""
    sb = Sandbox(site.spec("p2", "gina", []))
    sb.start()
    client = sb.client()
    code = (
        "import os\n"
        "os.rename('/sock/jupyter.sock', '/sock/old')\n"
        "os.mkdir('/sock/jupyter.sock')\n"
        "os.symlink('/etc/passwd', '/sock/jupyter.sock/x')\n"
        "print('done')\n"
    )
    assert client.execute(code).stdout.strip() == "done"
    with pytest.raises(SandboxClientError, match="not a socket"):
        client.status()
    sb.stop()
    assert not sb.spec.host_sock_dir.exists()
    sb.start()
    assert sb.client().status()
    sb.stop()


def test_client_refuses_a_symlinked_socket(sandbox: Sandbox, tmp_path: Path) -> None:
    """The sandbox can write /sock: a symlink there must never lead the host elsewhere."""
    other = tmp_path / "other.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(other))
    srv.listen(1)
    link = tmp_path / "jupyter.sock"
    link.symlink_to(other)
    try:
        with pytest.raises(SandboxClientError, match="not a socket"):
            SandboxClient(link, "/").status()
    finally:
        srv.close()


def test_memory_limit_applies(bwrap_ok: None, site: Site) -> None:
    sb = Sandbox(site.spec("p2", "frank", [], memory_limit=768 * 2**20))
    sb.start()
    try:
        assert sb.limits.memory != "none"
        client = sb.client(timeout=60)
        kid = client.start_kernel()
        code = "x = bytearray(2 * 1024**3); x[::4096] = b'1' * len(x[::4096]); print('allocated')"
        try:
            r = client.execute(code, kernel_id=kid, timeout=30)
            # rlimit: MemoryError in the kernel
            assert r.error is not None and r.error[0] == "MemoryError"
        except SandboxClientError as e:
            # cgroup: the kernel is OOM-killed, the server reports it restarting
            assert sb.limits.memory.startswith("cgroup")
            assert "died" in str(e)
        assert client.status()["kernels"] >= 1  # the server itself survived
        print(f"memory limit via {sb.limits.describe()}")
        assert sb.alive
    finally:
        sb.stop()
