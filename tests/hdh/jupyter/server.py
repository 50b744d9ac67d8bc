"""A real Jupyter server with HDH's sandbox extension (``hdh.jupyter``), started as a process
for the handler tests, on a TCP port with a token or on a Unix socket without one (the guard's
upstream): one launcher, so each test module says only what differs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.waiting import wait_for

CONFINED = "--ServerApp.contents_manager_class=hdh.jupyter.contents.ConfinedContentsManager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hdh_jupyter_server(
    base: Path,
    root: Path,
    *,
    token: str | None = None,
    sock: str | None = None,
    base_url: str = "/",
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[str]:
    """Run ``jupyter_server`` with ``hdh.jupyter`` on ``root`` (its Jupyter folders and log in
    ``base``), serving on ``sock`` (no token) or a free port (with ``token``); yields its URL
    (``http://localhost`` for a socket) once ``api/status`` answers; stops it afterwards."""
    listen = [f"--sock={sock}"] if sock else ["--ip=127.0.0.1", f"--port={free_port()}"]
    url = "http://localhost" if sock else f"http://127.0.0.1:{listen[1].split('=')[1]}"
    argv = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        *listen,
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions=hdh.jupyter=True",
        f"--IdentityProvider.token={token or ''}",
        *(["--ServerApp.allow_unauthenticated_access=False"] if token else []),
        *(["--ServerApp.password="] if not token else []),
        *args,
    ]
    full_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "jdata"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        **(env or {}),
    }
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    headers = {"Authorization": f"token {token}"} if token else {}
    transport = httpx.HTTPTransport(uds=sock) if sock else None

    def answers() -> bool:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        if sock and not os.path.exists(sock):
            return False
        try:
            with httpx.Client(transport=transport, timeout=2) as client:
                return client.get(f"{url}{base_url}api/status", headers=headers).is_success
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, f"the Jupyter server (log: {log_path})", timeout=60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
