"""``hdh up`` (the README's run command): sets everything up, serves, stops on Ctrl-C, persists.

``hdh up`` now runs the embedded hub on PORT (JupyterHub + proxy + guard; its
sandboxes are tested in ``tests/hub``) and the control-plane API on the port it
prints (``--api-port``, default PORT+1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, port: int, api_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab_hdh.cli",
            "--data-dir",
            str(data_dir),
            "up",
            "--port",
            str(port),
            "--api-port",
            str(api_port),
            "--patients",
            "150",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HDH_STORE_URL": ""},
    )
    lines: list[str] = []
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "HDH hub:" in line:
            break
    else:  # pragma: no cover
        proc.kill()
        pytest.fail("hdh up did not print its URL in time")
    assert any("HDH hub:" in x for x in lines), (
        lines,
        proc.stderr.read() if proc.stderr else "",
    )
    assert f"HDH control plane: http://127.0.0.1:{api_port}/api/docs" in "\n".join(lines)
    _wait_http(f"http://127.0.0.1:{api_port}/api/health")
    _wait_http(f"http://127.0.0.1:{port}/hub/login")
    return proc, lines


def _wait_http(url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{url} never answered")


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        pytest.fail("hdh up did not stop on Ctrl-C")
    return err


def _tokens(lines: list[str]) -> dict[str, tuple[str, str]]:
    """``name role password token`` lines: {name: (password, token)}."""
    found = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("hdh_"):
            found[parts[0]] = (parts[2], parts[3])
    return found


def test_hdh_up_serves_stops_and_persists(tmp_path: Path) -> None:
    data_dir, port, api_port = tmp_path / "hdh", _free_port(), _free_port()
    proc, lines = _start(data_dir, port, api_port)
    base = f"http://127.0.0.1:{api_port}"
    accounts = _tokens(lines)
    assert set(accounts) == {"admin", "controller", "alice", "bob", "carol"}
    tokens = {name: token for name, (_pw, token) in accounts.items()}
    datasets = _get(f"{base}/api/catalogue/datasets")
    assert [d["name"] for d in datasets] == ["demo-snds"]
    assert datasets[0]["individuals"] == 150
    assert _get(f"{base}/api/audit/verify", tokens["admin"])["ok"] is True
    access = _get(f"{base}/api/me/projects/demo/access", tokens["alice"])
    assert [m["dataset"] for m in access["mounts"]] == ["demo-snds"]
    err = _stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert oct((data_dir / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"

    # second start: state is reused, nothing regenerated (same tokens and passwords)
    proc, lines = _start(data_dir, port, api_port)
    assert _tokens(lines) == accounts
    again = _get(f"{base}/api/catalogue/datasets")
    assert [(d["name"], d["version"]) for d in again] == [("demo-snds", "v1")]
    err = _stop(proc)
    assert "generating" not in err and proc.returncode == 0
