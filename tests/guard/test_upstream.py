"""The guard's pooled upstream client (``guard/upstream.py``) against real Tornado servers.

Each test runs its own servers (on Unix sockets) and the pool in one event loop: a server
counts the requests (and the connections) it saw, so a test can tell which
socket a request reached and whether a connection was reused.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado import httpserver, netutil, web
from tornado.httpclient import HTTPClientError, HTTPRequest

from jupyterlab_hdh.guard.upstream import UpstreamPool, UpstreamRefused


class Server:
    """A Tornado HTTP server on a Unix socket that names itself in every answer."""

    def __init__(self, name: str, path: Path, **server_kwargs: Any) -> None:
        self.name = name
        self.path = path
        self.requests: list[str] = []
        self.connections = 0
        outer = self

        class Handler(web.RequestHandler):
            async def get(self, what: str) -> None:
                outer.requests.append(what)
                if what == "big":
                    self.write(b"x" * (1024 * 1024))
                elif what == "chunked":
                    for i in range(3):
                        self.write(f"part{i};")
                        await self.flush()
                elif what == "slow":
                    await asyncio.sleep(2)
                    self.write("late")
                elif what == "close":
                    self.set_header("Connection", "close")
                    self.write(outer.name)
                else:
                    self.write(outer.name)

            async def post(self, what: str) -> None:
                outer.requests.append(what)
                self.write(outer.name.encode() + b":" + self.request.body)

        class CountingServer(httpserver.HTTPServer):
            def handle_stream(self, stream: Any, address: Any) -> None:
                outer.connections += 1
                super().handle_stream(stream, address)

        self.server = CountingServer(web.Application([(r"/(\w*)", Handler)]), **server_kwargs)
        self.server.add_socket(netutil.bind_unix_socket(str(path), mode=0o600))

    def stop(self) -> None:
        self.server.stop()


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(fn(), 30))


def req(path: str, **kw: Any) -> HTTPRequest:
    kw.setdefault("request_timeout", 10)
    return HTTPRequest(f"http://localhost/{path}", **kw)


async def body_of(pool: UpstreamPool, path: str, **kw: Any) -> bytes:
    resp = await pool.fetch(req(path, **kw), raise_error=False)
    assert resp.code == 200, resp
    return resp.body


def test_connections_are_reused(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path))
        for _ in range(20):
            assert await body_of(pool, "x") == b"a"
        assert await body_of(pool, "p", method="POST", body=b"hello") == b"a:hello"
        assert await body_of(pool, "chunked") == b"part0;part1;part2;"
        assert (a.connections, pool.connections_made, pool.idle_count) == (1, 1, 1)
        pool.close()
        a.stop()

    run(main)


def test_concurrent_requests_get_their_own_connections(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path), max_idle=4)
        bodies = await asyncio.gather(*(body_of(pool, f"r{i}") for i in range(10)))
        assert bodies == [b"a"] * 10 and len(a.requests) == 10
        assert pool.idle_count <= 4
        pool.close()
        a.stop()

    run(main)


def test_header_and_streaming_callbacks(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path))
        lines: list[str] = []
        chunks: list[bytes] = []
        resp = await pool.fetch(
            req("chunked", header_callback=lines.append, streaming_callback=chunks.append),
            raise_error=False,
        )
        assert resp.code == 200 and resp.body == b""  # streamed, not buffered
        assert lines[0].startswith("HTTP/1.1 200 ") and lines[-1] == "\r\n"
        assert any(x.lower().startswith("transfer-encoding: chunked") for x in lines)
        assert b"".join(chunks) == b"part0;part1;part2;"
        assert pool.idle_count == 1  # a complete chunked response: the connection is kept
        pool.close()
        a.stop()

    run(main)


def test_error_status_is_returned_or_raised(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path))
        resp = await pool.fetch(req("no/such/route"), raise_error=False)
        assert resp.code == 404
        with pytest.raises(HTTPClientError) as exc:
            await pool.fetch(req("no/such/route"), raise_error=True)
        assert exc.value.code == 404
        assert pool.connections_made == 1
        pool.close()
        a.stop()

    run(main)


def test_symlink_is_refused_and_never_reached(tmp_path: Path) -> None:
    """A sandbox swapping its socket for a link to another project's socket reaches nothing,
    even while the pool holds live connections to the genuine one."""

    async def main() -> None:
        own = tmp_path / "own"
        own.mkdir()
        genuine = Server("genuine", own / "jupyter.sock")
        other = Server("other", tmp_path / "other.sock")
        pool = UpstreamPool(str(genuine.path))
        assert await body_of(pool, "x") == b"genuine"
        assert pool.idle_count == 1
        os.rename(genuine.path, own / "moved.sock")
        os.symlink(other.path, genuine.path)
        for path in ("x", "y"):
            with pytest.raises(UpstreamRefused):
                await pool.fetch(req(path), raise_error=False)
        assert other.requests == [] and other.connections == 0
        assert genuine.requests == ["x"]  # the pooled connection was not used either
        # a pool created on the link from the start refuses as well
        fresh = UpstreamPool(str(genuine.path))
        with pytest.raises(UpstreamRefused):
            await fresh.fetch(req("z"), raise_error=False)
        assert other.requests == [] and other.connections == 0
        pool.close()
        fresh.close()
        genuine.stop()
        other.stop()

    run(main)


def test_a_regular_file_or_missing_socket_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        f = tmp_path / "jupyter.sock"
        f.write_text("not a socket")
        with pytest.raises(UpstreamRefused):
            await UpstreamPool(str(f)).fetch(req("x"))
        with pytest.raises(UpstreamRefused):
            await UpstreamPool(str(tmp_path / "missing.sock")).fetch(req("x"))

    run(main)


def test_restarted_sandbox_gets_a_fresh_connection(tmp_path: Path) -> None:
    """A new socket inode at the path drops pooled connections, even ones still alive."""

    async def main() -> None:
        path = tmp_path / "jupyter.sock"
        first = Server("first", path)
        pool = UpstreamPool(str(path))
        assert await body_of(pool, "x") == b"first"
        first.stop()  # stops listening; the pooled connection to it stays open
        os.unlink(path)
        second = Server("second", path)
        assert await body_of(pool, "y") == b"second"
        assert first.requests == ["x"] and second.requests == ["y"]
        assert pool.connections_made == 2 and pool.idle_count == 1
        assert await body_of(pool, "z") == b"second"
        assert pool.connections_made == 2  # and the new one is reused
        pool.close()
        second.stop()

    run(main)


def test_stopped_sandbox_is_an_error_not_a_hang(tmp_path: Path) -> None:
    async def main() -> None:
        path = tmp_path / "jupyter.sock"
        a = Server("a", path)
        pool = UpstreamPool(str(path))
        assert await body_of(pool, "x") == b"a"
        a.stop()
        os.unlink(path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))  # a socket nobody listens on (a dead sandbox's leftover)
        try:
            with pytest.raises(OSError):
                await pool.fetch(req("y"))
        finally:
            s.close()
        pool.close()

    run(main)


def test_aborted_transfer_is_not_pooled(tmp_path: Path) -> None:
    """A response cap raising from the streaming callback closes that connection."""

    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path), chunk_size=16 * 1024)
        got: list[int] = []

        def capped(chunk: bytes) -> None:
            got.append(len(chunk))
            if sum(got) > 100_000:
                raise ValueError("response exceeds the cap")

        with pytest.raises(ValueError, match="exceeds the cap"):
            await pool.fetch(req("big", streaming_callback=capped), raise_error=False)
        assert sum(got) < 1024 * 1024 and pool.idle_count == 0
        # the next request is answered on a new connection, with nothing left over
        assert await body_of(pool, "x") == b"a"
        assert pool.connections_made == 2 and a.connections == 2

        # a header callback raising aborts as well
        def bad_header(line: str) -> None:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            await pool.fetch(req("x", header_callback=bad_header), raise_error=False)
        assert pool.idle_count == 0
        pool.close()
        a.stop()

    run(main)


def test_connection_close_and_timeouts_are_not_pooled(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path))
        assert await body_of(pool, "close") == b"a"
        assert pool.idle_count == 0
        with pytest.raises(HTTPClientError) as exc:
            await pool.fetch(req("slow", request_timeout=0.3))
        assert exc.value.code == 599 and pool.idle_count == 0
        assert await body_of(pool, "x") == b"a"
        assert pool.connections_made == 3
        pool.close()
        a.stop()

    run(main)


def test_idle_connection_closed_by_the_server_is_not_used(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock", idle_connection_timeout=0.2)
        pool = UpstreamPool(str(a.path))
        assert await body_of(pool, "x") == b"a"
        await asyncio.sleep(0.6)  # the server closes the idle connection
        assert await body_of(pool, "p", method="POST", body=b"b") == b"a:b"
        assert pool.connections_made == 2 and a.requests == ["x", "p"]
        pool.close()
        a.stop()

    run(main)


def test_idle_connections_expire(tmp_path: Path) -> None:
    async def main() -> None:
        a = Server("a", tmp_path / "a.sock")
        pool = UpstreamPool(str(a.path), idle_timeout=0.2)
        assert await body_of(pool, "x") == b"a"
        assert pool.idle_count == 1
        await asyncio.sleep(0.5)
        assert pool.idle_count == 0
        pool.close()
        a.stop()

    run(main)


# ----------------------------------------------------------------- through the guard


def test_guard_reuses_then_refuses_a_swapped_socket_then_follows_a_restart(
    upstream: Any, tmp_path: Path
) -> None:
    """Through the guard, with real Jupyter servers: the sandbox's socket path first names
    one server (a hard link to its socket), then a symlink to another (refused although
    connections to the first are pooled), then a restarted server (a new inode: reached)."""
    import shutil

    from jupyterlab_hdh.guard.policy import GuardConfig

    from .conftest import BASE, run_guard, start_jupyter

    sock = tmp_path / "sock" / "jupyter.sock"
    sock.parent.mkdir()
    os.link(upstream.sock, sock)
    second = start_jupyter()
    (second.root / "second-server-marker.txt").write_text("here")
    gen = run_guard(str(sock), tmp_path, GuardConfig())
    g = next(gen)
    try:
        with g.client("alice") as c:
            for _ in range(5):
                r = c.get(BASE + "api/contents")
                assert r.status_code == 200, r.text
                assert "second-server-marker.txt" not in r.text
            os.unlink(sock)
            sock.symlink_to(second.sock)
            r = c.get(BASE + "api/contents")
            assert r.status_code == 502 and "second-server-marker" not in r.text
            os.unlink(sock)
            os.link(second.sock, sock)  # "restarted": another inode at the same path
            r = c.get(BASE + "api/contents")
            assert r.status_code == 200, r.text
            assert "second-server-marker.txt" in r.text
    finally:
        gen.close()
        second.proc.terminate()
        second.proc.wait(15)
        shutil.rmtree(Path(second.sock).parent, ignore_errors=True)
