"""The guard's export policy: a pure decision on one request, before it reaches a sandbox.

Owns what the guard lets through. ``decide()`` normalises the raw request path
(refusing anything ambiguous: repeated or encoded separators, dot segments,
backslashes, NUL and control characters, invalid or overlong UTF-8, invisible
or bidi characters, non-NFC text, paths outside the prefix) and then applies
the route rules: no ``/files``, ``/view``, ``/nbconvert`` or ``/api/nbconvert``,
no ``download`` query parameter, no extension-manager or plugin-manager writes,
no ``format=base64`` contents reads, size caps on contents reads and uploads.
Routes are allow-listed: an unknown top-level route answers 404.

No Tornado here: the proxy (``guard/proxy.py``) calls ``decide()`` and enforces
the caps the decision carries (response size, request body size).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote

MiB = 1024 * 1024


@dataclass(frozen=True)
class GuardConfig:
    """Caps and switches of the export policy (all sizes in bytes)."""

    #: Responses to contents reads of anything but a notebook (text files, listings).
    max_contents_read_bytes: int = 1 * MiB
    #: Responses to contents reads of a notebook (``*.ipynb``).
    max_notebook_read_bytes: int = 32 * MiB
    #: Request bodies of ``PUT``/``POST``/``PATCH`` on ``api/contents`` (each chunk and
    #: the running total of a chunked upload).
    max_upload_bytes: int = 32 * MiB
    #: Request bodies of every other route.
    max_request_bytes: int = 1 * MiB
    #: Whether ``PUT api/contents`` may carry ``format: base64`` (binary uploads).
    allow_binary_uploads: bool = False
    #: Longest accepted path segment, in UTF-8 bytes.
    max_segment_bytes: int = 255


#: Top-level routes of a sandbox server the guard exposes; others answer 404.
ALLOWED_TOP = frozenset(
    {"", "lab", "static", "api", "terminals", "doc", "tree", "kernelspecs", "custom", "lsp", "hdh"}
)
#: Websocket routes (matched on the path after the user/project prefix).
WS_ROUTES = (
    re.compile(r"^api/kernels/[0-9a-fA-F-]{1,64}/channels$"),
    re.compile(r"^terminals/websocket/[A-Za-z0-9_-]{1,64}$"),
    re.compile(r"^api/events/subscribe$"),
    re.compile(r"^lsp/ws/[A-Za-z0-9_.-]{1,128}$"),
)
KERNEL_WS = WS_ROUTES[0]
TERMINAL_WS = WS_ROUTES[1]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Percent-encodings that are never needed in a URL path and only serve to hide
# a separator, a dot, a second encoding round or a control character.
_FORBIDDEN_ENCODED = frozenset({0x2F, 0x5C, 0x2E, 0x25}) | frozenset(range(0x20)) | {0x7F}
_INVISIBLE = frozenset(
    {0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, 0x00AD}
    | set(range(0x202A, 0x202F))
    | set(range(0x2066, 0x206A))
)


@dataclass(frozen=True)
class Decision:
    """The verdict on one request, with the caps the proxy must enforce if allowed."""

    allowed: bool
    status: int
    reason: str
    user: str = ""
    project: str = ""
    #: The decoded path after ``<prefix><user>/<project>/`` (no leading slash).
    rest: str = ""
    #: ``http``, ``kernel_ws``, ``terminal_ws`` or ``ws``.
    kind: str = "http"
    #: Largest response body the proxy may pass on (None: no cap).
    max_response_bytes: int | None = None
    #: Largest request body the proxy may accept.
    max_request_bytes: int = 0
    #: For a contents write: the contents path (an audited ``file.save`` or upload).
    contents_path: str | None = None


def deny(status: int, reason: str) -> Decision:
    return Decision(False, status, reason)


class _Ambiguous(ValueError):
    pass


def _decode_path(raw: str) -> str:
    """Percent-decode once, refusing every encoding trick; raise _Ambiguous."""
    for ch in raw:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or ch == "\\":
            raise _Ambiguous("control character or backslash in the path")
        if o > 0x7E:
            raise _Ambiguous("raw non-ASCII character in the path (must be percent-encoded)")
    if _BAD_PCT.search(raw):
        raise _Ambiguous("malformed percent-encoding")
    for m in _PCT.finditer(raw):
        if int(m.group(1), 16) in _FORBIDDEN_ENCODED:
            raise _Ambiguous(f"encoded separator, dot, percent or control character ({m.group(0)})")
    try:
        # strict UTF-8 refuses overlong forms (%c0%ae), surrogates and truncated sequences
        text = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise _Ambiguous("invalid UTF-8 in the path (overlong or truncated encoding)") from exc
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or o in _INVISIBLE or ch == "\\":
            raise _Ambiguous("control, invisible or bidi character in the path")
        if unicodedata.category(ch) in ("Cs", "Co", "Cn"):
            raise _Ambiguous("unassigned, private-use or surrogate character in the path")
    if unicodedata.normalize("NFC", text) != text:
        raise _Ambiguous("path is not in Unicode NFC form")
    return text


def _segments(path: str, max_segment_bytes: int) -> list[str]:
    if not path.startswith("/"):
        raise _Ambiguous("path is not absolute")
    parts = path[1:].split("/")
    # one trailing slash is allowed; any other empty segment is a '//'
    if parts and parts[-1] == "":
        parts = parts[:-1]
    for p in parts:
        if p == "":
            raise _Ambiguous("empty path segment ('//')")
        if p in (".", ".."):
            raise _Ambiguous("dot segment in the path")
        if p != p.strip() or p.endswith("."):
            raise _Ambiguous("path segment with leading/trailing space or trailing dot")
        if len(p.encode("utf-8")) > max_segment_bytes:
            raise _Ambiguous("path segment too long")
    return parts


def _query_keys(query: str) -> list[tuple[str, str]]:
    if "\x00" in query or "\\" in query:
        raise _Ambiguous("NUL or backslash in the query")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Ambiguous("malformed query string") from exc
    out = []
    for k, v in pairs:
        # a key hidden under more encoding rounds (%2564ownload) is still a key
        for _ in range(3):
            k2 = unquote(k)
            if k2 == k:
                break
            k = k2
        out.append((k.strip().lower(), v))
    return out


def decide(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    prefix: str = "/user/",
    config: GuardConfig | None = None,
) -> Decision:
    """Decide whether the guard forwards ``method raw_path?query`` to the sandbox.

    ``raw_path`` is the path exactly as received (still percent-encoded, no
    query); ``prefix`` is JupyterHub's user prefix (``/user/``, or
    ``/<base>/user/``). The URL must be ``<prefix><user>/<project>/...``.
    """
    cfg = config or GuardConfig()
    method = method.upper()
    if method not in _METHODS:
        return deny(405, f"method {method} not allowed")
    try:
        path = _decode_path(raw_path)
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise _Ambiguous("bad prefix configuration")
        if not path.startswith(prefix):
            return deny(404, "path outside the guard's prefix")
        parts = _segments(path, cfg.max_segment_bytes)
        pre = [p for p in prefix.split("/") if p]
        if parts[: len(pre)] != pre or len(parts) < len(pre) + 2:
            return deny(404, "path is not /user/<user>/<project>/...")
        user, project = parts[len(pre)], parts[len(pre) + 1]
        rest_parts = parts[len(pre) + 2 :]
        rest = "/".join(rest_parts)
        params = _query_keys(query)
    except _Ambiguous as exc:
        return deny(400, f"ambiguous request refused: {exc}")

    base = Decision(True, 200, "allowed", user=user, project=project, rest=rest)
    top = rest_parts[0] if rest_parts else ""
    second = rest_parts[1] if len(rest_parts) > 1 else ""
    keys = {k for k, _ in params}

    if any("download" in k for k in keys):
        return deny(403, "downloads are disabled: export outputs through an export request")
    if top in ("files", "view", "nbconvert"):
        return deny(403, f"/{top}/ is disabled: export outputs through an export request")
    if top not in ALLOWED_TOP:
        return deny(404, f"route /{top}/ is not exposed by the guard")
    if top == "api" and second == "nbconvert":
        return deny(403, "nbconvert exports are disabled")
    if (
        top == "lab"
        and second == "api"
        and len(rest_parts) > 2
        and rest_parts[2] in ("extensions", "build", "plugins")
        and method not in _SAFE_METHODS
    ):
        return deny(403, "installing, building or toggling extensions is disabled")

    upgrade = _header(headers, "upgrade").lower() == "websocket"
    if upgrade:
        if method != "GET":
            return deny(400, "websocket upgrade must be a GET")
        if not any(r.match(rest) for r in WS_ROUTES):
            return deny(403, "websocket not allowed on this route")
        kind = "kernel_ws" if KERNEL_WS.match(rest) else "ws"
        if TERMINAL_WS.match(rest):
            kind = "terminal_ws"
        return replace(base, reason="websocket", kind=kind, max_request_bytes=0)

    if top == "api" and second == "contents":
        cpath = "/".join(rest_parts[2:])
        if any(p.startswith(".") for p in rest_parts[2:]):
            return deny(403, "hidden files are not served")
        is_nb = cpath.endswith(".ipynb")
        if method in _SAFE_METHODS:
            if any(k == "format" and v.strip().lower() == "base64" for k, v in params):
                return deny(403, "base64 (binary) contents reads are disabled")
            cap = cfg.max_notebook_read_bytes if is_nb else cfg.max_contents_read_bytes
            return replace(base, reason="contents read", max_response_bytes=cap)
        if method in ("PUT", "POST", "PATCH"):
            return replace(
                base,
                reason="contents write",
                max_request_bytes=cfg.max_upload_bytes,
                contents_path=cpath if method == "PUT" else None,
            )
        return replace(base, reason="contents delete")

    return replace(base, reason="allowed", max_request_bytes=cfg.max_request_bytes)


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return ""
