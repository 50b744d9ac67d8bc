"""The guard's pure policy: the bad-input path corpus is refused, the lab's own routes pass."""

from __future__ import annotations

import pytest

from jupyterlab_hdh.guard.policy import (
    HTML,
    JSON,
    KERNEL_LOGO,
    REFUSALS,
    ROUTES,
    STATIC,
    Decision,
    GuardConfig,
    Route,
    decide,
    media_type_allowed,
)

P = "/user/alice/proj1/"

# (raw path, query) pairs that must be refused (400/403/404), never forwarded
BAD = [
    # traversal, plain and encoded once/twice
    (P + "../proj2/api/contents/x.ipynb", ""),
    (P + "api/contents/../../proj2/x.ipynb", ""),
    (P + "api/contents/%2e%2e%2fproj2/x.ipynb", ""),
    (P + "api/contents/%2E%2E/x.ipynb", ""),
    (P + "api/contents/%252e%252e%252fproj2/x.ipynb", ""),
    (P + "api/contents/%25252e%25252e/x", ""),
    (P + "api/contents/.%2e/x", ""),
    (P + "api/contents/./x.ipynb", ""),
    (P + "api/contents/x%2fy", ""),
    (P + "api/contents/x%2Fy", ""),
    (P + "api/contents/x%5cy", ""),
    # backslashes and Windows forms
    (P + "api/contents/..\\x", ""),
    (P + "api/contents/C:\\x", ""),
    (P + "api\\contents\\x", ""),
    # NUL and control characters, raw and encoded
    (P + "api/contents/x\x00y", ""),
    (P + "api/contents/x%00y", ""),
    (P + "api/contents/x%0ay", ""),
    (P + "api/contents/x%1b[31m", ""),
    (P + "api/contents/x%7f", ""),
    # empty segments
    (P + "api//contents/x.ipynb", ""),
    ("/user/alice/proj1//api/status", ""),
    ("//user/alice/proj1/api/status", ""),
    # overlong / invalid UTF-8
    (P + "api/contents/%c0%ae%c0%ae/x", ""),
    (P + "api/contents/%c0%af", ""),
    (P + "api/contents/%e0%80%ae", ""),
    (P + "api/contents/%ed%a0%80", ""),  # surrogate
    (P + "api/contents/%ff", ""),
    (P + "api/contents/%e2%82", ""),  # truncated
    (P + "api/contents/%zz", ""),
    (P + "api/contents/100%", ""),
    # unicode tricks: RLO, zero-width, NFD, raw non-ASCII, BOM
    (P + "api/contents/report%e2%80%aefdp.exe", ""),
    (P + "api/contents/a%e2%80%8bb.ipynb", ""),
    (P + "api/contents/e%cc%81.ipynb", ""),  # NFD e + combining acute
    (P + "api/contents/é.ipynb", ""),
    (P + "api/contents/%ef%bb%bfx.ipynb", ""),
    # trailing dot/space, long segment, hidden file
    (P + "api/contents/x.ipynb.", ""),
    (P + "api/contents/x.ipynb%20", ""),
    (P + "api/contents/" + "a" * 256, ""),
    (P + "api/contents/.ssh/id_rsa", ""),
    (P + "api/contents/sub/.env", ""),
    # outside the prefix, sibling prefix, other user
    ("/api/contents/x.ipynb", ""),
    ("/hub/api/users", ""),
    ("/user/alice", ""),
    ("/user/alice/", ""),
    ("/users/alice/proj1/api/status", ""),
    ("/user/alice/proj1/../proj2/api/status", ""),
    ("relative/path", ""),
    # export routes
    (P + "files/data.csv", ""),
    (P + "files/", ""),
    (P + "view/data.html", ""),
    (P + "nbconvert/html/x.ipynb", "download=true"),
    (P + "nbconvert/html/x.ipynb", ""),
    (P + "api/nbconvert", ""),
    (P + "api/nbconvert/html", ""),
    # download parameter in every disguise
    (P + "api/contents/x.ipynb", "download=1"),
    (P + "api/contents/x.ipynb", "DOWNLOAD"),
    (P + "api/contents/x.ipynb", "a=1&download"),
    (P + "api/contents/x.ipynb", "%64ownload=1"),
    (P + "api/contents/x.ipynb", "%2564ownload=1"),
    (P + "lab/tree/x.ipynb", "download=1"),
    # binary reads
    (P + "api/contents/link/secret.bin", "content=1&format=base64"),
    (P + "api/contents/x.csv", "type=file&format=BASE64&content=1"),
    # unknown routes
    (P + "proxy/8888/", ""),
    (P + "metrics", ""),
    (P + "edit/x.py", ""),
]


@pytest.mark.parametrize(("path", "query"), BAD)
def test_bad_paths_are_refused(path: str, query: str) -> None:
    d = decide("GET", path, query, {})
    assert not d.allowed
    assert d.status in (400, 403, 404), d


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", P + "lab/api/extensions"),
        ("POST", P + "lab/api/build"),
        ("PUT", P + "lab/api/plugins"),
        ("DELETE", P + "lab/api/extensions"),
        ("TRACE", P + "api/status"),
        ("CONNECT", P + "api/status"),
    ],
)
def test_extension_writes_and_odd_methods_are_refused(method: str, path: str) -> None:
    d = decide(method, path, "", {})
    assert not d.allowed and d.status in (403, 405)


OK = [
    ("GET", P + "lab", ""),
    ("GET", P + "lab/", ""),
    ("GET", P, ""),
    ("GET", "/user/alice/proj1", ""),
    ("GET", P + "lab/tree/x.ipynb", ""),
    ("GET", P + "static/lab/main.abc123.js", ""),
    ("GET", P + "lab/extensions/@jupyterlab/foo/static/remoteEntry.0a1b.js", ""),
    ("GET", P + "lab/api/settings", "ids_only=true"),
    ("GET", P + "lab/api/extensions", ""),
    ("PUT", P + "lab/api/settings/@jupyterlab/apputils-extension:themes", ""),
    ("GET", P + "api/status", ""),
    ("GET", P + "api/kernels", ""),
    ("POST", P + "api/kernels", ""),
    ("GET", P + "api/sessions", ""),
    ("POST", P + "api/sessions", ""),
    ("GET", P + "api/kernelspecs", ""),
    ("GET", P + "kernelspecs/python3/logo-64x64.png", ""),
    ("GET", P + "api/contents/x.ipynb", "content=1"),
    ("GET", P + "api/contents/dir%20with%20space/x.ipynb", "content=1&type=notebook"),
    ("GET", P + "api/contents/caf%C3%A9.ipynb", ""),
    ("GET", P + "api/contents", "content=1"),
    ("GET", P + "api/contents/", ""),
    ("GET", P + "api/contents/notes.txt", "content=1&format=text&type=file"),
    ("PUT", P + "api/contents/x.ipynb", ""),
    ("PATCH", P + "api/contents/x.ipynb", ""),
    ("DELETE", P + "api/contents/x.ipynb", ""),
    ("POST", P + "api/contents/x.ipynb/checkpoints", ""),
    ("GET", P + "api/terminals", ""),
    ("GET", P + "api/me", ""),
]


@pytest.mark.parametrize(("method", "path", "query"), OK)
def test_lab_routes_are_allowed(method: str, path: str, query: str) -> None:
    d = decide(method, path, query, {})
    assert d.allowed, d
    assert (d.user, d.project) == ("alice", "proj1")


def test_caps_carried_by_the_decision() -> None:
    cfg = GuardConfig(max_contents_read_bytes=10, max_notebook_read_bytes=20, max_upload_bytes=30)
    assert decide("GET", P + "api/contents/a.txt", "", {}, config=cfg).max_response_bytes == 10
    assert decide("GET", P + "api/contents/a.ipynb", "", {}, config=cfg).max_response_bytes == 20
    put = decide("PUT", P + "api/contents/sub/a.ipynb", "", {}, config=cfg)
    assert put.max_request_bytes == 30 and put.contents_path == "sub/a.ipynb"
    assert decide("GET", P + "api/status", "", {}, config=cfg).max_response_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (P + "api/kernels/0b6f3c1e-1a2b-4c3d-9e8f-001122334455/channels", "kernel_ws"),
        (P + "terminals/websocket/1", "terminal_ws"),
        (P + "api/events/subscribe", "ws"),
    ],
)
def test_websocket_routes(path: str, kind: str) -> None:
    d = decide("GET", path, "session_id=x", {"Upgrade": "websocket"})
    assert d.allowed and d.kind == kind


@pytest.mark.parametrize(
    "path", [P + "api/status", P + "lab", P + "api/kernels/../channels", P + "files/x"]
)
def test_websocket_elsewhere_is_refused(path: str) -> None:
    assert not decide("GET", path, "", {"upgrade": "WebSocket"}).allowed


def test_custom_prefix() -> None:
    d = decide("GET", "/hdh/user/bob/p2/api/status", "", {}, prefix="/hdh/user/")
    assert d.allowed and (d.user, d.project) == ("bob", "p2")
    assert not decide("GET", "/user/bob/p2/api/status", "", {}, prefix="/hdh/user/").allowed


# ---------------------------------------------------------------- the route table

K = "0b6f3c1e-1a2b-4c3d-9e8f-001122334455"
#: One path (after the prefix) per route of the table.
SAMPLES = {
    "root": "",
    "lab-page": "lab/workspaces/auto-x/tree/sub/x.ipynb",
    "static": "static/lab/main.0a1b2c.js",
    "lab-extension-static": "lab/extensions/@jupyterlab/foo/static/remoteEntry.0a1b.js",
    "lab-themes": "lab/api/themes/@jupyterlab/theme-light-extension/index.css",
    "lab-settings-list": "lab/api/settings",
    "lab-settings": "lab/api/settings/@jupyterlab/apputils-extension:themes",
    "lab-workspaces-list": "lab/api/workspaces",
    "lab-workspace": "lab/api/workspaces/default",
    "lab-translations": "lab/api/translations/default",
    "lab-licenses": "lab/api/licenses",
    "lab-listings": "lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json",
    "lab-build": "lab/api/build",
    "lab-extensions": "lab/api/extensions",
    "lab-plugins": "lab/api/plugins",
    "api-version": "api",
    "status": "api/status",
    "me": "api/me",
    "contents-checkpoints": "api/contents/sub/x.ipynb/checkpoints/abc-1",
    "contents": "api/contents/sub/x.ipynb",
    "sessions": "api/sessions",
    "session": f"api/sessions/{K}",
    "kernels": "api/kernels",
    "kernel": f"api/kernels/{K}",
    "kernel-action": f"api/kernels/{K}/restart",
    "kernel-channels": f"api/kernels/{K}/channels",
    "kernelspecs": "api/kernelspecs",
    "kernelspec": "api/kernelspecs/python3",
    "kernelspec-logo": "kernelspecs/python3/logo-64x64.png",
    "terminals": "api/terminals",
    "terminal": "api/terminals/1",
    "terminal-websocket": "terminals/websocket/1",
    "events": "api/events/subscribe",
    "hdh": "hdh/catalogue",
    "hdh-egress": "hdh/egress/requests",
    "hdh-egress-request": "hdh/egress/requests/12",
    "hdh-egress-action": "hdh/egress/requests/12/submit",
    "hdh-audit-code": "hdh/audit/code",
    "hdh-templates": "hdh/templates",
    "hdh-template-copy": "hdh/templates/mi-pathway/copy",
    "hdh-catalogue-search": "hdh/catalogue/search",
    "hdh-catalogue-dataset": "hdh/catalogue/datasets/demo-snds",
    "hdh-catalogue-request-access": "hdh/catalogue/datasets/demo-snds/request-access",
    "hdh-catalogue-table": "hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F",
}
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
WS = {"Upgrade": "websocket"}


def test_every_route_has_a_sample() -> None:
    assert sorted(r.name for r in ROUTES) == sorted(SAMPLES)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_each_route_allows_exactly_its_methods(route: Route) -> None:
    path = P + SAMPLES[route.name]
    headers = WS if route.kind.endswith("ws") else {}
    for method in ALL_METHODS:
        d = decide(method, path, "", headers)
        if method in route.methods:
            assert d.allowed, (method, d)
            assert d.route == route.name, (method, d)
            if route.kind.endswith("ws"):
                assert d.kind == route.kind and d.max_response_bytes is None
            else:
                assert d.kind == "http"
                assert d.max_response_bytes is not None  # every HTTP answer is capped
                assert d.response_types == route.types
        else:
            assert not d.allowed, (method, d)
            assert d.status in (403, 405), (method, d)  # 403: a refusal with its reason


def test_caps_and_types_per_route() -> None:
    cfg = GuardConfig(
        max_page_bytes=1,
        max_static_bytes=2,
        max_api_read_bytes=3,
        max_settings_read_bytes=4,
        max_settings_list_bytes=5,
    )

    def d(path: str, method: str = "GET") -> Decision:
        return decide(method, P + path, "", {}, config=cfg)

    assert (d("lab").max_response_bytes, d("lab").response_types) == (1, HTML)
    assert (d(SAMPLES["static"]).max_response_bytes, d(SAMPLES["static"]).response_types) == (
        2,
        STATIC,
    )
    ext = d(SAMPLES["lab-extension-static"])
    assert (ext.max_response_bytes, ext.response_types) == (2, STATIC)
    assert d("api/kernels").max_response_bytes == 3
    assert d("hdh/mounts").max_response_bytes == 3
    one = d(SAMPLES["lab-settings"])
    assert (one.max_response_bytes, one.response_types) == (4, JSON)
    assert d("lab/api/workspaces/default").max_response_bytes == 4
    assert d("lab/api/settings").max_response_bytes == 5
    assert d("lab/api/workspaces").max_response_bytes == 5
    logo = d(SAMPLES["kernelspec-logo"])
    assert logo.response_types == KERNEL_LOGO and "image/png" in KERNEL_LOGO
    assert "application/octet-stream" not in STATIC and "text/html" not in STATIC


@pytest.mark.parametrize("name", ["x.ipynb", "x.csv", "sub/x.IPYNB", "x"])
def test_contents_reads_refuse_binary_whatever_the_name(name: str) -> None:
    d = decide("GET", P + "api/contents/" + name, "content=1&type=file", {})
    assert d.allowed and d.refuse_binary and d.reason == "contents read"
    assert not decide("PUT", P + "api/contents/" + name, "", {}).refuse_binary


UNKNOWN = [
    "custom/custom.css",  # served from the (kernel-writable) config dir when custom_css is on
    "tree",
    "tree/x.ipynb",
    "terminals",
    "lsp/status",
    "lsp/ws/pylsp",
    "api/spec.yaml",
    "api/resolvePath",
    "api/events",
    "api/config/notebook",
    "api/notebooks/x.ipynb",
    "api/kernels/not-a-kernel-id",
    "api/kernels/0b6f3c1e-1a2b-4c3d-9e8f-0011223344/channels",
    f"api/kernels/{K}/other",
    "api/sessions/x",
    "api/terminals/a-b",
    "api/kernelspecs/a/b",
    "kernelspecs/python3/kernel.json",
    "kernelspecs/evil/data.tar",
    "kernelspecs/python3/logo-64x64.png.tar",
    "kernelspecs/python3",
    "lab/extensions/foo/install.json",
    "lab/extensions/foo/package.json",
    "lab/extensions/foo",
    "lab/api/news",
    "lab/api/update",
    "lab/api/settings/no-plugin-id",
    "lab/api/workspaces/a/b",
    "lab/api/listings",
    "lab/api/themes",
    "lab/lab",
    "static",
    "metrics",
    "login",
    "logout",
    "robots.txt",
    "favicon.ico",
    "hdh",
    "hdh/other",
    "hdh/egress/requests/x",
    "hdh/egress/requests/1/approve",
    # the catalogue browser reads exactly its three routes, nothing around them
    "hdh/catalogue/other",
    "hdh/catalogue/datasets",
    "hdh/catalogue/datasets/Demo",
    "hdh/catalogue/datasets/demo-snds/versions",
    "hdh/catalogue/datasets/demo-snds/versions/v1",
    "hdh/catalogue/datasets/demo-snds/versions/v1/quality",
    "hdh/catalogue/datasets/demo-snds/versions/v1/tables",
    "hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F/x",
    "hdh/catalogue/datasets/demo-snds/access",
    "hdh/catalogue/search/x",
    "hdh/catalogue/datasets/Demo/request-access",
    "hdh/catalogue/datasets/demo-snds/request-access/x",
    "hdh/catalogue/datasets/demo-snds/versions/v1/request-access",
    "proxy/8888",
    "edit/x.py",
]


@pytest.mark.parametrize("rest", UNKNOWN)
def test_routes_outside_the_table_are_404(rest: str) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        d = decide(method, P + rest, "", {})
        assert not d.allowed and d.status == 404, (method, d)


@pytest.mark.parametrize(
    ("method", "rest", "query", "reason"),
    [
        ("GET", "files/x.csv", "", "/files/ is disabled"),
        ("POST", "files", "", "/files/ is disabled"),
        ("GET", "view/x.html", "", "/view/ is disabled"),
        ("GET", "nbconvert/html/x.ipynb", "", "/nbconvert/ is disabled"),
        ("GET", "api/nbconvert", "", "nbconvert exports are disabled"),
        ("POST", "lab/api/extensions", "", "installing, building or toggling extensions"),
        ("DELETE", "lab/api/build", "", "installing, building or toggling extensions"),
        ("PUT", "lab/api/plugins", "", "installing, building or toggling extensions"),
        ("POST", "api/contents/x.ipynb/trust", "", "notebook trust is not used"),
        ("GET", "api/contents/x.ipynb", "download=1", "downloads are disabled"),
        ("GET", "lab/api/licenses", "download=1", "downloads are disabled"),
        ("GET", "api/contents/.hidden/x", "", "hidden files are not served"),
        ("GET", "api/contents/x.csv", "format=base64", "base64 (binary) contents reads"),
        ("GET", "api/status", "", None),  # control: allowed
    ],
)
def test_refusals_carry_their_reason(
    method: str, rest: str, query: str, reason: str | None
) -> None:
    d = decide(method, P + rest, query, {})
    if reason is None:
        assert d.allowed
        return
    assert not d.allowed and d.status == 403 and reason in d.reason, d


def test_every_refusal_entry_is_exercised() -> None:
    hits = {p.pattern for p, _, _ in REFUSALS}
    seen = set()
    for rest in (
        "files",
        "view/x",
        "nbconvert/x",
        "api/nbconvert",
        "lab/api/build",
        "api/contents/a/trust",
    ):
        for p, methods, _ in REFUSALS:
            if p.fullmatch(rest) and "POST" in methods:
                seen.add(p.pattern)
    assert seen == hits


def test_websocket_kind_mismatches() -> None:
    # a websocket route asked without an upgrade, an upgrade on an HTTP route
    assert decide("GET", P + f"api/kernels/{K}/channels", "", {}).status == 400
    assert decide("GET", P + "api/kernels", "", WS).status == 403
    assert decide("POST", P + "terminals/websocket/1", "", WS).status == 405


@pytest.mark.parametrize(
    ("content_type", "allowed", "ok"),
    [
        ("application/json; charset=UTF-8", JSON, True),
        ("Application/JSON", JSON, True),
        ("text/html; charset=UTF-8", JSON, False),
        ("", JSON, False),
        ("application/octet-stream", STATIC, False),
        ("application/x-tar", STATIC, False),
        ("image/png", STATIC, True),
        ("font/woff2", STATIC, True),
        ("text/javascript; charset=utf-8", STATIC, True),
        ("image/svg+xml", KERNEL_LOGO, True),
        ("application/json", KERNEL_LOGO, False),
        ("anything/at-all", (), True),
    ],
)
def test_media_type_allowed(content_type: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert media_type_allowed(content_type, allowed) is ok


@pytest.mark.parametrize(
    ("method", "rest"),
    [
        ("POST", "hdh/catalogue/search"),
        ("PUT", "hdh/catalogue/datasets/demo-snds"),
        ("DELETE", "hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F"),
        ("GET", "hdh/catalogue/datasets/demo-snds/versions/../tables/ER_PRS_F"),
        ("GET", "hdh/catalogue/datasets/demo-snds/versions/v1/tables/ER_PRS_F%2F..%2Fx"),
        ("GET", "hdh/catalogue/datasets/a" + "b" * 63),
        ("GET", "hdh/catalogue/datasets/demo-snds/versions/v1/tables/1ER"),
    ],
)
def test_the_catalogue_browser_reaches_only_its_reads(method: str, rest: str) -> None:
    """Writes, dot segments, encoded slashes and names the catalogue never has: refused."""
    assert not decide(method, P + rest, "", {}).allowed
