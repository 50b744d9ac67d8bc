"""Running the embedded hub in the foreground: what ``hdh up`` does after setting up.

Owns the process tree of one running installation: JupyterHub as a child in its
own session (it starts configurable-http-proxy, the guard and the control plane
— ``hdh serve``, the REST API and web pages — as managed services, and the
sandboxes through :class:`~jupyterlab_hdh.hub.spawner.SandboxSpawner`),
readiness checks, and a clean stop on Ctrl-C / SIGTERM: SIGINT is forwarded once
to JupyterHub, which stops the sandboxes, the services and the proxy before
exiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from jupyterlab_hdh.hub.config import HubConfigError, hub_dir, write_hub_config
from jupyterlab_hdh.paths import DataDir

if TYPE_CHECKING:
    from jupyterlab_hdh.hub.oidc import OidcSettings

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()
    except OSError:
        return ""


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def _stop_hub(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)  # JupyterHub's clean shutdown (servers, services, proxy)
    try:
        proc.wait(STOP_TIMEOUT)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def run_embedded_hub(
    data_dir: DataDir,
    *,
    host: str,
    port: int,
    api_port: int,
    poll_interval: int = 30,
    memory_limit: int | None = None,
    cpu_limit: float | None = None,
    oidc: OidcSettings | None = None,
    say: Callable[[str], None],
    echo: Callable[[str], None],
) -> int:
    """Run the hub and its services until Ctrl-C, SIGTERM or the hub's exit; return the
    exit status."""
    # the API bridge of each sandbox forwards here (loopback when the API listens on all)
    api_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
    try:
        plan = write_hub_config(
            data_dir.root,
            host=host,
            port=port,
            poll_interval=poll_interval,
            store_url=data_dir.store_url_override,
            api_url=f"http://{api_host}:{api_port}",
            api_listen=host,
            memory_limit=memory_limit,
            cpu_limit=cpu_limit,
            oidc=oidc,  # single sign-on (hub/oidc.py); None: the local accounts
        )
    except HubConfigError as exc:
        say(f"error: {exc}")
        return 1
    hdir = hub_dir(data_dir.root)
    log_path = hdir / "jupyterhub.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    if data_dir.store_url_override:
        env["HDH_STORE_URL"] = data_dir.store_url_override
    else:
        env.pop("HDH_STORE_URL", None)

    api_url = f"http://{api_host}:{api_port}"
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(plan.config_file)],
            cwd=hdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches it once, forwarded by us
        )
    try:
        t0 = time.monotonic()
        hub_ok = _wait_http(f"{plan.url}/hub/api/", proc, READY_TIMEOUT)
        api_ok = hub_ok and _wait_http(f"{api_url}/api/health", proc, 60)
        if stopping.is_set():
            return 0
        if not hub_ok or not api_ok:
            what = "JupyterHub" if not hub_ok else "the control-plane API"
            say(f"error: {what} did not start. Last lines of {log_path}:\n{_tail(log_path)}")
            return 1
        say(f"hub ready in {time.monotonic() - t0:.1f} s (log: {log_path})")
        echo(
            f"HDH control plane: {api_url}/api/docs  (catalogue: {api_url}/api/catalogue/datasets)"
        )
        echo(f"HDH hub: {plan.url}/hub/login  (your projects: {plan.url}/services/hdh/ui/)")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            if proc.poll() is not None:
                say(f"error: JupyterHub exited ({proc.returncode}):\n{_tail(log_path)}")
                return 1
        return 0
    finally:
        say("stopping the hub (sandboxes, guard, proxy)…")
        _stop_hub(proc)
        for s, h in old.items():
            signal.signal(s, h)
