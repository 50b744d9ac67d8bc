"""The attack suite: code in a kernel of a REAL sandbox tries to get out, and fails.

One sandbox (project p1, user alice, datasets ds_a/v1 and ds_b/v1) and one
kernel are shared by the module. Each test runs attacker code in the kernel
and checks the outcome on both sides where it can (e.g. a host listener that
must receive nothing).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_hdh.sandbox import Sandbox, SandboxClient
from jupyterlab_hdh.sandbox.process import descendants
from tests.sandbox.conftest import CANARY_ENV, Site

pytestmark = pytest.mark.timeout(120)


def run(client: SandboxClient, kernel: str, code: str) -> Any:
    """Run ``code`` (which must end by printing one JSON value) and decode it."""
    r = client.execute(code, kernel_id=kernel)
    assert r.error is None, (r.error, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def attempt(expr: str) -> str:
    """Kernel code printing {"ok": bool, "err": errno/exception name} for one statement."""
    return (
        "import json, os, socket\n"
        "try:\n"
        f"    {expr}\n"
        "    out = {'ok': True, 'err': None}\n"
        "except Exception as e:\n"
        "    out = {'ok': False, 'err': getattr(e, 'errno', None) or type(e).__name__}\n"
        "print(json.dumps(out))\n"
    )


# -- network ------------------------------------------------------------------


def test_tcp_to_internet_fails(client: SandboxClient, kernel: str) -> None:
    out = run(
        client,
        kernel,
        attempt("socket.create_connection(('1.1.1.1', 443), timeout=3)"),
    )
    assert out["ok"] is False


def test_tcp_to_host_listener_fails(client: SandboxClient, kernel: str) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        out = run(
            client, kernel, attempt(f"socket.create_connection(('127.0.0.1', {port}), timeout=3)")
        )
        assert out["ok"] is False
        with pytest.raises(TimeoutError):
            srv.accept()
    finally:
        srv.close()


def test_udp_goes_nowhere(client: SandboxClient, kernel: str) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(1.0)
    port = sink.getsockname()[1]
    try:
        code = (
            "import json, socket\n"
            "res = {}\n"
            "for host in ('8.8.8.8', '127.0.0.1'):\n"
            "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "    try:\n"
            "        s.sendto(b'exfil', (host, 53))\n"
            f"        s.sendto(b'exfil', (host, {port}))\n"
            "        res[host] = 'sent'\n"
            "    except OSError as e:\n"
            "        res[host] = e.errno\n"
            "print(json.dumps(res))\n"
        )
        out = run(client, kernel, code)
        assert out["8.8.8.8"] != "sent"  # ENETUNREACH: no route at all
        # 127.0.0.1 is the sandbox's own loopback: the host listener gets nothing
        with pytest.raises(TimeoutError):
            sink.recvfrom(100)
    finally:
        sink.close()


def test_dns_fails(client: SandboxClient, kernel: str) -> None:
    out = run(client, kernel, attempt("socket.getaddrinfo('example.org', 80)"))
    assert out["ok"] is False


def test_only_loopback_interface(client: SandboxClient, kernel: str) -> None:
    out = run(client, kernel, "import json, socket; print(json.dumps(socket.if_nameindex()))")
    assert [name for _, name in out] == ["lo"]


# -- filesystem ---------------------------------------------------------------


def test_other_project_workspace_unreachable(
    client: SandboxClient, kernel: str, site: Site
) -> None:
    other = site.workspaces / "p2" / "secret.txt"
    assert other.exists()
    assert run(client, kernel, attempt(f"open({str(other)!r}).read()"))["ok"] is False
    out = run(client, kernel, attempt(f"os.listdir({str(site.workspaces)!r})"))
    assert out["ok"] is False


def test_only_permitted_dataset_versions_visible(client: SandboxClient, kernel: str) -> None:
    code = (
        "import json, os\n"
        "print(json.dumps({d: sorted(os.listdir('/data/' + d)) for d in os.listdir('/data')}))\n"
    )
    assert run(client, kernel, code) == {"ds_a": ["v1"], "ds_b": ["v1"]}
    assert run(client, kernel, attempt("open('/data/ds_a/v2/part-0.parquet')"))["ok"] is False


def test_datasets_readable_in_the_sandbox(client: SandboxClient, kernel: str) -> None:
    code = (
        "import json, pyarrow.parquet as pq\n"
        "t = pq.read_table('/data/ds_a/v1/part-0.parquet')\n"
        "print(json.dumps(t.column('tag').to_pylist()))\n"
    )
    assert run(client, kernel, code) == ["ds_a-v1"] * 3


@pytest.mark.parametrize(
    "expr",
    [
        "open('/data/ds_a/v1/new.txt', 'w')",
        "open('/data/ds_a/v1/part-0.parquet', 'r+b').write(b'x')",
        "os.unlink('/data/ds_a/v1/part-0.parquet')",
        "os.rename('/data/ds_a/v1/part-0.parquet', '/data/ds_a/v1/p.parquet')",
        "os.mkdir('/data/ds_a/v1/sub')",
        "os.mkdir('/data/ds_c')",
        "os.rmdir('/data/ds_b/v1')",
        "os.chmod('/data/ds_a/v1/part-0.parquet', 0o777)",
        "open('/usr/evil', 'w')",
        "open('/etc/passwd', 'a')",
        "open('/etc/hosts', 'a')",
        "open('/etc/nsswitch.conf', 'a')",
    ],
)
def test_read_only_everywhere_but_workspace(client: SandboxClient, kernel: str, expr: str) -> None:
    import errno

    out = run(client, kernel, attempt(expr))
    assert out["ok"] is False
    assert out["err"] in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EBUSY), out


def test_workspace_is_writable_and_shared_with_host(
    client: SandboxClient, kernel: str, site: Site
) -> None:
    run(client, kernel, attempt("open('/workspace/result.csv', 'w').write('a,b\\n')"))
    assert (site.workspaces / "p1" / "result.csv").read_text() == "a,b\n"


def test_run_and_host_secrets_absent(client: SandboxClient, kernel: str, site: Site) -> None:
    paths = [
        "/run",
        "/var/run",
        str(site.hdh),
        str(site.keys),
        str(site.keys / "pseudonymisation.key"),
        str(site.hdh / "hdh.sqlite"),
        "/root/.ssh",
        "/root/.bash_history",
        "/work/main/.git",
        "/work/main/tests",
        "/etc/shadow",
        "/etc/ssh",
        "/var/run/docker.sock",
    ]
    code = (
        "import json, os\n"
        f"paths = {paths!r}\n"
        "print(json.dumps({p: os.path.exists(p) and (not os.path.isdir(p) or bool(os.listdir(p)))"
        " for p in paths}))\n"
    )
    out = run(client, kernel, code)
    assert out == dict.fromkeys(paths, False)


def test_no_secret_bytes_anywhere_reachable(client: SandboxClient, kernel: str) -> None:
    """Walk every reachable file system but /proc and /sys: the key's bytes are nowhere."""
    code = (
        "import json, os\n"
        "hits = []\n"
        "for top in ('/tmp', '/home', '/data', '/workspace', '/sock', '/etc', '/var'):\n"
        "    for d, _, files in os.walk(top):\n"
        "        for f in files:\n"
        "            p = os.path.join(d, f)\n"
        "            try:\n"
        "                if b'TOP-SECRET-KEY' in open(p, 'rb').read(1 << 20):\n"
        "                    hits.append(p)\n"
        "            except OSError:\n"
        "                pass\n"
        "print(json.dumps(hits))\n"
    )
    assert run(client, kernel, code) == []


# -- identity, processes, environment --------------------------------------------


def test_identity_is_unprivileged(client: SandboxClient, kernel: str, sandbox: Sandbox) -> None:
    """uid 1000 in a user namespace, or (root supervisor) the project's own host uid.

    Either way: no capability in any set, no_new_privs (setuid binaries give nothing).
    """
    code = (
        "import json, os, pwd\n"
        "st = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "caps = [st[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')]\n"
        "me = pwd.getpwuid(os.getuid()).pw_name\n"
        "print(json.dumps([os.getuid(), os.getgid(), me, caps, st['NoNewPrivs'].strip()]))\n"
    )
    host = sandbox.spec.host
    uid, gid = (1000, 1000) if host is None else (host.uid, host.gid)
    assert run(client, kernel, code) == [uid, gid, "jovyan", ["0" * 16] * 5, "1"]


def test_root_supervisor_never_runs_the_sandbox_as_root(
    sandbox: Sandbox, client: SandboxClient, kernel: str
) -> None:
    """Seen from the host: every sandbox process but bwrap's own runs as the project's uid."""
    host = sandbox.spec.host
    if host is None:
        pytest.skip("an unprivileged supervisor: the sandbox is its uid in a user namespace")
    assert sandbox.pid is not None
    owners = {}
    for pid in descendants(sandbox.pid):
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        status = dict(line.split(":", 1) for line in lines)
        owners[comm] = [int(x) for x in status["Uid"].split()]
    assert owners.pop("bwrap") == [0, 0, 0, 0]  # bwrap itself: the sandbox's init
    assert owners and all(ids == [host.uid] * 4 for ids in owners.values()), owners
    ws = sandbox.spec.workspace
    assert (ws.stat().st_uid, ws.stat().st_gid) == (host.uid, host.gid)
    # what the kernel writes belongs to the project's uid on the host, not to root
    code = "open('/workspace/made-here.txt', 'w').write('x'); print(1)"
    assert run(client, kernel, code) == 1
    made = (ws / "made-here.txt").stat()
    assert (made.st_uid, made.st_gid) == (host.uid, host.gid)
    # bwrap, the sandbox's root-owned init, is out of reach: no signal, no peek
    for expr in ("os.kill(1, 0)", "open('/proc/1/environ').read()", "os.listdir('/proc/1/root')"):
        assert run(client, kernel, attempt(expr))["ok"] is False, expr


def test_own_pid_namespace(client: SandboxClient, kernel: str) -> None:
    code = (
        "import json, os\n"
        "cmd = open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode()\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "argvs = [open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0') for p in pids]\n"
        "print(json.dumps([cmd, len(pids), any(b'pytest' in a[:3] for a in argvs)]))\n"
    )
    init, count, sees_pytest = run(client, kernel, code)
    assert os.path.basename(init) == "bwrap"  # the sandbox's own init, not the host's
    assert count < 10
    assert sees_pytest is False


def test_host_environment_not_inherited(client: SandboxClient, kernel: str) -> None:
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    env = run(client, kernel, code)
    assert CANARY_ENV not in env
    assert env["HOME"] == "/home/jovyan"
    assert not any(k.startswith(("SSH_", "AWS_", "JUPYTERHUB_", "HDH_DATA")) for k in env)


def test_cannot_send_signals_out(client: SandboxClient, kernel: str) -> None:
    # the host pid of the test runner does not exist in the sandbox (or is another process)
    out = run(client, kernel, attempt(f"os.kill({os.getpid()}, 0)"))
    assert out["ok"] is False


# -- the server and its socket ----------------------------------------------------


def _server_pid(sandbox: Sandbox) -> int:
    assert sandbox.pid is not None
    for pid in descendants(sandbox.pid):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"jupyter_server" in cmd:
            return pid
    raise AssertionError("no jupyter_server process found")


def test_server_listens_only_on_the_unix_socket(sandbox: Sandbox) -> None:
    pid = _server_pid(sandbox)
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening_tcp = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN, owned by the server
                listening_tcp.append(cols[1])
    assert listening_tcp == []


def test_socket_is_owner_only(sandbox: Sandbox) -> None:
    st = os.lstat(sandbox.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sandbox.socket_path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sandbox.spec.runtime_dir).st_mode) == 0o700


def test_files_handler_removed(client: SandboxClient) -> None:
    r = client.request("GET", "files/result.csv")
    assert r.status == 404
    assert client.request("GET", "lsp/status").status == 404  # jupyter-lsp disabled


def test_symlink_to_dataset_through_contents_api(client: SandboxClient, kernel: str) -> None:
    """A workspace link to a dataset file or folder is not served by the contents API.

    jupyter-server's root check is lexical (``/workspace/link.parquet`` is inside
    the root); the sandbox's ConfinedContentsManager resolves links and refuses
    (defense in depth: the guard refuses base64 and binary reads anyway).
    """
    run(
        client,
        kernel,
        attempt("os.symlink('/data/ds_a/v1/part-0.parquet', '/workspace/link.parquet')"),
    )
    for fmt in ("base64", "text", None):
        r = client.contents("link.parquet", content=True, fmt=fmt)
        assert r.status == 403, (fmt, r.status)
    run(client, kernel, attempt("os.symlink('/data/ds_b', '/workspace/dslink')"))
    assert client.contents("dslink/v1/part-0.parquet", content=True, fmt="base64").status == 403
    assert client.contents("dslink", content=True).status == 403
    # the workspace itself still works, and a link can be deleted without touching its target
    assert client.contents("", content=True).status == 200
    assert client.request("DELETE", "api/contents/link.parquet").status == 204
    assert run(
        client,
        kernel,
        "import json,os;print(json.dumps(os.path.exists('/data/ds_a/v1/part-0.parquet')))",
    )


def test_tornado_resolver_reaches_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    """The guard's path: Tornado HTTP and websocket clients through UnixSocketResolver."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.simple_httpclient import SimpleAsyncHTTPClient
    from tornado.websocket import websocket_connect

    from jupyterlab_hdh.sandbox.client import UnixSocketResolver

    base = sandbox.spec.base_url

    async def go() -> tuple[int, bool]:
        resolver = UnixSocketResolver(sandbox.socket_path)
        http = SimpleAsyncHTTPClient(force_instance=True, resolver=resolver)
        try:
            r = await http.fetch(f"http://sandbox{base}api/status", raise_error=False)
            kernels = await http.fetch(
                f"http://sandbox{base}api/kernels",
                method="POST",
                body="{}",
                headers={"Cookie": "_xsrf=x1", "X-XSRFToken": "x1"},
            )
            kid = json.loads(kernels.body)["id"]
            ws = await websocket_connect(
                HTTPRequest(f"ws://sandbox{base}api/kernels/{kid}/channels"), resolver=resolver
            )
            ws.close()
            await http.fetch(
                f"http://sandbox{base}api/kernels/{kid}",
                method="DELETE",
                headers={"Cookie": "_xsrf=x1", "X-XSRFToken": "x1"},
            )
            return r.code, True
        finally:
            http.close()
            resolver.close()

    assert asyncio.run(go()) == (200, True)
    # a symlink in place of the socket is refused by the resolver as well
    link = tmp_path / "jupyter.sock"
    link.symlink_to(tmp_path / "elsewhere.sock")

    async def bad() -> None:
        resolver = UnixSocketResolver(link)
        http = SimpleAsyncHTTPClient(force_instance=True, resolver=resolver)
        try:
            await http.fetch("http://sandbox/api/status")
        finally:
            http.close()
            resolver.close()

    with pytest.raises(Exception, match="not a socket"):
        asyncio.run(bad())


def test_terminal_runs_inside_the_sandbox(client: SandboxClient, sandbox: Sandbox) -> None:
    """Terminals are on (the guard audits them) and their shell is as confined as a kernel."""
    import websocket

    from jupyterlab_hdh.sandbox.client import connect_unix

    r = client.request("POST", "api/terminals", {})
    assert r.status == 200, r.body
    name = r.json()["name"]
    ws = websocket.create_connection(
        "ws://localhost" + client.url(f"terminals/websocket/{name}"),
        socket=connect_unix(client.socket_path),
        timeout=20,
        suppress_origin=True,
    )
    try:
        ws.send(json.dumps(["stdin", "echo ID=$(id -u) AT=$HOSTNAME; ls /run\r"]))
        seen = ""
        while "AT=hdh-sandbox" not in seen:
            msg = json.loads(ws.recv())
            if msg[0] == "stdout":
                seen += msg[1]
        uid = 1000 if sandbox.spec.host is None else sandbox.spec.host.uid
        assert f"ID={uid} AT=hdh-sandbox" in seen
    finally:
        ws.close()
        client.request("DELETE", f"api/terminals/{name}")


def test_lab_download_export_and_copy_plugins_are_disabled_and_locked(
    client: SandboxClient, kernel: str
) -> None:
    """JupyterLab's own page config (served by the sandbox) disables and locks them."""
    import html
    import json
    import re

    from jupyterlab_hdh.sandbox.spec import LAB_LOCKED_PLUGINS, LAB_PAGE_CONFIG

    page = client.request("GET", "lab")
    assert page.status == 200
    raw = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
        page.body.decode(),
        re.S,
    )
    assert raw is not None
    config = json.loads(html.unescape(raw.group(1)))
    for plugin in LAB_LOCKED_PLUGINS:
        assert plugin in config["disabledExtensions"], plugin
        assert plugin in config["lockedExtensions"], plugin
    # the file is read-only inside the sandbox: the user cannot unlock them there
    result = run(client, kernel, attempt(f"open({LAB_PAGE_CONFIG!r}, 'w')"))
    assert result == {"ok": False, "err": 30}  # EROFS


def test_hdh_mounts_route_lists_exactly_the_permitted_versions(client: SandboxClient) -> None:
    r = client.request("GET", "hdh/mounts")
    assert r.status == 200, r.body
    mounts = r.json()["mounts"]
    assert sorted((m["dataset"], m["version"]) for m in mounts) == [("ds_a", "v1"), ("ds_b", "v1")]
    assert all(m["path"].startswith("/data/") for m in mounts)
    assert all(t["rows"] >= 0 for m in mounts for t in m["tables"])


# -- the API bridge socket (/bridge/api.sock, served by the hub; here a stand-in) -------------


def test_hdh_whoami_without_a_bridge_is_a_clear_503(client: SandboxClient) -> None:
    r = client.request("GET", "hdh/whoami")
    assert r.status == 503, r.body
    assert "no API bridge at /bridge/api.sock" in r.json()["detail"]


@pytest.fixture
def bridge_stand_in(sandbox: Sandbox) -> Iterator[tuple[Path, list[bytes]]]:
    """A host listener on the bridge socket answering every request with a fixed JSON."""
    import threading

    path = sandbox.spec.bridge_socket_path
    seen: list[bytes] = []
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    host = sandbox.spec.host  # as hub/bridge.py does: the project's group may connect
    os.chmod(path, 0o600 if host is None else 0o660)
    if host is not None:
        os.chown(path, -1, host.gid)
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                seen.append(data)
                body = b'{"user": "alice", "project": "p1"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path, seen
    finally:
        stop.set()
        t.join(5)
        srv.close()
        path.unlink(missing_ok=True)


def test_bridge_socket_is_connectable_but_cannot_be_replaced(
    client: SandboxClient, kernel: str, bridge_stand_in: tuple[Path, list[bytes]]
) -> None:
    import errno

    path, seen = bridge_stand_in
    inode = path.stat().st_ino
    code = (
        "import json, socket\n"
        "s = socket.socket(socket.AF_UNIX); s.connect('/bridge/api.sock')\n"
        "s.sendall(b'GET /api/bridge/whoami HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "data = b''\n"
        "while (c := s.recv(4096)): data += c\n"
        "print(json.dumps(data.decode().split('\\r\\n\\r\\n', 1)[1]))\n"
    )
    assert json.loads(run(client, kernel, code)) == {"user": "alice", "project": "p1"}
    for expr in (
        "os.unlink('/bridge/api.sock')",
        "os.rename('/bridge/api.sock', '/bridge/old.sock')",
        "os.symlink('/sock/jupyter.sock', '/bridge/evil.sock')",
        "open('/bridge/x', 'w')",
        "os.mkdir('/bridge/d')",
        "os.rmdir('/bridge')",
        "os.chmod('/bridge/api.sock', 0o777)",
        "socket.socket(socket.AF_UNIX).bind('/bridge/other.sock')",
    ):
        out = run(client, kernel, attempt(expr))
        assert out["ok"] is False, expr
        assert out["err"] in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EBUSY), (expr, out)
    assert path.stat().st_ino == inode
    assert sorted(p.name for p in path.parent.iterdir()) == ["api.sock"]
    # the server extension relays what the bridge answers
    r = client.request("GET", "hdh/whoami")
    assert r.status == 200, r.body
    assert r.json() == {"user": "alice", "project": "p1"}
    assert seen[-1].startswith(b"GET /api/bridge/whoami ")


# -- seccomp: kernel interfaces no analysis needs -------------------------------------------


def test_seccomp_refuses_kernel_interfaces(client: SandboxClient, kernel: str) -> None:
    """The probe of ``test_seccomp.py`` (which sees these calls work on the host) inside."""
    import errno

    probe = (Path(__file__).with_name("seccomp_probe.py")).read_text()
    out = run(client, kernel, probe)
    for name in ("getpid", "af_unix", "af_inet", "af_netlink"):
        assert out[name] == 0, out["names"]  # ordinary work still works
    for name in ("keyctl", "kcmp", "process_vm_readv", "io_uring_setup", "unshare"):
        assert out[name] == errno.EPERM, (name, out["names"])
    assert out["af_packet"] == errno.EAFNOSUPPORT, out["names"]  # not EPERM: the filter
    assert out["af_packet_high_bits"] == errno.EAFNOSUPPORT, out["names"]
    if "x32_getpid" in out:  # x86-64: the 32-bit and x32 entries are refused, for real
        assert out["x32_getpid"] == errno.EPERM, out["names"]
        if out["i386_getpid"] is not None:  # None: this kernel has no IA32 emulation
            assert out["i386_getpid"] == errno.EPERM, out["names"]
