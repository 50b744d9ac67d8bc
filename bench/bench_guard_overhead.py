"""Benchmark: the guard's overhead on a kernel round trip and an API call.

Owns the measurement of what the guard costs: one real ``jupyter server
--sock`` (as in ``tests/guard``), then the same work done directly on its Unix
socket and through the guard on a localhost port, with the audit sink writing
to a real HDH store (SQLite):

* kernel: ``execute_request`` of ``1`` → ``execute_reply`` over the kernel
  websocket (JupyterLab 4's v1 binary protocol), one request at a time;
* api: ``GET api/status`` over one keep-alive connection.

The guard runs in its own process, as ``hdh-guard`` does (``--in-process``:
in a thread of the benchmark's process, sharing its GIL, as before 2026-12-04).
Each round measures direct access and then the guard, ``--n`` requests each;
it prints every round's medians, p90s and ratios guard/direct, then the
median over the rounds. ``--sink memory`` replaces the store audit with an
in-memory list (what the relay alone costs). Asserts nothing.

``--upstream tcp`` measures the cluster's case instead: the server listens on a loopback
TCP port (as in a pod) and the guard reaches it as a ``TcpUpstream`` (the address the
Kubernetes API would give it; the lookup itself is cached and left out), against direct TCP.

Usage: ``python bench/bench_guard_overhead.py [--n 300] [--rounds 3] [--sink store|memory]
[--upstream unix|tcp]`` (from the repository root).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_server.services.kernels.connection.base import (  # noqa: E402
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

from jupyterlab_hdh.guard.audit import MemoryAuditSink  # noqa: E402
from jupyterlab_hdh.guard.policy import GuardConfig  # noqa: E402
from jupyterlab_hdh.guard.upstream import TcpUpstream  # noqa: E402
from jupyterlab_hdh.hub.config import free_port  # noqa: E402
from jupyterlab_hdh.sandbox.client import execute_request  # noqa: E402
from jupyterlab_hdh.sandbox.spec import KERNEL_WEBSOCKET_ARG  # noqa: E402
from tests.guard.conftest import BASE, run_guard, start_jupyter, stop_jupyter  # noqa: E402

V1 = "v1.kernel.websocket.jupyter.org"


def execute(ws: websocket.WebSocket, code: str) -> None:
    msg = execute_request(code, username="alice")
    header, content = msg["header"], msg["content"]
    parts = [json.dumps(x).encode() for x in (header, {}, {}, content)]
    ws.send_binary(serialize_msg_to_ws_v1(parts, "shell"))
    while True:
        channel, msg = deserialize_msg_from_ws_v1(ws.recv())
        parent = json.loads(msg[1])
        if parent.get("msg_id") == header["msg_id"] and channel == "shell":
            return


def timed(fn: Any, n: int) -> list[float]:
    for _ in range(min(20, n)):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def summary(name: str, xs: list[float]) -> float:
    xs = sorted(xs)
    med = statistics.median(xs)
    print(f"  {name:<28} median {med:7.3f} ms   p90 {xs[int(len(xs) * 0.9)]:7.3f} ms")
    return med


DIRECT = {"unix": "direct (Unix socket)", "tcp": "direct (TCP)"}


def compare(
    title: str, direct: Any, guard: Any, n: int, upstream: str = "unix"
) -> tuple[float, float]:
    print(title)
    d = summary(DIRECT[upstream], timed(direct, n))
    gd = summary("through the guard", timed(guard, n))
    print(f"  ratio guard/direct: {gd / d:.2f}x  (+{gd - d:.3f} ms)")
    return d, gd


def overall(title: str, pairs: list[tuple[float, float]]) -> None:
    d = statistics.median(p[0] for p in pairs)
    g = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[1] / p[0] for p in pairs)
    each = ", ".join(f"{p[1] / p[0]:.2f}x" for p in pairs)
    print(
        f"  {title:<16} direct {d:6.3f} ms, guard {g:6.3f} ms;"
        f" ratio {ratio:.2f}x (median of rounds: {each})"
    )


def _guard(target: str, port: int | None = None) -> Any:
    """The guard in front of ``target``: a Unix socket path, or ``tcp:PORT`` (a pod's)."""
    tmp = Path(tempfile.mkdtemp(prefix="hdh-bench-"))
    if not target.startswith("tcp:"):
        return run_guard(target, tmp, GuardConfig(), port=port)
    pod = TcpUpstream("127.0.0.1", int(target[4:]), "bench-pod")

    def resolve(user: str, project: str) -> TcpUpstream | None:
        return pod if (user, project) == ("alice", "proj1") else None

    return run_guard("", tmp, GuardConfig(), port=port, resolve=resolve)


def serve_guard(sock: str, port: int, sink: str) -> None:
    """The guard process: serve until stdin closes."""
    gen = _guard(sock, port)
    g = next(gen)
    if sink == "memory":
        g.sink.inner = MemoryAuditSink()
    print("ready", flush=True)
    sys.stdin.read()
    gen.close()


def start_guard(sock: str, sink: str, in_process: bool) -> tuple[int, Any]:
    """Start the guard; return its port and a function that stops it."""
    if in_process:
        gen = _guard(sock)
        g = next(gen)
        if sink == "memory":
            g.sink.inner = MemoryAuditSink()
        return g.port, gen.close
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-guard", sock, str(port), "--sink", sink],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def stop() -> None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)

    return port, stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sink", choices=("store", "memory"), default="store")
    ap.add_argument("--in-process", action="store_true", help="run the guard in a thread here")
    ap.add_argument(
        "--upstream", choices=("unix", "tcp"), default="unix", help="tcp: as on Kubernetes"
    )
    ap.add_argument("--serve-guard", nargs=2, metavar=("SOCK", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_guard:
        serve_guard(args.serve_guard[0], int(args.serve_guard[1]), args.sink)
        return
    tcp = args.upstream == "tcp"
    # the kernel websocket as the sandbox's server runs it (sandbox.spec.server_argv)
    up = start_jupyter(tcp=tcp, extra=(KERNEL_WEBSOCKET_ARG,))
    target = f"tcp:{up.port}" if tcp else up.sock
    port, stop_guard = start_guard(target, args.sink, args.in_process)
    try:
        direct_http = (
            httpx.Client(base_url=f"http://127.0.0.1:{up.port}")
            if tcp
            else httpx.Client(
                transport=httpx.HTTPTransport(uds=up.sock), base_url="http://localhost"
            )
        )
        guard_http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-Test-User": "alice"}, timeout=30
        )
        guard_http.get(BASE + "lab")
        xsrf = guard_http.cookies["_xsrf"]
        kid = guard_http.post(
            BASE + "api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}
        ).json()["id"]
        path = f"{BASE}api/kernels/{kid}/channels?session_id="
        if tcp:
            ws_direct = websocket.create_connection(
                f"ws://127.0.0.1:{up.port}{path}{uuid.uuid4()}",
                subprotocols=[V1],
                origin=f"http://127.0.0.1:{up.port}",
            )
            ws_direct.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            usock = socket.socket(socket.AF_UNIX)
            usock.connect(up.sock)
            ws_direct = websocket.create_connection(
                f"ws://localhost{path}{uuid.uuid4()}", socket=usock, subprotocols=[V1]
            )
        ws_guard = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}{uuid.uuid4()}",
            subprotocols=[V1],
            header=["X-Test-User: alice"],
            origin=f"http://127.0.0.1:{port}",
        )
        where = "audit into SQLite" if args.sink == "store" else "audit into memory"
        proc = "in this process" if args.in_process else "in its own process"
        print(
            f"guard overhead, n={args.n}, {args.rounds} rounds"
            f" (one client, sequential; guard {proc}; {where}; upstream {args.upstream})"
        )
        kernel: list[tuple[float, float]] = []
        api: list[tuple[float, float]] = []
        for r in range(args.rounds):
            print(f"round {r + 1}:")
            kernel.append(
                compare(
                    "kernel execute_request → execute_reply (v1 protocol):",
                    lambda: execute(ws_direct, "1"),
                    lambda: execute(ws_guard, "1"),
                    args.n,
                    args.upstream,
                )
            )
            api.append(
                compare(
                    "GET api/status:",
                    lambda: direct_http.get(BASE + "api/status"),
                    lambda: guard_http.get(BASE + "api/status"),
                    args.n,
                    args.upstream,
                )
            )
        print(f"over {args.rounds} rounds (medians):")
        overall("kernel round trip", kernel)
        overall("GET api/status", api)
        ws_direct.close()
        ws_guard.close()
        guard_http.delete(BASE + f"api/kernels/{kid}", headers={"X-XSRFToken": xsrf})
    finally:
        stop_guard()
        stop_jupyter(up)


if __name__ == "__main__":
    main()
