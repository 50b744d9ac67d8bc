"""The isolation probe, run for real: inside a bubblewrap sandbox (no network at all) it
reports every attempt blocked and succeeds; on the host, a port that answers is named as
a hole and the probe fails."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from jupyterlab_hdh.k8s import probe


def test_a_reachable_target_is_named_and_fails_the_probe(capsys) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
        accepted.start()
        code = probe.main(
            ["--target", f"127.0.0.1:{port}", "--name", "localhost", "--timeout", "2"]
        )
    out = capsys.readouterr().out
    assert code == 1
    assert f"REACHED  tcp 127.0.0.1:{port}: connected" in out
    assert "REACHED  dns localhost" in out
    assert "NOT ISOLATED: 2 reached" in out


def test_inside_a_network_less_sandbox_everything_is_blocked(tmp_path) -> None:
    """bwrap --unshare-net: the namespace a NetworkPolicy-less sandbox has on one machine."""
    argv = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--die-with-parent",
        "--",
        sys.executable,
        "-m",
        "jupyterlab_hdh.k8s.probe",
        "--timeout",
        "1",
        "--target",
        "1.1.1.1:443",
        "--target",
        "169.254.169.254:80",
        "--target",
        "example.org:443",
        "--name",
        "example.org",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["blocked"] * 4
    assert lines[-1] == "isolated: nothing reached"
