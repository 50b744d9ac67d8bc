"""The control plane as the sandbox sees it: where the hub's API bridge is, and ``GET`` on it.

Owns :func:`bridge_endpoint`, the one reading of where the bridge is, which the three
in-sandbox clients share (:func:`get` here, :mod:`hdh.jupyter.bridge` for the server
extension, :mod:`hdh.airlock`): on Kubernetes ``HDH_BRIDGE_URL`` (``http://HOST:PORT`` and
an optional path prefix such as ``/projects/<slug>``, put in the pod's environment by the
spawner; the guard's bridge port strips the prefix), which wins; otherwise the Unix socket
``/bridge/api.sock`` the hub serves on one machine (``HDH_BRIDGE_SOCKET`` overrides the
path, in tests). Either way the sandbox carries no credential: the hub or the guard adds
its identity. A malformed URL is refused (:class:`BridgeURLError`, a one-line reason), never
guessed at. Standard library only at import (:mod:`hdh.airlock` uses it); :func:`get`
imports httpx when called, blocks, and never raises for an absent, silent or refused
bridge: the caller gets ``None``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import urllib.parse
from dataclasses import dataclass
from typing import Any

BRIDGE_SOCKET_ENV = "HDH_BRIDGE_SOCKET"
BRIDGE_URL_ENV = "HDH_BRIDGE_URL"
DEFAULT_SOCKET = "/bridge/api.sock"

_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_URL_FORM = "http://HOST:PORT[/PREFIX]"


class BridgeURLError(ValueError):
    """``HDH_BRIDGE_URL`` (or a URL given) is not a bridge URL; the message says why."""


@dataclass(frozen=True)
class BridgeEndpoint:
    """Where the API bridge answers: a Unix ``socket`` path, or ``host``:``port`` over TCP
    with a path ``prefix`` (``""`` or ``/a/b``, no trailing slash) before every request path."""

    socket: str | None = None
    host: str | None = None
    port: int | None = None
    prefix: str = ""

    @property
    def is_tcp(self) -> bool:
        return self.host is not None

    @property
    def origin(self) -> str:
        """``http://HOST:PORT`` (an IPv6 address in brackets); ``http://bridge`` on a socket."""
        if self.host is None:
            return "http://bridge"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def where(self) -> str:
        """The URL or the socket path, for messages."""
        return self.origin + self.prefix if self.is_tcp else str(self.socket)

    def target(self, path: str) -> str:
        """The request target for a control-plane ``path`` (``/api/...``): the prefix first."""
        return self.prefix + path


def parse_bridge_url(url: str) -> BridgeEndpoint:
    """The endpoint of ``http://HOST:PORT[/PREFIX]``, or :class:`BridgeURLError`.

    Refused: another scheme, no host or port, userinfo, a query or fragment, anything
    outside printable ASCII, and a prefix with an empty, ``.`` or ``..`` segment or a
    character other than letters, digits and ``-._~`` (so no ``%``). One trailing ``/`` is
    dropped."""

    def refuse(why: str) -> BridgeURLError:
        return BridgeURLError(
            f"the API bridge URL {url!r} is refused ({why}); the form is {_URL_FORM}"
        )

    if not url.isascii() or not url.isprintable() or " " in url:
        raise refuse("not printable ASCII, or a space")
    if "?" in url or "#" in url:
        raise refuse("a query or fragment")
    if "\\" in url:
        raise refuse("a backslash")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if parts.scheme != "http" or not url.startswith("http://"):
        raise refuse("not http")
    netloc = parts.netloc
    if "@" in netloc:
        raise refuse("a user or password")
    host_text, colon, port_text = netloc.rpartition(":")
    if not colon or not host_text or netloc.endswith("]"):
        raise refuse("no host or no port")
    if host_text.startswith("[") and host_text.endswith("]"):
        try:
            host = str(ipaddress.IPv6Address(host_text[1:-1]))
        except ValueError:
            raise refuse(f"{host_text} is not an IPv6 address") from None
    elif _HOSTNAME.fullmatch(host_text):
        host = host_text
    else:
        raise refuse(f"{host_text!r} is not a host name or address")
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise refuse(f"{port_text!r} is not a port (1-65535)")
    path = parts.path
    if path.endswith("/"):
        path = path[:-1]
    if path:
        segments = path.split("/")[1:]
        for segment in segments:
            if not segment or segment in (".", ".."):
                raise refuse("an empty, '.' or '..' path segment")
            if not _SEGMENT.fullmatch(segment):
                raise refuse(f"{segment!r}: a path segment has letters, digits and -._~ only")
    return BridgeEndpoint(host=host, port=int(port_text), prefix=path)


def bridge_endpoint(*, url: str | None = None, socket: str | None = None) -> BridgeEndpoint:
    """Where the bridge is: ``url`` if given, else ``socket`` if given, else
    ``$HDH_BRIDGE_URL`` (when set and not empty), else ``$HDH_BRIDGE_SOCKET``, else
    ``/bridge/api.sock``. A URL is checked (:func:`parse_bridge_url`): :class:`BridgeURLError`
    when malformed. Nothing is connected to."""
    if url:
        return parse_bridge_url(url)
    if socket:
        return BridgeEndpoint(socket=socket)
    env_url = os.environ.get(BRIDGE_URL_ENV)
    if env_url:
        return parse_bridge_url(env_url)
    return BridgeEndpoint(socket=os.environ.get(BRIDGE_SOCKET_ENV) or DEFAULT_SOCKET)


def bridge_configured() -> bool:
    """Whether this looks like a sandbox with a bridge: ``HDH_BRIDGE_URL`` set, or the
    socket present (what is there, not whether it answers)."""
    try:
        endpoint = bridge_endpoint()
    except BridgeURLError:
        return True  # set, though malformed: the clients say why when called
    if endpoint.is_tcp:
        return True
    return os.path.exists(str(endpoint.socket))


def get(path: str, timeout: float = 10.0) -> Any:
    """The JSON body of ``GET path`` (200 only), or None when the bridge is not reachable
    (no socket, a malformed ``HDH_BRIDGE_URL``, no answer, another status, not JSON)."""
    try:
        endpoint = bridge_endpoint()
    except BridgeURLError:
        return None
    if not endpoint.is_tcp:
        try:
            if not stat.S_ISSOCK(os.stat(str(endpoint.socket)).st_mode):
                return None
        except OSError:
            return None
    import httpx

    transport = (
        httpx.HTTPTransport(uds=endpoint.socket) if endpoint.socket else httpx.HTTPTransport()
    )
    try:
        with httpx.Client(
            transport=transport,
            base_url=endpoint.origin,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            r = client.get(endpoint.target(path))
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None
