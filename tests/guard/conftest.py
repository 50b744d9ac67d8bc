"""Fixtures: a real ``jupyter server --sock`` upstream and the guard on a random localhost port.

The guard runs in its own thread and event loop; tests talk to it as a
browser would (``httpx`` for HTTP, ``websocket-client`` for websockets).
Identity is the test ``HeaderIdentity`` (``X-Test-User``); the audit sink is a
real HDH store unless a test swaps it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado import httpserver

from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.guard.app import make_guard_app, max_body
from jupyterlab_hdh.guard.audit import AuditEvent, StoreAuditSink
from jupyterlab_hdh.guard.auth import HeaderIdentity
from jupyterlab_hdh.guard.display import AuditDisplayStore, DisplayLedger, DisplaySettings
from jupyterlab_hdh.guard.policy import GuardConfig
from jupyterlab_hdh.hub.config import free_port
from jupyterlab_hdh.paths import DataDir

BASE = "/user/alice/proj1/"


@dataclass
class Upstream:
    sock: str  # the Unix socket, or "" when it listens on ``port``
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]
    port: int = 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_jupyter(
    base_url: str = BASE, *, tcp: bool = False, extra: tuple[str, ...] = ()
) -> Upstream:
    """A real Jupyter server on a Unix socket (as a sandbox's) or, with ``tcp``, on a
    loopback port (as a pod's server on Kubernetes); ``extra``: more of its arguments."""
    tmp = Path(tempfile.mkdtemp(prefix="hdhg", dir="/tmp"))
    root = tmp / "ws"
    root.mkdir()
    sock = "" if tcp else str(tmp / "jupyter.sock")
    port = free_port() if tcp else 0
    log = tmp / "server.log"
    listen = (
        ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0"]
        if tcp
        else [f"--sock={sock}"]
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        *listen,
        "--allow-root",
        "--no-browser",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.log_level=DEBUG",
        "--ServerApp.terminals_enabled=True",
        *extra,
    ]
    if any(a.startswith("--IdentityProvider.token=") for a in extra):  # a pod's, with a token
        cmd.remove("--IdentityProvider.token=")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "rt"), "JUPYTER_CONFIG_DIR": str(tmp)}
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited: {log.read_text()}")
        if tcp or os.path.exists(sock):
            transport = httpx.HTTPTransport(uds=sock or None)
            # /api answers without a token: a server with one (a pod's) is up too
            url = f"http://{'127.0.0.1:' + str(port) if tcp else 'localhost'}{base_url}api"
            try:
                with httpx.Client(transport=transport) as c:
                    if c.get(url).status_code == 200:
                        return Upstream(sock, root, log, proc, port)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"jupyter server did not start: {log.read_text()}")


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    u = start_jupyter()
    yield u
    stop_jupyter(u)


def stop_jupyter(u: Upstream) -> None:
    u.proc.terminate()
    try:
        u.proc.wait(15)
    except subprocess.TimeoutExpired:
        u.proc.kill()
    shutil.rmtree(u.root.parent, ignore_errors=True)


class FlakySink:
    """Delegates to a real sink unless ``fail`` is set (then raises, persisting nothing)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False

    async def record(self, event: AuditEvent) -> None:
        if self.fail:
            raise RuntimeError("audit store unavailable")
        await self.inner.record(event)


@dataclass
class GuardServer:
    url: str
    port: int
    hub: Any
    sink: FlakySink
    forwarded: list[tuple[str, str]] = field(default_factory=list)
    permits: set[tuple[str, str]] = field(default_factory=set)

    def client(self, user: str | None = "alice") -> httpx.Client:
        headers = {"X-Test-User": user} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def run_guard(
    upstream_sock: str,
    tmp: Path,
    config: GuardConfig,
    *,
    extra_apps: tuple[tuple[Any, int], ...] = (),
    port: int | None = None,
    display: DisplaySettings | None = None,
    resolve: Any = None,
    **app_kwargs: Any,
) -> Iterator[GuardServer]:
    """Run the guard (and ``extra_apps``, e.g. a fake hub API) in one thread and loop.

    ``display``: count what is shown in the store's audit log with these settings
    (as the real guard does); by default the guard counts in memory. ``resolve``: how the
    guard finds a sandbox (default: alice's proj1 is ``upstream_sock``).
    """
    hub, _ = init_installation(DataDir.resolve(tmp / "hdh"))
    sink = FlakySink(StoreAuditSink(hub))
    port = port or free_port()
    gs = GuardServer(f"http://127.0.0.1:{port}", port, hub, sink)
    gs.permits.add(("alice", "proj1"))

    def by_socket(user: str, project: str) -> str | None:
        gs.forwarded.append((user, project))
        return upstream_sock if (user, project) == ("alice", "proj1") else None

    resolve = resolve or by_socket

    def authorise(user: str, project: str) -> str | None:
        return None if (user, project) in gs.permits else "no permit"

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app_kwargs.setdefault("identify", HeaderIdentity())
        if display is not None:
            app_kwargs["ledger"] = DisplayLedger(display, AuditDisplayStore(hub))
        app = make_guard_app(resolve, authorise, sink, config, **app_kwargs)
        server = httpserver.HTTPServer(app, max_body_size=max_body(config))
        server.listen(port, "127.0.0.1")
        for extra, extra_port in extra_apps:
            extra.listen(extra_port, "127.0.0.1")
        holder["server"], holder["app"] = server, app
        loop.call_soon(ready.set)
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10)
    yield gs

    def stop() -> None:
        holder["server"].stop()
        holder["app"].settings["guard"].close()
        loop.stop()

    loop.call_soon_threadsafe(stop)
    t.join(10)
    hub.close()


@pytest.fixture(scope="module")
def guard(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardServer]:
    config = GuardConfig(
        max_contents_read_bytes=256 * 1024, max_upload_bytes=512 * 1024, allow_binary_uploads=True
    )
    yield from run_guard(upstream.sock, tmp_path_factory.mktemp("guard"), config)
