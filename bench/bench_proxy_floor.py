"""Benchmark: what any proxy hop costs on this machine, beside the guard's own cost.

Owns the floor under the guard's API-call target (issue 8: ≤ 1.3× direct). One real
``jupyter server --sock`` (as in ``tests/guard``); ``GET api/status`` over one keep-alive
connection, ``--n`` requests per round, through:

* direct: the server's Unix socket (the peer every ratio is against);
* relay: a raw asyncio byte relay, TCP in, Unix socket out, no HTTP parsing at all
  (the floor of any Python hop);
* aiohttp: a bare aiohttp proxy (C HTTP parser, keep-alive upstream), no policy;
* tornado: a bare Tornado handler over the guard's own ``UpstreamPool``, no policy;
* guard: HDH's guard (``hdh-guard``'s app: route table, identity, display accounting).

Each runs in its own process, as the guard does. Prints each round's medians and ratios
against direct, then the medians over rounds. Asserts nothing.

Usage: ``python bench/bench_proxy_floor.py [--n 300] [--rounds 3]`` (from the repository root).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_guard_overhead import timed  # noqa: E402
from jupyterlab_hdh.hub.config import free_port  # noqa: E402
from tests.guard.conftest import BASE, start_jupyter  # noqa: E402

RELAY = """
import asyncio, socket, sys
sock, port = sys.argv[1], int(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    cw.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ur, uw = await asyncio.open_unix_connection(sock)
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

AIOHTTP = """
import asyncio, sys
from aiohttp import ClientSession, UnixConnector, web
sock, port = sys.argv[1], int(sys.argv[2])
async def main():
    session = ClientSession(connector=UnixConnector(path=sock, limit=64), auto_decompress=False)
    async def handle(request):
        skip = ("host", "connection")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        url = "http://localhost" + request.path_qs
        async with session.request(request.method, url, headers=headers) as r:
            body = await r.read()
            ctype = r.headers.get("Content-Type", "application/octet-stream")
            return web.Response(body=body, status=r.status, headers={"Content-Type": ctype})
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

TORNADO = """
import asyncio, sys
from tornado import httpserver, web
from tornado.httpclient import HTTPRequest
from jupyterlab_hdh.guard.upstream import UpstreamPool
sock, port = sys.argv[1], int(sys.argv[2])
async def main():
    pool = UpstreamPool(sock)
    class H(web.RequestHandler):
        async def get(self, _tail):
            r = await pool.fetch(HTTPRequest("http://localhost" + self.request.uri))
            self.set_status(r.code)
            self.set_header("Content-Type", r.headers.get("Content-Type", ""))
            self.finish(r.body)
    httpserver.HTTPServer(web.Application([(r"/(.*)", H)])).listen(port, "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

GUARD = """
import sys, tempfile
from pathlib import Path
from jupyterlab_hdh.guard.policy import GuardConfig
from tests.guard.conftest import run_guard
sock, port = sys.argv[1], int(sys.argv[2])
gen = run_guard(sock, Path(tempfile.mkdtemp(prefix="hdh-bench-")), GuardConfig(), port=port)
next(gen)
print("ready", flush=True)
sys.stdin.read()
"""

PROXIES = {"relay": RELAY, "aiohttp": AIOHTTP, "tornado": TORNADO, "guard": GUARD}


def median_ms(fn: Any, n: int) -> float:
    return statistics.median(timed(fn, n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    up = start_jupyter()
    procs: list[subprocess.Popen[str]] = []
    clients: dict[str, httpx.Client] = {}
    try:
        for name, code in PROXIES.items():
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-c", code, up.sock, str(port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
                env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
            )
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", name
            clients[name] = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"X-Test-User": "alice"}, timeout=30
            )
        direct = httpx.Client(
            transport=httpx.HTTPTransport(uds=up.sock), base_url="http://localhost"
        )
        print(f"GET api/status, n={args.n}, {args.rounds} rounds (one client, sequential)")
        ratios: dict[str, list[float]] = {name: [] for name in PROXIES}
        for r in range(args.rounds):
            d = median_ms(lambda: direct.get(BASE + "api/status"), args.n)
            line = [f"round {r + 1}: direct {d:.3f} ms"]
            for name, client in clients.items():
                g = median_ms(lambda c=client: c.get(BASE + "api/status"), args.n)
                ratios[name].append(g / d)
                line.append(f"{name} {g:.3f} ms ({g / d:.2f}x)")
            print(" | ".join(line), flush=True)
        print(
            "median ratio over rounds: "
            + ", ".join(f"{name} {statistics.median(v):.2f}x" for name, v in ratios.items())
        )
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.kill()
            proc.wait(10)
        up.proc.terminate()
        up.proc.wait(15)


if __name__ == "__main__":
    main()
