"""The guard's Tornado handlers: HTTP and websocket forwarding to a sandbox's server.

Owns the request path through the guard: policy decision (``policy.decide``),
identity and permit checks, same-origin check for state-changing requests,
request-body and response-body caps, audit of saves, kernel code and terminal
input (recorded before forwarding; a failed record drops the message), header
hygiene (hop-by-hop headers and the hub's own cookies and tokens never reach
the sandbox) and the security headers set on every response, including errors
and websocket handshakes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from tornado import httputil, web, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.netutil import Resolver

from jupyterlab_hdh.guard import audit as A
from jupyterlab_hdh.guard.display import (
    SESSION_ROUTES,
    DisplayLedger,
    DisplaySettings,
    trim_notebook_model,
)
from jupyterlab_hdh.guard.policy import Decision, GuardConfig, decide, media_type_allowed
from jupyterlab_hdh.guard.upstream import TcpUpstream, Upstream, UpstreamPool
from jupyterlab_hdh.guard.withhold import KernelReplies, terminal_notice, withhold_kernel_message

log = logging.getLogger("hdh.guard")

#: Content-Security-Policy on every response. JupyterLab 4 needs inline styles,
#: ``unsafe-eval`` (ajv/schema compilation, some renderers) and inline scripts
#: (the page config blob); ``data:``/``blob:`` images and fonts are local.
#: ``connect-src 'self'`` covers same-origin ws/wss in current browsers; the
#: explicit ws(s)://host is added per request for older ones.
CSP_BASE = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; media-src 'self' data: blob:; worker-src 'self' blob:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'self'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
DROPPED_RESPONSE = frozenset(
    {
        "content-security-policy",
        "content-security-policy-report-only",
        "x-content-security-policy",
        "x-webkit-csp",
        "content-length",
        "server",
    }
)
#: Request headers never forwarded to the untrusted sandbox.
SECRET_REQUEST_HEADERS = frozenset({"authorization", "proxy-authorization"})
#: the guard's own headers on an upstream websocket (authorization: a pod's server token)
WS_GUARD_HEADERS = frozenset({"host", "x-forwarded-user", "authorization"})
#: Cookie-name prefixes that belong to the hub or to hub services such as the
#: guard itself (their OAuth token cookie is named after the client id,
#: ``service-<name>``): they carry tokens and are never forwarded.
HUB_COOKIE_PREFIXES = ("jupyterhub-", "__host-", "service-")
#: The Host the sandbox sees: its server keeps its default local-host check
#: (``allow_remote_access=False``); the guard has checked the real origin itself.
UPSTREAM_HOST = "localhost"
UPSTREAM_ORIGIN = "http://localhost"
WS_HEADERS = frozenset({"cookie", "origin", "user-agent", "x-xsrftoken", "accept-language"})

Identify = Callable[[web.RequestHandler], "Awaitable[str | None] | str | None"]
Authorise = Callable[[str, str], "Awaitable[str | None] | str | None"]
#: (user, project) → where that person's sandbox of the project listens: its Unix socket
#: path (one machine) or its pod's address (Kubernetes); None: not running
Resolve = Callable[[str, str], "Awaitable[Upstream | None] | Upstream | None"]


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class UnixResolver(Resolver):
    """Resolves every host to one sandbox's Unix socket, never through a symlink.

    The socket's folder is writable from inside the sandbox, so its user could
    replace ``jupyter.sock`` with a link to another project's socket. The path
    is opened with ``O_PATH|O_NOFOLLOW``, must be a socket, and Tornado is
    handed ``/proc/self/fd/N`` (no window to swap it between check and
    connect). The descriptor is closed once the connection has been made.
    """

    FD_LINGER_SECONDS = 30.0

    def initialize(self, socket_path: str) -> None:  # type: ignore[override]
        self.socket_path = socket_path

    async def resolve(  # type: ignore[override]
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        fd = os.open(self.socket_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
        except OSError:
            os.close(fd)
            raise
        if not is_socket:
            os.close(fd)
            raise OSError(errno.ECONNREFUSED, "the sandbox socket is not a socket (refused)")
        IOLoop.current().call_later(self.FD_LINGER_SECONDS, _close_quietly, fd)
        return [(socket.AF_UNIX, f"/proc/self/fd/{fd}")]


class PodResolver(Resolver):
    """Resolves every host to one pod's address (the guard's upstream on Kubernetes)."""

    def initialize(self, target: TcpUpstream) -> None:  # type: ignore[override]
        self.target = target

    async def resolve(  # type: ignore[override]
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        t = self.target
        return [(socket.AF_INET6 if ":" in t.host else socket.AF_INET, (t.host, t.port))]


def upstream_resolver(target: Upstream) -> Resolver:
    """The websocket client's resolver for ``target`` (the URL's host is never looked up)."""
    if isinstance(target, TcpUpstream):
        return PodResolver(target=target)
    return UnixResolver(socket_path=target)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@dataclass
class Guard:
    """Everything the handlers need: the pluggable callables, the caps, the sink."""

    resolve: Resolve
    authorise: Authorise
    identify: Identify
    audit_sink: A.AuditSink
    config: GuardConfig = field(default_factory=GuardConfig)
    prefix: str = "/user/"
    #: Where unauthenticated browser page loads are sent (None: answer 403).
    login_redirect: Callable[[web.RequestHandler], str | None] | None = None
    upstream_timeout: float = 300.0
    #: Cookie names never forwarded to a sandbox (beyond HUB_COOKIE_PREFIXES).
    private_cookies: frozenset[str] = frozenset()
    #: Display accounting and budget (``guard/display.py``); by default counts kept in memory.
    ledger: DisplayLedger = field(default_factory=lambda: DisplayLedger(DisplaySettings(), None))
    #: Called by :meth:`close` (the periodic display flush's stop).
    on_close: list[Callable[[], None]] = field(default_factory=list)
    #: Each kernel's notebook path, from the sessions answers that pass through the guard.
    kernel_paths: A.KernelPaths = field(default_factory=A.KernelPaths)
    _clients: dict[str, UpstreamPool] = field(default_factory=dict)
    _upload_totals: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def client(self, target: Upstream) -> UpstreamPool:
        """The keep-alive connection pool to one sandbox's server (``guard.upstream``).

        One pool per socket path, or per pod address; a new pod at an address (another
        uid) gets a new pool, and the old one's connections are closed."""
        key = f"tcp:{target.host}:{target.port}" if isinstance(target, TcpUpstream) else target
        c = self._clients.get(key)
        if c is not None and c.target != target:
            c.close()
            c = None
        if c is None:
            self._forget_unused_pools()
            c = UpstreamPool(
                target,
                max_active=64,
                max_buffer_size=max(self.config.max_notebook_read_bytes, 256 * 1024 * 1024),
                max_body_size=max(self.config.max_upload_bytes, self.config.max_request_bytes) * 2,
            )
            self._clients[key] = c
        return c

    #: pools kept for sandboxes no longer used (pods come and go at new addresses)
    MAX_UNUSED_POOLS = 64

    def _forget_unused_pools(self) -> None:
        unused = [k for k, c in self._clients.items() if c.unused]
        for key in unused[: max(0, len(unused) - self.MAX_UNUSED_POOLS)]:
            self._clients.pop(key).close()

    def close(self) -> None:
        for stop in self.on_close:
            stop()
        self.ledger.close()
        for c in self._clients.values():
            c.close()
        self._clients.clear()


def csp_for(request: httputil.HTTPServerRequest) -> str:
    host = request.host
    if host and all(c.isalnum() or c in ".-:[]" for c in host):
        return CSP_BASE + f"; connect-src 'self' wss://{host} ws://{host}"
    return CSP_BASE + "; connect-src 'self'"


def filter_cookie_header(value: str, private: frozenset[str] = frozenset()) -> str:
    """Drop the hub's and the guard's cookies (they carry tokens) from a Cookie header."""
    kept = []
    for part in value.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and not name.lower().startswith(HUB_COOKIE_PREFIXES) and name not in private:
            kept.append(part.strip())
    return "; ".join(kept)


#: The routes whose answers are session models (``guard.audit.KernelPaths``).
SESSION_ANSWERS = frozenset({"sessions", "session"})


@web.stream_request_body
class GuardHandler(websocket.WebSocketHandler):
    """One handler for every ``<prefix><user>/<project>/...`` request (HTTP or websocket)."""

    guard: Guard
    decision: Decision
    user: str
    target: Upstream
    upstream: websocket.WebSocketClientConnection | None = None

    def initialize(self, guard: Guard) -> None:  # type: ignore[override]
        self.guard = guard
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_big = False
        self._pending_out: list[str | bytes] = []
        self._opened = False
        self._terminal = A.TerminalInput()
        self._replies = KernelReplies()
        self._notified = False

    # ------------------------------------------------------------ headers

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", csp_for(self.request))
        for k, v in SECURITY_HEADERS.items():
            self.set_header(k, v)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info")
        if exc and isinstance(exc[1], web.HTTPError) and exc[1].log_message:
            reason = exc[1].log_message
        self.set_header("Content-Type", "application/json")
        # a refused request's body is never read: Tornado drops the connection
        # after the response, so say so (clients then do not reuse it)
        self.set_header("Connection", "close")
        self.finish(json.dumps({"message": reason, "reason": reason, "status": status_code}))

    def _deny(self, status: int, reason: str) -> None:
        raise web.HTTPError(status, reason, reason=_short_reason(status))

    # ------------------------------------------------------------ checks

    def _is_ws(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    def check_xsrf_cookie(self) -> None:
        """Same-origin check for state-changing requests (also used by HubOAuth).

        A cross-site page cannot set ``X-XSRFToken`` without a CORS preflight
        the guard never approves, and browsers send ``Origin`` on cross-site
        POSTs: either must show the request comes from this origin.
        """
        origin = self.request.headers.get("Origin")
        if origin is not None and origin != "null":
            if urlsplit(origin).netloc.lower() != self.request.host.lower():
                raise web.HTTPError(403, "cross-origin request refused")
        elif origin == "null":
            raise web.HTTPError(403, "opaque-origin request refused")
        if not self.request.headers.get("X-XSRFToken") and not self.request.headers.get(
            "X-Requested-With"
        ):
            raise web.HTTPError(403, "state-changing request without an X-XSRFToken header")

    async def prepare(self) -> None:  # type: ignore[override]
        g = self.guard
        req = self.request
        d = decide(req.method or "GET", req.path, req.query, req.headers, g.prefix, g.config)
        self.decision = d
        if not d.allowed:
            self._deny(d.status, d.reason)
        user = await _maybe_await(g.identify(self))
        if not user:
            if (
                req.method == "GET"
                and not self._is_ws()
                and g.login_redirect is not None
                and not d.rest.startswith("api/")
            ):
                url = g.login_redirect(self)
                if url:
                    self.set_header("Connection", "close")  # as in write_error
                    self.redirect(url)
                    return
            self._deny(403, "not authenticated")
        if user != d.user:
            self._deny(403, "this server belongs to another user")
        self.user = str(user)
        if req.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_xsrf_cookie()
        refusal = await _maybe_await(g.authorise(self.user, d.project))
        if refusal:
            self._deny(403, f"no active permit for project {d.project}: {refusal}")
        target = await _maybe_await(g.resolve(self.user, d.project))
        if not target:
            self._deny(503, "sandbox not running")
        self.target = target if isinstance(target, TcpUpstream) else str(target)
        if req.method in ("GET", "HEAD") and not self._is_ws() and self._accounted():
            if g.ledger.over_budget(self.user):
                await g.ledger.refresh_raises(self.user)
            if g.ledger.over_budget(self.user) and (
                d.route not in SESSION_ROUTES or g.ledger.over_grace(self.user)
            ):
                self._deny(429, g.ledger.refusal(self.user))

    def _accounted(self) -> bool:
        return self.decision.counted

    def _show(self, payload: bytes) -> bytes:
        """Count a buffered response body shown to the user (a repeat of the last one is free)."""
        if self._accounted():
            ledger = self.guard.ledger
            digest = hashlib.sha256(payload).hexdigest()
            if not ledger.is_repeat(
                self.user, self.decision.project, self.request.uri or "", digest
            ):
                ledger.add(self.user, self.decision.project, len(payload))
        return payload

    def data_received(self, chunk: bytes) -> None:
        self._body_size += len(chunk)
        if self._body_size > self.decision.max_request_bytes:
            self._too_big = True
            self._body.clear()
        elif not self._too_big:
            self._body.append(chunk)

    # ------------------------------------------------------------ HTTP

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self._is_ws():
            await self._open_upstream_ws()
            if self.upstream is not None:
                await super().get(*args, **kwargs)
            return
        await self._proxy_http()

    async def post(self, *args: Any, **kwargs: Any) -> None:
        await self._proxy_http()

    put = patch = delete = head = options = post

    def _request_headers(self) -> httputil.HTTPHeaders:
        out = httputil.HTTPHeaders()
        for k, v in self.request.headers.get_all():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in SECRET_REQUEST_HEADERS or lk.startswith("sec-websocket"):
                continue
            if lk == "cookie":
                v = filter_cookie_header(v, self.guard.private_cookies)
                if not v:
                    continue
            if lk == "origin":
                v = UPSTREAM_ORIGIN  # checked against the real host in prepare()/check_origin
            if lk == "referer":
                continue
            out.add(k, v)
        out["Host"] = UPSTREAM_HOST
        out["X-Forwarded-User"] = self.user
        if isinstance(self.target, TcpUpstream) and self.target.token:
            # a pod's server takes only the guard's requests (the browser's own
            # Authorization was dropped above)
            out["Authorization"] = f"token {self.target.token}"
        if self.decision.max_response_bytes is not None:
            # capped reads are counted and inspected in clear (no gzip bombs, no guessing)
            out.pop("Accept-Encoding", None)
        return out

    async def _audit_save(self, body: bytes) -> None:
        d = self.decision
        assert d.contents_path is not None
        try:
            save = A.parse_save_body(body)
            if save.chunk is None:  # chunked uploads are files, not notebooks
                A.check_notebook(body)
        except A.MessageError as exc:
            self._deny(400, f"invalid contents body: {exc}")
        if save.format == "base64" and not self.guard.config.allow_binary_uploads:
            self._deny(403, "binary uploads are disabled: bring data in through the catalogue")
        key = (self.user, d.project, d.contents_path)
        totals = self.guard._upload_totals
        if save.chunk is not None:
            total = (0 if save.chunk == 1 else totals.get(key, 0)) + len(body)
            if total > self.guard.config.max_upload_bytes:
                totals.pop(key, None)
                if save.chunk != 1:
                    await self._delete_partial_upload()
                self._deny(413, "upload exceeds the size cap")
            if save.chunk == -1:
                totals.pop(key, None)
            else:
                totals[key] = total
        event = A.save_event(
            save,
            user=self.user,
            project=d.project,
            path=d.contents_path,
            body_sha256=hashlib.sha256(body).hexdigest(),
            body_size=len(body),
        )
        try:
            await self.guard.audit_sink.record(event)
        except Exception:
            log.exception("audit of a save failed; the save is refused")
            self._deny(503, "audit unavailable: the save was not forwarded")

    async def _audit_template_copy(self, payload: bytes) -> None:
        """Record the launcher's template copy the sandbox made (``template.run``).

        The copy only writes a notebook (its cells are audited when they run), so
        a failed audit is logged and the answer still served."""
        name = self.decision.rest.split("/")[2]  # hdh/templates/<name>/copy
        event = A.template_event(name, payload, user=self.user, project=self.decision.project)
        try:
            await self.guard.audit_sink.record(event)
        except Exception:
            log.exception("audit of a template copy failed")

    async def _delete_partial_upload(self) -> None:
        """Remove what the earlier chunks of a refused chunked upload wrote."""
        req = HTTPRequest(
            url=f"http://{UPSTREAM_HOST}{self.request.path}",
            method="DELETE",
            headers=self._request_headers(),
            request_timeout=30,
        )
        resp = await self.guard.client(self.target).fetch(req, raise_error=False)
        if resp.code not in (204, 404):
            log.warning("could not delete a refused partial upload: HTTP %s", resp.code)

    async def _proxy_http(self) -> None:
        d = self.decision
        if self._too_big:
            self._deny(413, "request body exceeds the size cap")
        method = self.request.method or "GET"
        body: bytes | None = b"".join(self._body) if method in ("POST", "PUT", "PATCH") else None
        if d.contents_path is not None and method == "PUT":
            await self._audit_save(body or b"")
        cap = d.max_response_bytes
        buf: list[bytes] = []
        received = [0]
        start: list[httputil.ResponseStartLine] = []
        headers = httputil.HTTPHeaders()
        sent_headers = [False]
        overflow = [False]

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                start[:] = [httputil.parse_response_start_line(line.strip())]
                headers.clear()
            elif line.strip():
                headers.parse_line(line)

        def on_chunk(chunk: bytes) -> None:
            received[0] += len(chunk)
            if cap is not None:
                if received[0] > cap:
                    overflow[0] = True
                    raise ValueError("response exceeds the cap")
                buf.append(chunk)
                return
            if not sent_headers[0]:
                self._apply_response_headers(start[0].code if start else 502, headers)
                sent_headers[0] = True
            if self._accounted():
                self.guard.ledger.add(self.user, d.project, len(chunk))
            self.write(chunk)
            self.flush()

        req = HTTPRequest(
            url=f"http://{UPSTREAM_HOST}{self.request.uri}",
            method=method,
            headers=self._request_headers(),
            body=body,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            header_callback=on_header,
            streaming_callback=on_chunk,
            request_timeout=self.guard.upstream_timeout,
        )
        try:
            resp = await self.guard.client(self.target).fetch(req, raise_error=False)
        except Exception as exc:
            if overflow[0]:
                self._deny(403, "the response exceeds the contents read cap: not served")
            if sent_headers[0]:
                log.warning("upstream failed mid-response: %s", exc)
                self.finish()
                return
            if isinstance(exc, HTTPClientError) and exc.code == 599:
                self._deny(502, "sandbox unreachable")
            self._deny(502, f"sandbox unreachable: {type(exc).__name__}")
            return
        if overflow[0]:
            self._deny(403, "the response exceeds the contents read cap: not served")
        if resp.code == 599:
            if sent_headers[0]:
                self.finish()
                return
            self._deny(502, "sandbox unreachable")
        if sent_headers[0]:
            self.finish()
            return
        payload = b"".join(buf)
        # whatever the file is called (x.ipynb too): a binary contents model is not served
        if d.refuse_binary and resp.code == 200 and self._is_binary_contents(payload, resp.headers):
            self._deny(403, "binary file contents are not served")
        if (
            200 <= resp.code < 300
            and payload
            and not media_type_allowed(resp.headers.get("Content-Type", ""), d.response_types)
        ):
            self._deny(403, "the response's content type is not allowed on this route")
        if cap is not None and d.rest.startswith("api/contents") and resp.code == 200:
            limit = self.guard.ledger.settings.max_notebook_read
            trimmed = trim_notebook_model(payload, limit)
            if trimmed is None:
                self._deny(
                    403,
                    f"this file is too large to display ({len(payload)} bytes; one read may show"
                    f" {limit}): open a smaller part, or take it out through an export request",
                )
            payload = trimmed or b""
        if 200 <= resp.code < 300 and d.route in SESSION_ANSWERS and payload:
            self.guard.kernel_paths.observe(self.user, d.project, payload)
        elif 200 <= resp.code < 300 and d.route == "hdh-template-copy":
            await self._audit_template_copy(payload)
        self._apply_response_headers(resp.code, resp.headers)
        if payload and resp.code not in (204, 304) and method != "HEAD":
            self.write(self._show(payload))
        self.finish()

    @staticmethod
    def _is_binary_contents(payload: bytes, headers: httputil.HTTPHeaders) -> bool:
        if headers.get("Content-Encoding"):
            return True  # cannot inspect: refuse rather than guess
        try:
            obj = json.loads(payload)
        except ValueError:
            return False
        return isinstance(obj, dict) and obj.get("format") == "base64"

    def _apply_response_headers(self, code: int, headers: httputil.HTTPHeaders) -> None:
        self.set_status(code, httputil.responses.get(code, "Unknown"))
        shown = 0
        for k, v in headers.get_all():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in DROPPED_RESPONSE:
                continue
            if lk != "date":  # the server's clock, not the sandbox's content
                shown += len(k) + len(v) + 4
            if lk == "set-cookie" and _cookie_name(v).lower().startswith(HUB_COOKIE_PREFIXES):
                continue  # the sandbox may not set the hub's cookies
            if lk == "location" and v.startswith(UPSTREAM_ORIGIN + "/"):
                v = v[len(UPSTREAM_ORIGIN) :]
            if lk in ("set-cookie",):
                self.add_header(k, v)
            else:
                self.set_header(k, v)
        self.set_default_headers()
        if self._accounted():  # the sandbox's headers are shown too (names, dates, cookies)
            self.guard.ledger.add(self.user, self.decision.project, shown)

    # ------------------------------------------------------------ websockets

    def check_origin(self, origin: str) -> bool:
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    async def _open_upstream_ws(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            self._deny(403, "cross-origin websocket refused")
        headers = httputil.HTTPHeaders()
        for k, v in self._request_headers().get_all():
            if k.lower() in WS_HEADERS or k.lower() in (
                "host",
                "x-forwarded-user",
                "authorization",
            ):
                headers.add(k, v)
        offered = [
            p.strip()
            for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        req = HTTPRequest(
            url=f"ws://{UPSTREAM_HOST}{self.request.uri}",
            headers=headers,
            request_timeout=30,
        )
        try:
            self.upstream = await websocket.websocket_connect(
                req,
                subprotocols=offered or None,
                resolver=upstream_resolver(self.target),
                on_message_callback=self._on_upstream_message,
                max_message_size=1024 * 1024 * 1024,
            )
        except HTTPClientError as exc:
            self._deny(exc.code if exc.code != 599 else 502, "sandbox refused the websocket")
        except Exception as exc:
            self._deny(502, f"sandbox unreachable: {type(exc).__name__}")
        protocol = self.upstream.protocol if self.upstream is not None else None
        if protocol is not None:
            # a pod over TCP: each kernel message leaves at once (a Unix socket: no effect)
            protocol.set_nodelay(True)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        chosen = self.upstream.selected_subprotocol if self.upstream else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small interactive frames: no Nagle/delayed-ACK stalls
        self._opened = True
        pending, self._pending_out = self._pending_out, []
        for m in pending:
            self._send_down(m)

    def _send_down(self, message: str | bytes) -> None:
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self._close_upstream()

    def _on_upstream_message(self, message: str | bytes | None) -> None:
        if message is None:
            self.close()
            return
        shown = self._shown(message)
        if shown is None:
            return
        message = shown
        if not self._opened:
            self._pending_out.append(message)
            return
        self._send_down(message)

    def _shown(self, message: str | bytes) -> str | bytes | None:
        """What of a sandbox websocket message reaches the browser (counted), or None."""
        d = self.decision
        ledger = self.guard.ledger
        over = ledger.over_budget(self.user)
        if over:
            ledger.check_raises(self.user)
            over = ledger.over_budget(self.user)
        size = len(message)
        cap = ledger.settings.max_kernel_message
        if over or size > cap:
            note = (
                "[HDH guard] " + ledger.refusal(self.user)
                if over
                else f"[HDH guard] an output of {size} bytes was not shown: one message may "
                f"show {cap} bytes. Write large results to a file in the workspace and take "
                "them out through an export request."
            )
            if d.kind == "kernel_ws":
                out = withhold_kernel_message(
                    message, self.selected_subprotocol, self._replies, note
                )
            elif d.kind == "terminal_ws" and (not self._notified or not over):
                self._notified = over
                out = terminal_notice(note)
            else:
                out = None
            if out is None:
                return None
            message = out
        ledger.add(self.user, d.project, len(message))
        return message

    async def on_message(self, message: str | bytes) -> None:
        d = self.decision
        forward = True
        try:
            events = self._audit_events(message)
        except A.RefusedMessage as exc:
            # a well-formed message of a type never forwarded: its refusal is what is recorded
            kernel_id = d.rest.split("/")[2]
            log.warning("refused %s from %s to kernel %s", exc, d.user, kernel_id)
            events = [
                A.refused_event(exc.msg, user=self.user, project=d.project, kernel_id=kernel_id)
            ]
            forward = False
        except A.MessageError as exc:
            log.warning("unparseable %s message from %s closed the socket: %s", d.kind, d.user, exc)
            self.close(1008, "message refused by the guard")
            return
        for event in events:
            try:
                await self.guard.audit_sink.record(event)
            except Exception:
                log.exception("audit failed: message dropped and socket closed")
                self.close(1011, "audit unavailable")
                return
        if not forward or self.upstream is None:
            return
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.close()

    def _audit_events(self, message: str | bytes) -> list[A.AuditEvent]:
        d = self.decision
        if d.kind == "kernel_ws":
            kernel_id = d.rest.split("/")[2]
            msg = A.parse_kernel_message(message, self.selected_subprotocol)
            path = self.guard.kernel_paths.get(self.user, d.project, kernel_id)
            ev = A.kernel_event(
                msg, user=self.user, project=d.project, kernel_id=kernel_id, path=path
            )
            self._replies.remember(msg)
            return [ev]
        if d.kind == "terminal_ws":
            term = d.rest.split("/")[-1]
            return [
                A.terminal_event(line, user=self.user, project=d.project, terminal=term)
                for line in self._terminal.feed(message)
            ]
        return []

    def on_close(self) -> None:
        self._close_upstream()
        if self.decision.kind == "terminal_ws":
            term = self.decision.rest.split("/")[-1]
            for line in self._terminal.flush():
                ev = A.terminal_event(
                    line, user=self.user, project=self.decision.project, terminal=term
                )
                _spawn_record(self.guard.audit_sink, ev)

    def _close_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def on_connection_close(self) -> None:
        if self.ws_connection is None:  # plain HTTP request
            return
        super().on_connection_close()


def _spawn_record(sink: A.AuditSink, event: A.AuditEvent) -> None:
    import asyncio

    async def run() -> None:
        try:
            await sink.record(event)
        except Exception:
            log.exception("audit of trailing terminal input failed")

    asyncio.ensure_future(run())


def _cookie_name(set_cookie: str) -> str:
    try:
        c: SimpleCookie = SimpleCookie()
        c.load(set_cookie)
        return next(iter(c.keys()), "")
    except CookieError:
        return set_cookie.split("=", 1)[0].strip()


def _short_reason(status: int) -> str:
    return httputil.responses.get(status, "Error")
