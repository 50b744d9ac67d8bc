"""``hdh k8s guard`` as the guard's Deployment runs it: a real process with its two ports,
its Kubernetes client from a kubeconfig (a stand-in answers the one call it makes), the
bridge token from its file, and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado import web

from jupyterlab_hdh.context import init_installation
from jupyterlab_hdh.hub.config import free_port
from jupyterlab_hdh.paths import DataDir
from tests.k8s.fake_api import fake_kube_api, pod, serving
from tests.k8s.test_guard import TOKEN, _ControlPlane
from tests.waiting import wait_for


@pytest.fixture
def control_plane() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    port = free_port()
    with serving(web.Application([(r".*", _ControlPlane, {"seen": seen})]), port):
        yield f"http://127.0.0.1:{port}", seen


def test_the_guard_process_serves_both_ports_and_stops_on_sigterm(
    tmp_path: Path, control_plane: tuple[str, list[dict[str, Any]]]
) -> None:
    api_url, seen = control_plane
    data = tmp_path / "hdh"
    hub, _ = init_installation(DataDir.resolve(data))
    hub.close()
    token_file = tmp_path / "bridge-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o400)
    http_port, bridge_port = free_port(), free_port()
    with fake_kube_api(tmp_path) as kube:
        kube.pods.append(pod("alice", "p1", "127.0.0.1"))
        env = {
            **os.environ,
            "JUPYTERHUB_API_TOKEN": "guard-token",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",  # never asked: no login here
            "HDH_GUARD_COOKIE_SECRET": "ab" * 32,
        }
        env.pop("HDH_STORE_URL", None)
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab_hdh.cli", "--data-dir", str(data),
                "k8s", "guard", "--ip", "127.0.0.1", "--port", str(http_port),
                "--bridge-port", str(bridge_port), "--api-url", api_url,
                "--bridge-token-file", str(token_file), "--kubeconfig", str(kube.kubeconfig),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def answers() -> bool:
                try:
                    httpx.get(f"http://127.0.0.1:{bridge_port}/", timeout=2)
                    httpx.get(f"http://127.0.0.1:{http_port}/", timeout=2)
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                    return False
                return True

            wait_for(answers, timeout=60, what="the guard's two ports")
            # the proxy's side: the guard itself answers, a stranger gets no sandbox
            r = httpx.get(f"http://127.0.0.1:{http_port}/user/alice/p1/api/contents", timeout=10)
            assert r.status_code == 403 and "Content-Security-Policy" in r.headers
            # the bridge: the caller is alice's pod of p1, found through the kubeconfig's API
            r = httpx.get(
                f"http://127.0.0.1:{bridge_port}/projects/p1/api/bridge/whoami", timeout=10
            )
            assert r.status_code == 200, r.text
            (call,) = seen
            assert call["uri"] == "/api/bridge/whoami"
            assert (call["headers"]["X-HDH-User"], call["headers"]["X-HDH-Bridge"]) == (
                "alice",
                TOKEN,
            )
            assert kube.requests[-1]["authorization"] == "Bearer guard-service-account-token"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
