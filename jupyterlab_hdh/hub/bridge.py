"""The API bridge: how a sandbox (no network) reaches the control plane, as itself only.

Owns the per-sandbox bridge server and its policy. The spawner (trusted, in the
hub process) serves one Unix socket per sandbox, ``<runtime>/bridge/api.sock``,
bound read-only into the sandbox at ``/bridge/api.sock``. Whoever can connect to
that socket *is* that sandbox: the socket is the credential, and no secret
enters the sandbox. Each request is checked and rebuilt here:

* only ``GET`` of an allow-listed path (:data:`ALLOWED_PATHS`), or ``POST`` of a JSON body
  (at most 64 KiB) to the airlock routes and the access request (:data:`ALLOWED_POSTS`),
  given as a plain origin-form path: no absolute URL, no ``%``-encoding, no ``.``/``..``
  or empty segment, no backslash; anything else is answered 403 by the bridge itself;
* none of the sandbox's headers pass except :data:`PASSED_HEADERS` (so no
  ``Authorization``, cookies, ``Host``, ``X-Forwarded-*`` or forged ``X-HDH-*``);
  the bridge adds the identity of the sandbox it serves (``X-HDH-User``,
  ``X-HDH-Project``) and the bridge token (``X-HDH-Bridge``), a 0600 secret
  shared by the hub process and the control-plane API only;
* the upstream is fixed (the control-plane URL): the request's ``Host`` and
  target never choose it.

The control plane accepts the identity only with the right token and re-checks
the permit itself (``api/deps.py``, ``/api/bridge/...``). :func:`check_request`
and :func:`upstream_headers` are pure, so the policy is unit-testable.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tornado import httpclient, httpserver, netutil, web

BRIDGE_HEADER = "X-HDH-Bridge"
USER_HEADER = "X-HDH-User"
PROJECT_HEADER = "X-HDH-Project"

#: The only control-plane routes a sandbox may reach (full match on the raw path).
ALLOWED_PATHS = re.compile(
    r"/api/bridge/whoami"
    r"|/api/bridge/egress/checks"
    r"|/api/bridge/audit/code"
    r"|/api/bridge/access/[a-z0-9][a-z0-9_-]{0,62}"
    r"|/api/bridge/egress/requests(?:/[0-9]{1,9})?"
    r"|/api/bridge/applications"
    r"|/api/catalogue/datasets(?:/[A-Za-z0-9._-]+(?:/versions/[A-Za-z0-9._-]+"
    r"(?:/quality|/tables/[A-Za-z0-9._-]+)?)?)?"
    r"|/api/catalogue/search"
)
#: The routes a sandbox may POST to, JSON bodies only: its own export requests (the airlock),
#: and its lead's request for access to a dataset (an amendment of the project's permit).
ALLOWED_POSTS = re.compile(
    r"/api/bridge/egress/requests(?:/[0-9]{1,9}/(?:files|submit|withdraw))?"
    r"|/api/bridge/applications"
)
#: Query strings: printable ASCII without '#' or whitespace (they never pick the route).
QUERY_RE = re.compile(r"[A-Za-z0-9._~%&=+,:;*!$'()/?@-]{0,1024}")
#: Request headers passed on (lower case); every other header is dropped.
PASSED_HEADERS = ("accept", "accept-language")
#: Response headers passed back to the sandbox.
RETURNED_HEADERS = ("Content-Type",)
MAX_RESPONSE_BYTES = 32 * 2**20
MAX_REQUEST_BYTES = 64 * 2**10


class BridgeRefused(Exception):  # noqa: N818 - a refusal, answered 403 with the message
    """A request the bridge does not forward."""


def check_request(method: str, target: str) -> tuple[str, str]:
    """``(path, query)`` of an allowed request; raise :class:`BridgeRefused` otherwise.

    ``target`` is the raw request target as received (``/path?query``).
    """
    if method not in ("GET", "POST"):
        raise BridgeRefused(f"the API bridge forwards GET and POST only, not {method}")
    if not target.startswith("/") or target.startswith("//"):
        raise BridgeRefused("the API bridge takes a path (/api/...), not a URL")
    path, _, query = target.partition("?")
    if "%" in path or "\\" in path:
        raise BridgeRefused("the API bridge refuses encoded or backslashed paths")
    segments = path.split("/")[1:]
    if any(seg in ("", ".", "..") for seg in segments):
        raise BridgeRefused("the API bridge refuses empty, '.' and '..' path segments")
    allowed = ALLOWED_PATHS if method == "GET" else ALLOWED_POSTS
    if not allowed.fullmatch(path):
        raise BridgeRefused(f"{method} {path} is not reachable through the API bridge")
    if method == "POST" and query:
        raise BridgeRefused("the API bridge refuses a query string on POST")
    if not QUERY_RE.fullmatch(query):
        raise BridgeRefused("the API bridge refuses this query string")
    return path, query


def upstream_headers(
    incoming: Mapping[str, str], *, token: str, user: str, project: str
) -> dict[str, str]:
    """The headers sent upstream: a few harmless ones of the sandbox, then the bridge's own."""
    out = {k: v for k, v in incoming.items() if k.lower() in PASSED_HEADERS}
    out.update({BRIDGE_HEADER: token, USER_HEADER: user, PROJECT_HEADER: project})
    return out


@dataclass(frozen=True)
class BridgeTarget:
    """Where and as whom one sandbox's requests go."""

    api_url: str  # e.g. http://127.0.0.1:8001 (no trailing slash)
    token: str
    user: str
    project: str


class ForwardHandler(web.RequestHandler):
    """Checks one request against the bridge's policy and forwards it as its sandbox.

    Here the sandbox is the server's own (one socket, one sandbox); the cluster's guard
    (:mod:`jupyterlab_hdh.k8s.guard`) overrides :meth:`route` to find it from the caller."""

    target: BridgeTarget | None

    def initialize(self, target: BridgeTarget | None = None) -> None:
        self.target = target

    async def route(self) -> tuple[BridgeTarget, str]:
        """The sandbox this request comes from and its request target (``/api/...?query``);
        :class:`BridgeRefused` when it may not be forwarded."""
        if self.target is None:
            raise BridgeRefused("this bridge serves no sandbox")
        return self.target, self.request.uri or ""

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"detail": message, "reason": "bridge"})

    async def _forward(self) -> None:
        try:
            t, uri = await self.route()
            path, query = check_request(self.request.method or "", uri)
        except BridgeRefused as exc:
            self._refuse(403, str(exc))
            return
        url = t.api_url + path + (f"?{query}" if query else "")
        headers = upstream_headers(
            dict(self.request.headers.get_all()), token=t.token, user=t.user, project=t.project
        )
        body: bytes | None = None
        if self.request.method == "POST":
            ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._refuse(415, "the API bridge forwards JSON bodies only")
                return
            body = self.request.body or b"{}"
            headers["Content-Type"] = "application/json"
        req = httpclient.HTTPRequest(
            url,
            method=self.request.method or "GET",
            headers=headers,
            body=body,
            follow_redirects=False,
            request_timeout=60,
        )
        client = httpclient.AsyncHTTPClient(max_body_size=MAX_RESPONSE_BYTES)
        try:
            resp = await client.fetch(req, raise_error=False)
        except Exception as exc:  # connection refused, timeout: the control plane is away
            self._refuse(502, f"the control plane did not answer: {type(exc).__name__}")
            return
        if resp.code == 599:
            self._refuse(502, "the control plane did not answer")
            return
        self.set_status(resp.code)
        for name in RETURNED_HEADERS:
            if name in resp.headers:
                self.set_header(name, resp.headers[name])
        self.finish(resp.body or b"")

    async def get(self, *_: str) -> None:
        await self._forward()

    async def post(self, *_: str) -> None:
        await self._forward()

    async def put(self, *_: str) -> None:
        await self._forward()

    async def patch(self, *_: str) -> None:
        await self._forward()

    async def delete(self, *_: str) -> None:
        await self._forward()

    async def head(self, *_: str) -> None:
        await self._forward()

    async def options(self, *_: str) -> None:
        await self._forward()


def bridge_http_server(app: web.Application) -> httpserver.HTTPServer:
    """A bridge's HTTP server: small bodies and headers; ``X-Forwarded-*`` never believed
    (on a cluster the caller's own address is who it is)."""
    return httpserver.HTTPServer(
        app, xheaders=False, max_body_size=MAX_REQUEST_BYTES, max_header_size=16 * 2**10
    )


class BridgeServer:
    """Serve one sandbox's ``api.sock`` in the current Tornado/asyncio loop.

    ``group``: the sandbox's host gid when it runs as its own uid (root
    supervisor): the socket is then ``0660`` to that group, else ``0600``. The
    folder's own mode and group are the sandbox runtime's
    (:meth:`~jupyterlab_hdh.sandbox.process.Sandbox.start`); here it is only
    created when missing, owner-only.
    """

    def __init__(self, socket_path: Path, target: BridgeTarget, group: int | None = None) -> None:
        self.socket_path = Path(socket_path)
        self.target = target
        self.group = group
        self._server: httpserver.HTTPServer | None = None

    def start(self) -> None:
        folder = self.socket_path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{folder} is not a plain folder")
        # bind_unix_socket replaces a stale socket and refuses anything else in its place
        sock = netutil.bind_unix_socket(
            str(self.socket_path), mode=0o600 if self.group is None else 0o660
        )
        if self.group is not None:
            os.chown(self.socket_path, -1, self.group, follow_symlinks=False)
        app = web.Application([(r".*", ForwardHandler, {"target": self.target})])
        server = bridge_http_server(app)
        server.add_socket(sock)
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.socket_path).st_mode):
                os.unlink(self.socket_path)

    @property
    def running(self) -> bool:
        return self._server is not None


def read_token(path: str | Path) -> str:
    """The bridge token from its 0600 file (created by ``hub/config.py``)."""
    return Path(path).read_text().strip()
