"""``hdh up`` (the README's run command): sets everything up, serves, stops on Ctrl-C, persists.

``hdh up`` now runs the embedded hub on PORT (JupyterHub + proxy + guard; its
sandboxes are tested in ``tests/hub``) and the control-plane API on the port it
prints (``--api-port``, default PORT+1).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hdh_up import free_port, start_up, stop_up


def _start(data_dir: Path, port: int, api_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc, lines = start_up(data_dir, port, api_port, seed=3)
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


def _tokens(lines: list[str]) -> dict[str, tuple[str, str]]:
    """``name role password token`` lines: {name: (password, token)}."""
    found = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("hdh_"):
            found[parts[0]] = (parts[2], parts[3])
    return found


def test_hdh_up_serves_stops_and_persists(tmp_path: Path) -> None:
    data_dir, port, api_port = tmp_path / "hdh", free_port(), free_port()
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
    err = stop_up(proc, timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert oct((data_dir / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"

    # second start: state is reused, nothing regenerated (same tokens and passwords)
    proc, lines = _start(data_dir, port, api_port)
    assert _tokens(lines) == accounts
    again = _get(f"{base}/api/catalogue/datasets")
    assert [(d["name"], d["version"]) for d in again] == [("demo-snds", "v1")]
    err = stop_up(proc, timeout=30)
    assert "generating" not in err and proc.returncode == 0
