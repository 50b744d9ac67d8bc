"""Benchmark: sandbox start to first ``execute_reply``, against a bare Jupyter server.

For each round, times (a) a :class:`~jupyterlab_hdh.sandbox.Sandbox` (bubblewrap,
Jupyter server on a Unix socket) from ``start()`` to the first ``execute_reply``
of a fresh kernel, then (b) the peer: the same ``python -m jupyter_server``
command line on a Unix socket, started without bwrap (``--allow-root`` when
run as root), measured the same way through the same client. Prints each
round, the medians and the ratio sandbox/bare. Usage:

    python bench/bench_sandbox_spawn.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyterlab_hdh.sandbox import HostIdentity, Sandbox, SandboxClient, SandboxSpec
from jupyterlab_hdh.sandbox.spec import SOCK_PATH, WORKSPACE, server_argv


def time_sandbox(base: Path, i: int) -> tuple[float, float]:
    spec = SandboxSpec(
        project="bench",
        user=f"u{i}",
        workspace=base / f"ws{i}",
        runtime_dir=base / f"rt{i}",
        # as the spawner does: under root, the sandbox runs as its project's own uid
        host=HostIdentity.for_project(1) if os.geteuid() == 0 else None,
    )
    t0 = time.perf_counter()
    sb = Sandbox(spec)
    sb.start()
    ready = time.perf_counter() - t0
    try:
        r = sb.client(timeout=60).execute("print('ok')")
        assert r.stdout.strip() == "ok", r
        return ready, time.perf_counter() - t0
    finally:
        sb.stop()


def time_bare(base: Path, i: int) -> tuple[float, float]:
    ws, home, sock = base / f"bare-ws{i}", base / f"bare-home{i}", base / f"bare{i}.sock"
    ws.mkdir()
    home.mkdir()
    spec = SandboxSpec(project="bench", user=f"bare{i}", workspace=ws, runtime_dir=base / "x")
    argv = [
        a.replace(SOCK_PATH, str(sock)).replace(f"root_dir={WORKSPACE}", f"root_dir={ws}")
        for a in server_argv(spec)
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    env = {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        client = SandboxClient(sock, spec.base_url, timeout=60)
        while True:
            if proc.poll() is not None:
                raise RuntimeError("bare server died")
            if sock.exists():
                try:
                    client.status(timeout=2)
                    break
                except Exception:  # noqa: S110 - not ready yet
                    pass
            time.sleep(0.05)
        ready = time.perf_counter() - t0
        r = client.execute("print('ok')")
        assert r.stdout.strip() == "ok", r
        return ready, time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    sand: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="hdh-bench-sandbox-") as tmp:
        base = Path(tmp)
        for i in range(args.rounds):
            sand.append(time_sandbox(base, i))
            bare.append(time_bare(base, i))
            print(
                f"round {i}: sandbox ready {sand[-1][0]:.2f} s, first reply {sand[-1][1]:.2f} s |"
                f" bare ready {bare[-1][0]:.2f} s, first reply {bare[-1][1]:.2f} s",
                flush=True,
            )
    s_ready, s_reply = (statistics.median(x) for x in zip(*sand, strict=True))
    b_ready, b_reply = (statistics.median(x) for x in zip(*bare, strict=True))
    print(f"median server ready:         sandbox {s_ready:.2f} s, bare {b_ready:.2f} s")
    print(f"median first execute_reply:  sandbox {s_reply:.2f} s, bare {b_reply:.2f} s")
    print(f"ratio sandbox/bare (first execute_reply): {s_reply / b_reply:.2f}")


if __name__ == "__main__":
    main()
