"""The guard's pure policy: the bad-input path corpus is refused, the lab's own routes pass."""

from __future__ import annotations

import pytest

from jupyterlab_hdh.guard.policy import GuardConfig, decide

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
    assert decide("GET", P + "api/status", "", {}, config=cfg).max_response_bytes is None


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
