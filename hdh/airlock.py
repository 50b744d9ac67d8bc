"""The airlock from a notebook: submit outputs for export-control review from inside a sandbox.

Owns the Python API a researcher calls in a sandbox kernel. Inside a sandbox
the control plane is reachable only through the API bridge: on Kubernetes the
guard's bridge port at ``HDH_BRIDGE_URL`` (``http://HOST:PORT/projects/<slug>``,
which wins), otherwise the hub's Unix socket at ``/bridge/api.sock``
(``HDH_BRIDGE_SOCKET`` overrides it), read by :func:`hdh._bridge.bridge_endpoint`;
the bridge adds who the caller is, so nothing here carries a credential. Standard
library only (HTTP/1.1 over the socket or TCP with :mod:`http.client`, JSON; no
redirect followed), so it works in any project environment::

    from hdh import airlock as egress

    request = egress.new_request("Table 2: admissions by region")
    request.add("outputs/table2.csv", role="output",
                context={"population": "adults admitted in 2024", "variables": ["region"]},
                controls="cells under 10 suppressed")
    request.add("analysis.ipynb", role="code")
    request.submit()           # snapshots are already taken; runs the automated checks
    egress.status(request.id)  # prints each file's check results
    egress.requests()          # this project's requests

Paths are workspace files: relative to ``/workspace`` (the project workspace),
or absolute inside it; a relative path is taken from the current folder when
that is inside the workspace. Every refusal of the control plane raises
:class:`AirlockError` with its one-line reason (and HTTP status).
"""

from __future__ import annotations

import http.client
import json
import os
import posixpath
import socket
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from hdh._bridge import BridgeEndpoint

__all__ = [
    "AirlockError",
    "Airlock",
    "Request",
    "new_request",
    "requests",
    "request",
    "status",
]

WORKSPACE = "/workspace"
WORKSPACE_ENV = "HDH_WORKSPACE"
PREFIX = "/api/bridge/egress/requests"
MAX_BODY = 64 * 2**10  # the bridge refuses larger bodies
ROLES = ("output", "supporting", "code")


class AirlockError(Exception):
    """The control plane (or the bridge) refused a request; ``status`` is the HTTP status."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Airlock:
    """A connection to the control plane's airlock through the API bridge.

    ``bridge_url`` (``http://HOST:PORT[/PREFIX]``) or ``socket_path``, else the environment
    (``HDH_BRIDGE_URL``, then ``HDH_BRIDGE_SOCKET``, then ``/bridge/api.sock``). A malformed
    URL is not refused here but by each call, as an :class:`AirlockError`."""

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        bridge_url: str | None = None,
        workspace: str | None = None,
        timeout: float = 300,
    ) -> None:
        # imported here, not at the top, so this file alone still loads on the bare standard
        # library (tests/egress/test_client.py); hdh._bridge itself imports only that too
        from hdh._bridge import BridgeURLError, bridge_endpoint

        self._refused: str | None = None
        try:
            self.endpoint: BridgeEndpoint | None = bridge_endpoint(
                url=bridge_url, socket=socket_path
            )
        except BridgeURLError as exc:
            self.endpoint, self._refused = None, str(exc)
        #: the bridge socket, or None when the bridge is reached over TCP (or refused)
        self.socket_path = self.endpoint.socket if self.endpoint else None
        self.workspace = posixpath.normpath(workspace or os.environ.get(WORKSPACE_ENV) or WORKSPACE)
        self.timeout = timeout

    # --- transport ---------------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request; the decoded answer, or :class:`AirlockError`."""
        data = None
        headers = {"Accept": "application/json"}
        if method == "POST":
            data = json.dumps(body or {}).encode()
            if len(data) > MAX_BODY:
                raise AirlockError(f"request body of {len(data)} bytes is over {MAX_BODY} bytes")
            headers["Content-Type"] = "application/json"
        endpoint = self.endpoint
        if endpoint is None:
            raise AirlockError(f"no API bridge: {self._refused}")
        conn: http.client.HTTPConnection
        if endpoint.socket is not None:
            conn = _UnixConnection(endpoint.socket, self.timeout)
        else:
            conn = http.client.HTTPConnection(
                str(endpoint.host), endpoint.port, timeout=self.timeout
            )
        try:
            conn.request(method, endpoint.target(path), body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except FileNotFoundError:
            raise AirlockError(
                f"no API bridge at {endpoint.where}: the airlock is reached from a sandbox"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            why = str(exc) or type(exc).__name__
            raise AirlockError(
                f"the API bridge at {endpoint.where} did not answer: {why}"
            ) from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if resp.status >= 300:  # an error, or a redirect (never followed)
            detail = answer.get("detail") if isinstance(answer, dict) else None
            if not isinstance(detail, str):
                detail = json.dumps(detail) if detail else raw[:300].decode("utf-8", "replace")
            raise AirlockError(detail or f"HTTP {resp.status}", resp.status)
        if answer is None and raw:
            raise AirlockError(
                f"the control plane answered something that is not JSON ({resp.status})"
            )
        return answer

    # --- paths -------------------------------------------------------------------------------

    def workspace_path(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the workspace (what the control plane takes), or ValueError."""
        text = os.fspath(path)
        if not text or "\x00" in text:
            raise ValueError("give the path of a file in the workspace")
        if not posixpath.isabs(text):
            cwd = posixpath.normpath(os.getcwd())
            inside = cwd == self.workspace or cwd.startswith(self.workspace + "/")
            text = posixpath.join(cwd if inside else self.workspace, text)
        full = posixpath.normpath(text)
        if not full.startswith(self.workspace + "/"):
            raise ValueError(f"{os.fspath(path)!r} is not a file inside {self.workspace}")
        return full[len(self.workspace) + 1 :]

    # --- the API -----------------------------------------------------------------------------

    def new_request(self, title: str) -> Request:
        """A new draft export request of this project."""
        return Request(self, self.call("POST", PREFIX, {"title": title}))

    def request(self, request_id: int) -> Request:
        return Request(self, self.call("GET", f"{PREFIX}/{_id(request_id)}"))

    def requests(self, state: str | None = None) -> list[dict[str, Any]]:
        """Summaries of this project's requests, newest first."""
        query = f"?state={urllib.parse.quote(state, safe='')}" if state else ""
        return list(self.call("GET", PREFIX + query))

    def status(self, request_id: int, *, out: TextIO | None = None) -> dict[str, Any]:
        """Print a request's state and each file's check results; return the full view."""
        view = self.call("GET", f"{PREFIX}/{_id(request_id)}")
        print(describe(view), file=out or sys.stdout)
        return dict(view)


def _id(request_id: Any) -> int:
    if isinstance(request_id, Request):
        return request_id.id
    if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 1:
        raise ValueError(f"a request id is a positive integer, not {request_id!r}")
    return request_id


class Request:
    """One export request, as last seen from the control plane (``view``)."""

    def __init__(self, airlock: Airlock, view: dict[str, Any]) -> None:
        self._airlock = airlock
        self.view = view

    @property
    def id(self) -> int:
        return int(self.view["id"])

    @property
    def state(self) -> str:
        return str(self.view.get("state"))

    @property
    def title(self) -> str:
        return str(self.view.get("title"))

    def __repr__(self) -> str:
        return f"<egress request #{self.id} {self.title!r}: {self.state}>"

    def refresh(self) -> Request:
        self.view = self._airlock.call("GET", f"{PREFIX}/{self.id}")
        return self

    def add(
        self,
        path: str | os.PathLike[str],
        role: str = "output",
        context: dict[str, Any] | str | None = None,
        controls: str = "",
    ) -> dict[str, Any]:
        """Snapshot a workspace file into this request now (again: replace it); its view."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        body: dict[str, Any] = {
            "path": self._airlock.workspace_path(path),
            "role": role,
            "controls": controls,
        }
        if context is not None:
            body["context"] = context
        answer = self._airlock.call("POST", f"{PREFIX}/{self.id}/files", body)
        self.refresh()
        return dict(answer)

    def submit(self) -> Request:
        """Submit for review (the automated checks run now); prints the check results."""
        self.view = self._airlock.call("POST", f"{PREFIX}/{self.id}/submit", {})
        print(describe(self.view))
        return self

    def withdraw(self, reason: str = "") -> Request:
        self.view = self._airlock.call("POST", f"{PREFIX}/{self.id}/withdraw", {"reason": reason})
        return self

    def status(self) -> dict[str, Any]:
        self.refresh()
        print(describe(self.view))
        return self.view


def describe(view: dict[str, Any]) -> str:
    """A few lines for a person: the request, each file's check status and flags, comments,
    the names released files download under."""
    lines = [f"Request #{view.get('id')} {view.get('title')!r}: {view.get('state')}"]
    for f in view.get("files") or []:
        status = f.get("check_status") or "not checked yet"
        lines.append(f"  {f.get('path')} ({f.get('role')}): {status}")
        report = f.get("check_report") or {}
        if report.get("error"):
            lines.append(f"    ! {report['error']}")
        if report.get("summary"):
            lines.append(f"    {report['summary']}")
        for flag in report.get("flags") or []:
            where = flag.get("location")
            where_text = f" at {json.dumps(where, sort_keys=True)}" if where else ""
            message = f": {flag['message']}" if flag.get("message") else ""
            lines.append(
                f"    - [{flag.get('severity', '?')}] {flag.get('rule')}{message}{where_text}"
            )
        if report.get("redacted") and report.get("flags"):
            lines.append(
                "    (the flagged values are shown to the reviewers only; run"
                " `hdh egress check FILE` here to see them)"
            )
        if f.get("vote_count"):
            lines.append(f"    votes: {f['vote_count']}")
    for c in view.get("comments") or []:
        lines.append(f"  comment by {c.get('author')}: {c.get('body')}")
    for r in view.get("released") or []:
        pending = "" if r.get("done", True) else " (pending)"
        lines.append(f"  released: {r.get('filename') or r.get('name')}{pending}")
    return "\n".join(lines)


_default: Airlock | None = None


def _airlock() -> Airlock:
    global _default
    if _default is None:
        _default = Airlock()
    return _default


def new_request(title: str) -> Request:
    """A new draft export request of this project (see the module docstring)."""
    return _airlock().new_request(title)


def requests(state: str | None = None) -> list[dict[str, Any]]:
    """This project's export requests, newest first."""
    return _airlock().requests(state)


def request(request_id: int) -> Request:
    """One request of this project."""
    return _airlock().request(request_id)


def status(request_id: int) -> dict[str, Any]:
    """Print a request's state and its files' check results."""
    return _airlock().status(request_id)
