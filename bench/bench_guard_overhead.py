"""Benchmark: the guard's overhead on a kernel round trip and an API call.

Owns the measurement of what the guard costs: one real ``jupyter server
--sock`` (as in ``tests/guard``), then the same work done directly on its Unix
socket and through the guard on a localhost port, with the audit sink writing
to a real HDH store (SQLite):

* kernel: ``execute_request`` of ``1`` → ``execute_reply`` over the kernel
  websocket (JupyterLab 4's v1 binary protocol), one request at a time;
* api: ``GET api/status`` over one keep-alive connection.

Prints medians, p90s and the ratios guard/direct; asserts nothing.

Usage: ``python bench/bench_guard_overhead.py [--n 300]`` (from the repository root).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
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

from jupyterlab_hdh.guard.policy import GuardConfig  # noqa: E402
from jupyterlab_hdh.sandbox.client import execute_request  # noqa: E402
from tests.guard.conftest import BASE, run_guard, start_jupyter  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    up = start_jupyter()
    gen = run_guard(up.sock, Path(tempfile.mkdtemp(prefix="hdh-bench-")), GuardConfig())
    g = next(gen)
    try:
        direct_http = httpx.Client(
            transport=httpx.HTTPTransport(uds=up.sock), base_url="http://localhost"
        )
        guard_http = g.client()
        guard_http.get(BASE + "lab")
        xsrf = guard_http.cookies["_xsrf"]
        kid = guard_http.post(
            BASE + "api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}
        ).json()["id"]
        path = f"{BASE}api/kernels/{kid}/channels?session_id="
        usock = socket.socket(socket.AF_UNIX)
        usock.connect(up.sock)
        ws_direct = websocket.create_connection(
            f"ws://localhost{path}{uuid.uuid4()}", socket=usock, subprotocols=[V1]
        )
        ws_guard = websocket.create_connection(
            f"ws://127.0.0.1:{g.port}{path}{uuid.uuid4()}",
            subprotocols=[V1],
            header=["X-Test-User: alice"],
            origin=f"http://127.0.0.1:{g.port}",
        )
        print(f"guard overhead, n={args.n} (one client, sequential; audit into SQLite)")
        print("kernel execute_request → execute_reply (v1 protocol):")
        d = summary("direct (Unix socket)", timed(lambda: execute(ws_direct, "1"), args.n))
        gd = summary("through the guard", timed(lambda: execute(ws_guard, "1"), args.n))
        print(f"  ratio guard/direct: {gd / d:.2f}x  (+{gd - d:.3f} ms)")
        print("GET api/status:")
        d = summary(
            "direct (Unix socket)", timed(lambda: direct_http.get(BASE + "api/status"), args.n)
        )
        gd = summary(
            "through the guard", timed(lambda: guard_http.get(BASE + "api/status"), args.n)
        )
        print(f"  ratio guard/direct: {gd / d:.2f}x  (+{gd - d:.3f} ms)")
        ws_direct.close()
        ws_guard.close()
        guard_http.delete(BASE + f"api/kernels/{kid}", headers={"X-XSRFToken": xsrf})
    finally:
        gen.close()
        up.proc.terminate()
        up.proc.wait(15)


if __name__ == "__main__":
    main()
