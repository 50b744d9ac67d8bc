"""The guard's export policy: a pure decision on one request, before it reaches a sandbox.

Owns what the guard lets through. ``decide()`` normalises the raw request path
(refusing anything ambiguous: repeated or encoded separators, dot segments,
backslashes, NUL and control characters, invalid or overlong UTF-8, invisible
or bidi characters, non-NFC text, paths outside the prefix) and then applies
one explicit route table, :data:`ROUTES`: **default deny**. A path after
``<prefix><user>/<project>/`` that no route matches answers 404, a route asked
with a method it does not list 405. Each route carries its methods, its kind
(plain HTTP, contents, or one of the websockets), the largest response the
proxy may pass on, the response media types it may carry and the largest
request body. Before the table, :data:`REFUSALS` answers 403 with a reason
(``/files``, ``/view``, ``/nbconvert``, ``/api/nbconvert``, extension-manager
and plugin-manager writes), as does a ``download`` query parameter anywhere; on
contents routes hidden paths and ``format=base64`` reads are refused too.

No Tornado here: the proxy (``guard/proxy.py``) calls ``decide()`` and enforces
what the decision carries (response cap and media types, binary refusal of
contents reads, request body cap).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote

KiB = 1024
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
    #: JupyterLab's HTML page (``lab``, ``lab/tree/...``, ``doc``).
    max_page_bytes: int = 1 * MiB
    #: One packaged static file (``static/...``, ``lab/extensions/<ext>/static/...``,
    #: themes, translations, licenses): from read-only locations only; JupyterLab's core
    #: bundle is ~2.5 MB.
    max_static_bytes: int = 16 * MiB
    #: JSON answers of the server's and HDH's APIs (kernels, sessions, status, ``hdh/...``).
    max_api_read_bytes: int = 1 * MiB
    #: One user-settings or workspace document (``lab/api/settings/<id>``,
    #: ``lab/api/workspaces/<id>``): their folders are writable by the kernel, so small.
    max_settings_read_bytes: int = 256 * KiB
    #: Their lists (``lab/api/settings`` carries every plugin's schema and user
    #: settings: ~140 KB with JupyterLab's own plugins).
    max_settings_list_bytes: int = 1 * MiB


#: Response media types.
JSON = ("application/json",)
HTML = ("text/html",)
#: What packaged static files are (``mimetypes`` of JupyterLab's and the extensions'
#: files); an entry ending in ``/`` is a prefix. No ``application/octet-stream``.
STATIC = (
    "text/javascript",
    "application/javascript",
    "text/css",
    "application/json",
    "image/",
    "font/",
    "application/font-woff",
    "application/vnd.ms-fontobject",
)
KERNEL_LOGO = ("image/png", "image/svg+xml")

_GET = frozenset({"GET", "HEAD"})
_WS = frozenset({"GET"})
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_TERM = r"[A-Za-z0-9_]{1,64}"
_KSPEC = r"[A-Za-z0-9._-]{1,64}"
_EXT = r"(?:@[A-Za-z0-9._-]+/)?[A-Za-z0-9._-]+"


@dataclass(frozen=True)
class Route:
    """One allowed route: the path after ``<prefix><user>/<project>/`` (full match)."""

    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    #: ``http``, ``contents`` (caps and checks of ``api/contents``), ``kernel_ws``,
    #: ``terminal_ws`` or ``ws``.
    kind: str = "http"
    #: The :class:`GuardConfig` field capping the response (websockets: none).
    cap: str | None = "max_api_read_bytes"
    #: Media types a 2xx response with a body may carry (empty: any).
    types: tuple[str, ...] = JSON
    #: The :class:`GuardConfig` field capping the request body (0 when there is none).
    request_cap: str | None = "max_request_bytes"
    #: Whether the answer is sandbox content counted by the display accounting
    #: (``guard/display.py``); False only for the packaged, read-only JupyterLab.
    counted: bool = True


def _r(
    name: str, pattern: str, methods: frozenset[str] | set[str], kind: str = "http", **kw: object
) -> Route:
    return Route(name, re.compile(pattern), frozenset(methods), kind, **kw)  # type: ignore[arg-type]


#: Catalogue names in ``/hdh/catalogue/...`` paths (``catalogue/records.py``'s patterns).
_DATASET = r"[a-z0-9][a-z0-9_-]{0,62}"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"
_TABLE = r"[A-Za-z][A-Za-z0-9_]{0,62}"

#: Everything the guard forwards: what JupyterLab 4 and HDH's ``/hdh/*`` extension use
#: (jupyter_server's, jupyter_server_terminals', jupyterlab_server's and jupyterlab's
#: handler tables, checked against what a real browser session asks). First match wins.
ROUTES: tuple[Route, ...] = (
    # the server root redirects to lab; the JupyterLab page in its URL forms
    _r("root", r"", _GET, cap="max_page_bytes", types=HTML, request_cap=None, counted=False),
    _r(
        "lab-page",
        r"(?:lab|doc)(?:/workspaces/[A-Za-z0-9_-]+)?(?:/tree(?:/.+)?)?",
        _GET,
        cap="max_page_bytes",
        types=HTML,
        request_cap=None,
        counted=False,
    ),
    # packaged, read-only static files (jupyter_server's and JupyterLab's ``static/``)
    _r(
        "static",
        r"static/.+",
        _GET,
        cap="max_static_bytes",
        types=STATIC,
        request_cap=None,
        counted=False,
    ),
    _r(
        "lab-extension-static",
        rf"lab/extensions/{_EXT}/static/.+",
        _GET,
        cap="max_static_bytes",
        types=STATIC,
        request_cap=None,
        counted=False,
    ),
    _r(
        "lab-themes",
        rf"lab/api/themes/{_EXT}/.+",
        _GET,
        cap="max_static_bytes",
        types=STATIC,
        request_cap=None,
        counted=False,
    ),
    # JupyterLab's server APIs
    _r(
        "lab-settings-list",
        r"lab/api/settings",
        _GET,
        cap="max_settings_list_bytes",
        request_cap=None,
    ),
    _r(
        "lab-settings",
        rf"lab/api/settings/{_EXT}:[A-Za-z0-9._-]+",
        _GET | {"PUT"},
        cap="max_settings_read_bytes",
    ),
    _r(
        "lab-workspaces-list",
        r"lab/api/workspaces",
        _GET,
        cap="max_settings_list_bytes",
        request_cap=None,
    ),
    _r(
        "lab-workspace",
        r"lab/api/workspaces/[A-Za-z0-9_-]{1,128}",
        _GET | {"PUT", "DELETE"},
        cap="max_settings_read_bytes",
    ),
    _r(
        "lab-translations",
        r"lab/api/translations(?:/[A-Za-z0-9_-]{1,64})?",
        _GET,
        cap="max_static_bytes",
        request_cap=None,
        counted=False,
    ),
    _r(
        "lab-licenses",
        r"lab/api/licenses",
        _GET,
        cap="max_static_bytes",
        request_cap=None,
        counted=False,
    ),
    _r(
        "lab-listings",
        rf"lab/api/listings/{_EXT}/[A-Za-z0-9._-]+",
        _GET,
        request_cap=None,
        counted=False,
    ),
    # read-only answers; their writes are refused (REFUSALS)
    _r("lab-build", r"lab/api/build", _GET, request_cap=None),
    _r("lab-extensions", r"lab/api/extensions", _GET, request_cap=None),
    _r("lab-plugins", r"lab/api/plugins", _GET, request_cap=None),
    # jupyter_server
    _r("api-version", r"api", _GET, request_cap=None),
    _r("status", r"api/status", _GET, request_cap=None),
    _r("me", r"api/me", _GET, request_cap=None),
    _r(
        "contents-checkpoints",
        r"api/contents/.+/checkpoints(?:/[A-Za-z0-9_-]{1,128})?",
        _GET | {"POST", "DELETE"},
        "contents",
    ),
    _r(
        "contents",
        r"api/contents(?:/.+)?",
        _GET | {"PUT", "POST", "PATCH", "DELETE"},
        "contents",
        request_cap="max_upload_bytes",
    ),
    _r("sessions", r"api/sessions", _GET | {"POST"}),
    _r("session", rf"api/sessions/{_UUID}", _GET | {"PATCH", "DELETE"}),
    _r("kernels", r"api/kernels", _GET | {"POST"}),
    _r("kernel", rf"api/kernels/{_UUID}", _GET | {"DELETE"}),
    _r("kernel-action", rf"api/kernels/{_UUID}/(?:interrupt|restart)", {"POST"}),
    _r("kernel-channels", rf"api/kernels/{_UUID}/channels", _WS, "kernel_ws"),
    _r("kernelspecs", r"api/kernelspecs", _GET, request_cap=None),
    _r("kernelspec", rf"api/kernelspecs/{_KSPEC}", _GET, request_cap=None),
    # only the logos api/kernelspecs lists, from the read-only kernelspec folders
    _r(
        "kernelspec-logo",
        rf"kernelspecs/{_KSPEC}/logo-[A-Za-z0-9-]{{1,32}}\.(?:png|svg)",
        _GET,
        types=KERNEL_LOGO,
        request_cap=None,
        counted=False,
    ),
    _r("terminals", r"api/terminals", _GET | {"POST"}),
    _r("terminal", rf"api/terminals/{_TERM}", _GET | {"DELETE"}),
    _r("terminal-websocket", rf"terminals/websocket/{_TERM}", _WS, "terminal_ws"),
    _r("events", r"api/events/subscribe", _WS, "ws"),
    # HDH's own server extension (hdh/jupyter/handlers.py)
    _r("hdh", r"hdh/(?:mounts|whoami|catalogue)", _GET, request_cap=None),
    _r("hdh-egress", r"hdh/egress/requests", _GET | {"POST"}),
    _r("hdh-egress-request", r"hdh/egress/requests/[0-9]{1,9}", _GET, request_cap=None),
    _r("hdh-egress-action", r"hdh/egress/requests/[0-9]{1,9}/(?:files|submit|withdraw)", {"POST"}),
    # the code audit view (read-only): the project's audited code, for its leads (the
    # control plane decides who may see it)
    _r("hdh-audit-code", r"hdh/audit/code", _GET, request_cap=None),
    # the template studies of the launcher: the list, and a copy into the workspace (the
    # packaged notebook, saved by the contents manager; its cells are audited when they run)
    _r("hdh-templates", r"hdh/templates", _GET, request_cap=None),
    _r("hdh-template-copy", r"hdh/templates/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/copy", {"POST"}),
    # the catalogue browser (read-only): search with filters, a dataset's page (record,
    # versions, quality report, the member's access) and a table's data dictionary
    _r("hdh-catalogue-search", r"hdh/catalogue/search", _GET, request_cap=None),
    _r("hdh-catalogue-dataset", rf"hdh/catalogue/datasets/{_DATASET}", _GET, request_cap=None),
    # its one write: a project's lead requests access to a dataset (an amendment application,
    # filed by the control plane for this sandbox's project, as its user)
    _r(
        "hdh-catalogue-request-access",
        rf"hdh/catalogue/datasets/{_DATASET}/request-access",
        {"POST"},
    ),
    _r(
        "hdh-catalogue-table",
        rf"hdh/catalogue/datasets/{_DATASET}/versions/{_VERSION}/tables/{_TABLE}",
        _GET,
        request_cap=None,
    ),
)

_WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})
_ALL = frozenset({"GET", "HEAD", "OPTIONS"}) | _WRITES

#: Refused with 403 and a reason before the table: (path pattern, methods, reason).
REFUSALS: tuple[tuple[re.Pattern[str], frozenset[str], str], ...] = tuple(
    (re.compile(p), m, reason)
    for p, m, reason in (
        (r"files(?:/.*)?", _ALL, "/files/ is disabled: export outputs through an export request"),
        (r"view(?:/.*)?", _ALL, "/view/ is disabled: export outputs through an export request"),
        (
            r"nbconvert(?:/.*)?",
            _ALL,
            "/nbconvert/ is disabled: export outputs through an export request",
        ),
        (r"api/nbconvert(?:/.*)?", _ALL, "nbconvert exports are disabled"),
        (
            r"lab/api/(?:extensions|build|plugins)(?:/.*)?",
            _WRITES,
            "installing, building or toggling extensions is disabled",
        ),
        (r"api/contents/.+/trust", _ALL, "notebook trust is not used in a sandbox"),
    )
)

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
    #: The :data:`ROUTES` entry that allowed the request.
    route: str = ""
    #: Media types a 2xx response with a body may carry (empty: any).
    response_types: tuple[str, ...] = ()
    #: A contents read: the proxy refuses it when the model is binary (``format: base64``).
    refuse_binary: bool = False
    #: The answer counts as content shown to the person (:attr:`Route.counted`).
    counted: bool = True


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
    if method not in _ALL:
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

    if any("download" in k for k, _ in params):
        return deny(403, "downloads are disabled: export outputs through an export request")
    for pattern, methods, reason in REFUSALS:
        if method in methods and pattern.fullmatch(rest):
            return deny(403, reason)

    route = next((r for r in ROUTES if r.pattern.fullmatch(rest)), None)
    if route is None:
        top = rest_parts[0] if rest_parts else ""
        return deny(404, f"route /{top}/ is not exposed by the guard")
    upgrade = _header(headers, "upgrade").lower() == "websocket"
    is_ws = route.kind.endswith("ws")
    if upgrade and not is_ws:
        return deny(403, "websocket not allowed on this route")
    if method not in route.methods:
        return deny(405, f"method {method} not allowed on {route.name}")
    base = Decision(
        True,
        200,
        "allowed",
        user=user,
        project=project,
        rest=rest,
        route=route.name,
        max_response_bytes=getattr(cfg, route.cap) if route.cap else None,
        max_request_bytes=getattr(cfg, route.request_cap) if route.request_cap else 0,
        response_types=route.types,
        counted=route.counted,
    )
    if is_ws:
        if not upgrade:
            return deny(400, "websocket route without a websocket upgrade")
        return replace(
            base, reason="websocket", kind=route.kind, max_response_bytes=None, response_types=()
        )
    if route.kind != "contents":
        return base

    cpath = rest.removeprefix("api/contents").lstrip("/")
    if any(p.startswith(".") for p in rest_parts[2:]):
        return deny(403, "hidden files are not served")
    if route.name == "contents-checkpoints":
        return replace(base, reason="contents checkpoints")
    if method in _GET:
        if any(k == "format" and v.strip().lower() == "base64" for k, v in params):
            return deny(403, "base64 (binary) contents reads are disabled")
        cap = (
            cfg.max_notebook_read_bytes if cpath.endswith(".ipynb") else cfg.max_contents_read_bytes
        )
        return replace(base, reason="contents read", max_response_bytes=cap, refuse_binary=True)
    if method in ("PUT", "POST", "PATCH"):
        return replace(
            base,
            reason="contents write",
            max_request_bytes=cfg.max_upload_bytes,
            contents_path=cpath if method == "PUT" else None,
        )
    return replace(base, reason="contents delete", max_request_bytes=0)


def media_type_allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Content-Type`` header value is one of ``allowed`` (``x/`` entries: prefixes)."""
    if not allowed:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return any(media.startswith(a) if a.endswith("/") else media == a for a in allowed)


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return ""
