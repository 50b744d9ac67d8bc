"""The notebook API against the real stack: client → the hub's API bridge (Unix socket, the
real tornado forwarder adding the identity) → the real control-plane API served by uvicorn."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from hdh import airlock as egress
from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.hub.bridge import BridgeServer, BridgeTarget
from jupyterlab_hdh.hub.config import free_port
from tests.egress import airlock
from tests.hub.test_bridge import _Loop

TOKEN = "c" * 64


@pytest.fixture
def sandbox(hub: Any) -> Iterator[tuple[egress.Airlock, Any, Path]]:
    """alice's sandbox of ``study``: an Airlock on a real bridge socket in front of the API."""
    workspace = airlock.setup(hub)
    airlock.grant(hub)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub.data_dir, bridge_token=TOKEN),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    api_thread = threading.Thread(target=server.run, daemon=True)
    api_thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    folder = Path(tempfile.mkdtemp(prefix="hdh-cl-"))
    loop = _Loop()

    def start() -> BridgeServer:
        bridge = BridgeServer(
            folder / "bridge" / "api.sock",
            BridgeTarget(f"http://127.0.0.1:{port}", TOKEN, "alice", "study"),
        )
        bridge.start()
        return bridge

    bridge = loop.call(start)
    try:
        yield egress.Airlock(str(bridge.socket_path), workspace="/workspace"), hub, workspace
    finally:
        loop.call(bridge.stop)
        loop.close()
        server.should_exit = True
        api_thread.join(10)


def test_new_request_add_submit_status(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    air, hub, workspace = sandbox
    airlock.write(workspace, "out/table.csv", "region,count\nnorth,120\nsouth,140\n")
    airlock.write(workspace, "analysis.py", "print(1)\n")
    request = air.new_request("Table 1: admissions")
    assert request.state == "draft" and request.title == "Table 1: admissions"
    f = request.add(
        "/workspace/out/table.csv",
        role="output",
        context={"population": "adults", "variables": ["region"]},
        controls="none",
    )
    assert f["path"] == "out/table.csv" and f["context"]["variables"] == ["region"]
    request.add("analysis.py", role="code")
    assert [x["path"] for x in request.view["files"]] == ["out/table.csv", "analysis.py"]
    request.submit()
    assert request.state == "submitted"
    printed = capsys.readouterr().out
    assert f"Request #{request.id} 'Table 1: admissions': submitted" in printed
    assert "out/table.csv (output): " in printed
    # later edits in the workspace do not change what was submitted
    airlock.write(workspace, "out/table.csv", "region,count\nnorth,1\n")
    out = io.StringIO()
    view = air.status(request.id, out=out)
    assert view["files"][0]["size"] == len("region,count\nnorth,120\nsouth,140\n")
    assert "submitted" in out.getvalue()
    assert [r["id"] for r in air.requests()] == [request.id]
    assert air.requests(state="draft") == []


def test_refusals_raise_airlock_error_with_the_control_planes_reason(sandbox: Any) -> None:
    air, hub, workspace = sandbox
    request = air.new_request("t")
    with pytest.raises(egress.AirlockError) as err:
        request.add("missing.csv")
    assert err.value.status == 422 and "missing.csv" in err.value.detail
    with pytest.raises(egress.AirlockError) as err:
        request.submit()  # no output file yet
    assert err.value.status == 422 and "no output file" in err.value.detail
    with pytest.raises(egress.AirlockError) as err:
        air.request(9999)
    assert err.value.status == 404
    with pytest.raises(egress.AirlockError) as err:
        air.new_request("")
    assert err.value.status == 422
    # paths outside the workspace are refused before anything is sent
    for bad in ("/etc/passwd", "../other/x.csv", "/workspace/../etc/passwd", ""):
        with pytest.raises(ValueError):
            request.add(bad)
    with pytest.raises(ValueError, match="role"):
        request.add("x.csv", role="everything")
    # the permit is re-checked on every call: revoked, the sandbox can do nothing
    with hub.transaction() as s:
        permit = pj.active_permit(s, "alice", "study")
        pj.revoke_permit(
            s, permit.id, reason="study closed", actor=pj.Actor("dan", "data_controller")
        )
    with pytest.raises(egress.AirlockError) as err:
        air.requests()
    assert err.value.status == 403 and "study closed" in err.value.detail


def test_withdraw(sandbox: Any) -> None:
    air, _hub, workspace = sandbox
    airlock.write(workspace, "t.csv")
    request = air.new_request("t")
    request.add("t.csv")
    assert request.withdraw("not needed").state == "withdrawn"
    with pytest.raises(egress.AirlockError) as err:
        request.add("t.csv")
    assert err.value.status == 409


def test_no_bridge_socket_is_a_clear_error(tmp_path: Path) -> None:
    air = egress.Airlock(str(tmp_path / "nothing.sock"))
    with pytest.raises(egress.AirlockError, match="no API bridge"):
        air.requests()


def test_relative_paths_follow_the_current_folder_inside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    air = egress.Airlock("/nonexistent.sock", workspace=str(ws))
    monkeypatch.chdir(ws / "sub")
    assert air.workspace_path("t.csv") == "sub/t.csv"
    assert air.workspace_path("../t.csv") == "t.csv"
    assert air.workspace_path(ws / "a" / "b.csv") == "a/b.csv"
    with pytest.raises(ValueError):
        air.workspace_path("../../t.csv")
    monkeypatch.chdir(tmp_path)  # outside the workspace: relative to the workspace root
    assert air.workspace_path("t.csv") == "t.csv"


def test_the_client_needs_only_the_standard_library() -> None:
    path = Path(egress.__file__)
    code = (
        "import runpy, sys; m = runpy.run_path(sys.argv[1]);"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in"
        " ('jupyterlab_hdh', 'requests', 'httpx', 'urllib3', 'tornado'));"
        "assert not bad, bad; print(m['Airlock'].__name__)"
    )
    # -I -S: isolated, no site-packages at all
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(path)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Airlock"
