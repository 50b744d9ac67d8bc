"""Keep-alive HTTP/1.1 connections from the guard to one sandbox's server.

Owns the guard's upstream HTTP connections: :class:`UpstreamPool` keeps idle
connections to one sandbox's Jupyter server and reuses them, with the same
``fetch(HTTPRequest, raise_error=False)`` contract as Tornado's
``SimpleAsyncHTTPClient`` (``header_callback``, ``streaming_callback``,
``request_timeout``, ``connect_timeout``), on Tornado's own
:class:`~tornado.http1connection.HTTP1Connection` over an ``IOStream``.

A sandbox's server is a Unix socket path on one machine (``str``) or, on Kubernetes, a
pod's address (:class:`TcpUpstream`, with the pod's uid as its identity).

What it guarantees:

* **Never through a link.** Every request first opens the socket path with
  ``O_PATH|O_NOFOLLOW`` and checks that it is a socket (a symlink planted by
  the sandbox is refused, as in ``proxy.UnixResolver``); new connections are
  made to ``/proc/self/fd/N`` of that descriptor, so nothing can be swapped in
  between the check and the connect.
* **A restarted sandbox is noticed.** A pooled connection is reused only while
  the path still names the socket (device and inode) it was made to; when the
  inode changes, every idle connection is closed and a fresh one is made. On
  Kubernetes the pool is one pod's (its uid): the guard makes a new pool for a new pod.
* **Only clean connections go back.** A connection returns to the pool only
  after a complete, framed HTTP/1.1 response (``Content-Length``, chunked, or
  no body) without ``Connection: close``, with the request fully written and
  nothing unread. A transfer aborted by a callback (the proxy's response caps
  raise from ``streaming_callback``), a timeout, an error or a read-until-close
  body closes the connection.
* Idle connections are checked with a non-blocking peek before reuse (a server
  that closed them is noticed) and closed after ``idle_timeout`` seconds. A
  reused connection that fails before any response byte is retried once on a
  fresh connection, for GET, HEAD and OPTIONS only (the others might have
  been acted on).
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tornado import gen, httputil, iostream
from tornado.http1connection import (
    HTTP1Connection,
    HTTP1ConnectionParameters,
    is_transfer_encoding_chunked,
)
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop
from tornado.locks import Semaphore

#: The identity of every connection of a pod's pool (the pod is the pool's, see TcpUpstream)
_TCP_IDENTITY = (-1, -1)

#: Methods retried once on a fresh connection when a reused one fails before
#: any byte of the response (the server may have closed it while idle).
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class TcpUpstream:
    """A sandbox's server reached over TCP: a project pod's address on Kubernetes.

    ``identity`` names the pod instance (its uid): a pool serves one pod only, so a
    connection made to a pod that has gone is never reused for the pod that takes its
    address."""

    host: str
    port: int
    identity: str
    #: the pod's server token (the guard sends it; a browser never sees it)
    token: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (pod {self.identity})"


#: Where a sandbox's server is: its Unix socket path, or a pod's address.
Upstream = str | TcpUpstream


class UpstreamRefused(OSError):
    """The socket path is missing, is a link, or is not a socket."""


def open_socket_path(path: str) -> tuple[int, tuple[int, int]]:
    """Open ``path`` without following links; return the descriptor and (device, inode).

    Raises :class:`UpstreamRefused` (an ``OSError``) unless it is a socket.
    """
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UpstreamRefused(exc.errno, f"the sandbox socket cannot be opened: {exc}") from None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISSOCK(st.st_mode):
        os.close(fd)
        raise UpstreamRefused(errno.ECONNREFUSED, "the sandbox socket is not a socket (refused)")
    return fd, (st.st_dev, st.st_ino)


@dataclass
class _Conn:
    stream: iostream.IOStream
    identity: tuple[int, int]
    idle_since: float = 0.0
    uses: int = 0

    def alive(self) -> bool:
        """True if the idle connection is open, with nothing unread (peer has not closed)."""
        if self.stream.closed() or self.stream._read_buffer_size:  # bytes nobody asked for
            return False
        sock = self.stream.socket
        if sock is None:
            return False
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # open, nothing to read: as it should be
        except OSError:
            return False
        return False  # b"": closed by the peer; bytes: unsolicited data, never trusted

    def close(self) -> None:
        self.stream.close()


@dataclass
class _Reader(httputil.HTTPMessageDelegate):
    """Receives one response: passes it to the request's callbacks or buffers it."""

    request: HTTPRequest
    conn: HTTP1Connection | None = None
    start_line: httputil.ResponseStartLine | None = None
    headers: httputil.HTTPHeaders = field(default_factory=httputil.HTTPHeaders)
    chunks: list[bytes] = field(default_factory=list)
    finished: bool = False
    received: bool = False
    error: BaseException | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self.received = True
        if 100 <= start_line.code < 200:
            return None  # informational: the real response follows
        self.start_line, self.headers = start_line, headers
        cb = self.request.header_callback
        if cb is not None and self.error is None:
            try:
                cb(f"{start_line.version} {start_line.code} {start_line.reason}\r\n")
                for k, v in headers.get_all():
                    cb(f"{k}: {v}\r\n")
                cb("\r\n")
            except Exception as exc:
                self._abort(exc)
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.error is not None:
            return None
        cb = self.request.streaming_callback
        if cb is None:
            self.chunks.append(chunk)
            return None
        try:
            cb(chunk)
        except Exception as exc:
            self._abort(exc)
        return None

    def finish(self) -> None:
        self.finished = True

    def on_connection_close(self) -> None:
        pass

    def _abort(self, exc: BaseException) -> None:
        # the transfer stops here: the connection is closed, never pooled
        self.error = exc
        if self.conn is not None:
            self.conn.close()


class UpstreamPool:
    """Pooled keep-alive HTTP/1.1 client for one sandbox's server (see the module doc)."""

    def __init__(
        self,
        target: Upstream,
        *,
        max_active: int = 64,
        max_idle: int = 16,
        idle_timeout: float = 30.0,
        max_header_size: int = 64 * 1024,
        max_body_size: int | None = None,
        max_buffer_size: int = 104857600,
        chunk_size: int = 64 * 1024,
    ) -> None:
        self.target = target
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.max_buffer_size = max_buffer_size
        self.params = HTTP1ConnectionParameters(
            no_keep_alive=False,
            chunk_size=chunk_size,
            max_header_size=max_header_size,
            max_body_size=max_body_size,
            decompress=False,
        )
        self._slots = Semaphore(max_active)
        self._idle: list[_Conn] = []
        self._identity: tuple[int, int] | None = None
        self._prune_handle: object | None = None
        self._prune_loop: IOLoop | None = None
        self._closed = False
        #: counters, for tests and diagnostics
        self.connections_made = 0
        self.reused = 0
        #: fetches in progress
        self.active = 0

    # ------------------------------------------------------------ public

    async def fetch(self, request: HTTPRequest, raise_error: bool = False) -> HTTPResponse:
        """Send ``request`` and return its response (as ``AsyncHTTPClient.fetch``).

        Connection failures, timeouts and exceptions raised by the request's
        callbacks are raised (a callback's own exception as it is); with
        ``raise_error`` an HTTP error status raises ``HTTPClientError`` too.
        """
        if self._closed:
            raise RuntimeError("the upstream pool is closed")
        if request.body_producer is not None or request.expect_100_continue:
            raise ValueError("body_producer and expect_100_continue are not supported")
        start_wall, start = time.time(), time.monotonic()
        self.active += 1
        try:
            async with self._slots:
                conn = await self._acquire(request)
                try:
                    reader = await self._exchange(conn, request)
                except _RetryableFailure:  # a reused connection the server had closed
                    conn = await self._acquire(request, fresh=True)
                    reader = await self._exchange(conn, request, allow_retry=False)
        finally:
            self.active -= 1
        assert reader.start_line is not None
        buffer = io.BytesIO(b"".join(reader.chunks)) if request.streaming_callback is None else None
        response = HTTPResponse(
            request,
            reader.start_line.code,
            reason=reader.start_line.reason,
            headers=reader.headers,
            buffer=buffer,
            effective_url=request.url,
            request_time=time.monotonic() - start,
            start_time=start_wall,
        )
        if raise_error and response.error is not None:
            raise response.error
        return response

    def close(self) -> None:
        """Close every idle connection; fetches after this raise."""
        self._closed = True
        self._drop_idle()
        if self._prune_handle is not None and self._prune_loop is not None:
            self._prune_loop.remove_timeout(self._prune_handle)
            self._prune_handle = None

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def unused(self) -> bool:
        """Nothing in progress and nothing pooled: dropping it loses nothing."""
        return self.active == 0 and not self._idle

    # ------------------------------------------------------------ connections

    async def _acquire(self, request: HTTPRequest, *, fresh: bool = False) -> _Conn:
        if isinstance(self.target, TcpUpstream):
            self._identity = _TCP_IDENTITY
            return self._reuse(_TCP_IDENTITY, fresh) or await self._connect_tcp(
                self.target, request
            )
        fd, identity = open_socket_path(self.target)
        try:
            if identity != self._identity:
                # a restarted sandbox (or a first use): nothing pooled is reused
                self._drop_idle()
                self._identity = identity
            return self._reuse(identity, fresh) or await self._connect(fd, identity, request)
        finally:
            os.close(fd)

    def _reuse(self, identity: tuple[int, int], fresh: bool) -> _Conn | None:
        """An idle connection to ``identity`` that is still open (None: make one)."""
        while not fresh and self._idle:
            conn = self._idle.pop()
            if conn.identity == identity and conn.alive():
                conn.uses += 1
                self.reused += 1
                return conn
            conn.close()
        return None

    async def _connect_tcp(self, target: TcpUpstream, request: HTTPRequest) -> _Conn:
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        return await self._open(
            socket.socket(family, socket.SOCK_STREAM),
            (target.host, target.port),
            _TCP_IDENTITY,
            request,
        )

    async def _connect(self, fd: int, identity: tuple[int, int], request: HTTPRequest) -> _Conn:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        return await self._open(sock, f"/proc/self/fd/{fd}", identity, request)

    async def _open(
        self, sock: socket.socket, address: Any, identity: tuple[int, int], request: HTTPRequest
    ) -> _Conn:
        stream = iostream.IOStream(sock, max_buffer_size=self.max_buffer_size)
        timeout = request.connect_timeout or 20.0
        try:
            await gen.with_timeout(
                timedelta(seconds=timeout),
                stream.connect(address),
                quiet_exceptions=(iostream.StreamClosedError,),
            )
        except gen.TimeoutError:
            stream.close()
            raise HTTPClientError(599, "Timeout while connecting") from None
        except BaseException:
            stream.close()
            raise
        if sock.family != socket.AF_UNIX:
            stream.set_nodelay(True)  # small requests and answers: no Nagle stalls
        self.connections_made += 1
        return _Conn(stream, identity, uses=1)

    def _release(self, conn: _Conn) -> None:
        if self._closed or conn.identity != self._identity or len(self._idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)
        if self._prune_handle is None:
            self._prune_loop = IOLoop.current()
            self._prune_handle = self._prune_loop.call_later(self.idle_timeout, self._prune)

    def _prune(self) -> None:
        self._prune_handle = None
        now = time.monotonic()
        keep = []
        for c in self._idle:
            if now - c.idle_since >= self.idle_timeout or c.stream.closed():
                c.close()
            else:
                keep.append(c)
        self._idle = keep
        if keep and not self._closed and self._prune_loop is not None:
            wait = max(0.1, self.idle_timeout - (now - min(c.idle_since for c in keep)))
            self._prune_handle = self._prune_loop.call_later(wait, self._prune)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    # ------------------------------------------------------------ one exchange

    async def _exchange(
        self, conn: _Conn, request: HTTPRequest, *, allow_retry: bool = True
    ) -> _Reader:
        reused = conn.uses > 1
        method = request.method.upper()
        parts = urlsplit(request.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = httputil.HTTPHeaders(request.headers)
        if "Host" not in headers:
            headers["Host"] = parts.netloc or "localhost"
        body = request.body
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        if body is not None:
            headers["Content-Length"] = str(len(body))
        http = HTTP1Connection(conn.stream, True, self.params)
        reader = _Reader(request, http)
        timed_out = [False]

        def on_timeout() -> None:
            timed_out[0] = True
            conn.close()

        timeout = request.request_timeout or 20.0
        loop = IOLoop.current()
        handle = loop.call_later(timeout, on_timeout)
        writes: list[Any] = []
        ok = False
        try:
            writes.append(
                http.write_headers(httputil.RequestStartLine(method, path, "HTTP/1.1"), headers)
            )
            if body:
                writes.append(http.write(body))
            http.finish()
            ok = await http.read_response(reader)
        except iostream.StreamClosedError as exc:
            conn.close()
            if reader.error is not None:
                raise reader.error from None
            if timed_out[0]:
                raise HTTPClientError(599, "Timeout during request") from None
            if reused and allow_retry and not reader.received and method in RETRYABLE_METHODS:
                raise _RetryableFailure() from exc
            raise HTTPClientError(599, "Stream closed") from exc
        except BaseException:
            conn.close()
            raise
        finally:
            loop.remove_timeout(handle)
        if reader.error is not None:
            conn.close()
            raise reader.error
        if timed_out[0]:
            raise HTTPClientError(599, "Timeout during request")
        if not ok or not reader.finished or reader.start_line is None:
            conn.close()
            if reused and allow_retry and not reader.received and method in RETRYABLE_METHODS:
                raise _RetryableFailure()
            raise HTTPClientError(599, "Connection closed before a complete response")
        if self._reusable(request, method, reader, writes):
            self._release(conn)
        else:
            conn.close()
        return reader

    @staticmethod
    def _reusable(request: HTTPRequest, method: str, reader: _Reader, writes: list[Any]) -> bool:
        start, headers = reader.start_line, reader.headers
        if start is None or start.version != "HTTP/1.1":
            return False
        if not all(w.done() and w.exception() is None for w in writes):
            return False
        for h in (headers.get("Connection", ""), request.headers.get("Connection", "")):
            if "close" in h.lower():
                return False
        if method == "HEAD" or start.code in (204, 304):
            return True
        return "Content-Length" in headers or is_transfer_encoding_chunked(headers)


class _RetryableFailure(Exception):
    """A reused connection died before any byte of the response (retry on a fresh one)."""
