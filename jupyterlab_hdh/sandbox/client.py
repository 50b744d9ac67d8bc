"""A small client of a sandbox's Jupyter server over its Unix socket (host side).

Owns how the host talks to a sandbox: REST calls (stdlib ``http.client``) and
the kernel websocket (``websocket-client``, a dependency of jupyter-server),
both over the sandbox's AF_UNIX socket, plus :meth:`SandboxClient.execute`,
which runs code in a kernel and collects its output. Used by the tests, the
spawner's readiness check, and available to the guard (which also gets
:class:`UnixSocketResolver` for Tornado's own clients).

The socket lives in a folder the sandbox can write (``/sock``), so its user
may replace ``jupyter.sock`` with a symlink to another sandbox's socket.
:func:`connect_unix` therefore opens the path with ``O_PATH|O_NOFOLLOW``,
checks it is a socket, and connects through ``/proc/self/fd/N``: a symlink is
never followed on the host.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import socket
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyterlab_hdh.sandbox.errors import SandboxClientError


def connect_unix(path: str | os.PathLike[str], timeout: float | None = 10.0) -> socket.socket:
    """Connect to the AF_UNIX socket at ``path`` without following a symlink there."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SandboxClientError("the sandbox socket does not exist") from None
    except OSError as e:
        raise SandboxClientError(f"cannot open the sandbox socket: {e.strerror}") from None
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise SandboxClientError("the sandbox socket path is not a socket (refused)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(f"/proc/self/fd/{fd}")
        except OSError as e:
            sock.close()
            raise SandboxClientError(f"cannot connect to the sandbox: {e.strerror}") from None
        return sock
    finally:
        os.close(fd)


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over :func:`connect_unix`."""

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = os.fspath(socket_path)

    def connect(self) -> None:
        self.sock = connect_unix(self.socket_path, self.timeout)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ExecResult:
    """What a kernel printed for one ``execute_request``."""

    stdout: str = ""
    stderr: str = ""
    status: str = ""  # "ok", "error", "aborted"
    error: tuple[str, str] | None = None  # (ename, evalue)
    result: str | None = None  # text/plain of execute_result
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        """Unpack as ``stdout, err`` (err = stderr, or "ename: evalue" on error)."""
        err = self.stderr
        if self.error is not None:
            err = (err + f"{self.error[0]}: {self.error[1]}").strip()
        return iter((self.stdout, err))


class SandboxClient:
    """REST and kernel access to one sandbox, given its socket and base URL."""

    def __init__(
        self, socket_path: str | os.PathLike[str], base_url: str = "/", timeout: float = 30.0
    ) -> None:
        self.socket_path = Path(socket_path)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        # XSRF stays on in the server; a client outside a browser just sends a
        # matching cookie and header (the check protects browsers, not us).
        self._xsrf = secrets.token_hex(16)

    # -- REST ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {
            "Host": "localhost",
            "Cookie": f"_xsrf={self._xsrf}",
            "X-XSRFToken": self._xsrf,
        }
        h.update(extra or {})
        return h

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One HTTP request; ``path`` is relative to the base URL."""
        data: bytes | None = None
        extra = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            extra.setdefault("Content-Type", "application/json")
        conn = UnixHTTPConnection(self.socket_path, timeout or self.timeout)
        try:
            conn.request(method, self.url(path), body=data, headers=self._headers(extra))
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        except SandboxClientError:
            raise
        except (OSError, http.client.HTTPException) as e:
            raise SandboxClientError(f"request to the sandbox failed: {e}") from None
        finally:
            conn.close()

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        r = self.request("GET", "api/status", timeout=timeout)
        if r.status != 200:
            raise SandboxClientError(f"api/status answered {r.status}")
        return dict(r.json())

    def contents(self, path: str, content: bool = True, fmt: str | None = None) -> Response:
        q = f"?content={int(content)}" + (f"&format={fmt}" if fmt else "")
        return self.request("GET", "api/contents/" + quote(path) + q)

    def start_kernel(self, name: str = "python3") -> str:
        r = self.request("POST", "api/kernels", {"name": name})
        if r.status != 201:
            raise SandboxClientError(f"kernel start failed ({r.status}): {r.body[:200]!r}")
        return str(r.json()["id"])

    def shutdown_kernel(self, kernel_id: str) -> None:
        self.request("DELETE", f"api/kernels/{kernel_id}")

    # -- kernel websocket ---------------------------------------------------

    def connect_kernel(self, kernel_id: str, timeout: float | None = None) -> Any:
        """A connected ``websocket.WebSocket`` on ``api/kernels/<id>/channels``."""
        import websocket  # websocket-client, a jupyter-server dependency

        sock = connect_unix(self.socket_path, timeout or self.timeout)
        try:
            return websocket.create_connection(
                "ws://localhost" + self.url(f"api/kernels/{kernel_id}/channels"),
                socket=sock,
                timeout=timeout or self.timeout,
                header=[f"X-XSRFToken: {self._xsrf}"],
                cookie=f"_xsrf={self._xsrf}",
                suppress_origin=True,
            )
        except Exception as e:
            sock.close()
            raise SandboxClientError(f"kernel websocket failed: {e}") from None

    def execute(
        self, code: str, kernel_id: str | None = None, timeout: float | None = None
    ) -> ExecResult:
        """Run ``code`` in a kernel (a new one, shut down after, unless ``kernel_id``)."""
        own = kernel_id is None
        kid = kernel_id or self.start_kernel()
        try:
            ws = self.connect_kernel(kid, timeout)
            try:
                return _run(ws, code, timeout or self.timeout)
            except SandboxClientError:
                raise
            except Exception as e:  # websocket errors, socket timeouts
                raise SandboxClientError(
                    f"kernel connection failed: {e or type(e).__name__}"
                ) from None
            finally:
                ws.close()
        finally:
            if own:
                with contextlib.suppress(SandboxClientError):
                    self.shutdown_kernel(kid)


def execute_request(
    code: str, *, username: str = "hdh", store_history: bool = False
) -> dict[str, Any]:
    """A Jupyter ``execute_request`` message on the shell channel (legacy JSON framing)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": username,
            "session": uuid.uuid4().hex,
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def _run(ws: Any, code: str, timeout: float) -> ExecResult:
    message = execute_request(code)
    msg_id = message["header"]["msg_id"]
    ws.send(json.dumps(message))
    out = ExecResult()
    got_reply = got_idle = False
    deadline = time.monotonic() + timeout
    while not (got_reply and got_idle):
        if time.monotonic() > deadline:
            raise SandboxClientError("kernel did not answer in time")
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        raw = ws.recv()
        if not isinstance(raw, str):
            continue
        msg = json.loads(raw)
        if msg.get("msg_type") == "status" or msg.get("header", {}).get("msg_type") == "status":
            state = msg.get("content", {}).get("execution_state")
            if state in ("restarting", "dead"):
                raise SandboxClientError(f"the kernel died ({state}); out of memory?")
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        mtype, content = msg["header"]["msg_type"], msg["content"]
        if mtype == "stream":
            if content["name"] == "stdout":
                out.stdout += content["text"]
            else:
                out.stderr += content["text"]
        elif mtype in ("execute_result", "display_data"):
            out.outputs.append(content)
            if mtype == "execute_result":
                out.result = content.get("data", {}).get("text/plain")
        elif mtype == "error":
            out.error = (content["ename"], content["evalue"])
        elif mtype == "execute_reply":
            got_reply = True
            out.status = content["status"]
            if content["status"] == "error" and out.error is None:
                out.error = (content.get("ename", ""), content.get("evalue", ""))
        elif mtype == "status" and content.get("execution_state") == "idle":
            got_idle = True
    return out


class UnixSocketResolver:
    """A ``tornado.netutil.Resolver`` sending every host to one sandbox socket.

    For Tornado clients (``websocket_connect(..., resolver=...)`` or
    ``SimpleAsyncHTTPClient(resolver=...)``): like :func:`connect_unix` it never
    follows a symlink; it checks the path and hands Tornado a ``/proc/self/fd``
    path kept open until :meth:`close`.
    """

    def __new__(cls, socket_path: str | os.PathLike[str]) -> Any:
        from tornado.netutil import Resolver

        class _Resolver(Resolver):
            def initialize(self, socket_path: str) -> None:
                self.socket_path = socket_path
                self._fds: list[int] = []

            async def resolve(
                self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
            ) -> list[tuple[int, Any]]:
                fd = os.open(self.socket_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
                if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise SandboxClientError("the sandbox socket path is not a socket (refused)")
                self._fds.append(fd)
                return [(socket.AF_UNIX, f"/proc/self/fd/{fd}")]

            def close(self) -> None:
                for fd in self._fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._fds = []

        return _Resolver(socket_path=os.fspath(socket_path))
