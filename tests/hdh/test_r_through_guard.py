"""R notebooks the way a researcher uses them: browser → hub proxy → guard → bubblewrap sandbox.

``tests/hdh/test_r.py`` runs the IRkernel in a sandbox by talking to the sandbox's Jupyter
Server directly. Here the same kernel is reached through the real embedded hub (``hdh up``):
alice logs in through the hub's form, her ``demo`` server is spawned through the hub's REST
API, the guard's OAuth is followed through the proxy, and an ``ir`` kernel is driven over
the guard's websocket with JupyterLab's protocol (``v1.kernel.websocket.jupyter.org``).

* ``hdh_read`` in R gives the rows of the mounted demo dataset (checked against the
  Parquet file on the host);
* the R code is in the audit log as ``code.execute``, attributed to alice and ``demo``;
* what an R cell displays (a data.frame: text/plain, text/html, text/markdown, text/latex)
  reaches the browser whole and is counted in the guard's display accounting
  (``display.count``), exactly as the same MIME bundle displayed by a Python kernel; the
  guard filters no MIME type of a kernel output, it bounds the size of a message: an R
  output over ``max_kernel_message`` becomes the guard's placeholder, as a Python one does;
* from R, the network (a DNS name, an IP literal, the host's own addresses) and files
  outside the sandbox (``/etc/shadow``, the hub's databases) are out of reach.

One ``hdh up`` for the module, with a ``guard.toml`` that writes counts every second and
caps a kernel message at 64 KiB (so that an over-cap output is small to make).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow.parquet as pq
import pytest
import websocket

from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.guard.display import day_report
from jupyterlab_hdh.paths import DataDir
from tests.guard.test_display_proxy import run
from tests.guard.test_proxy import V1
from tests.hdh.test_r import r_problem
from tests.hdh_up import free_port, start_up, stop_up
from tests.hub.test_embedded_hub import Up, _lab_session, _problem, spawn, wait_ready
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.skipif(_problem() is not None, reason=str(_problem())),
    pytest.mark.skipif(r_problem() is not None, reason=str(r_problem())),
]

KiB = 1024
CAP = 64 * KiB  # max_kernel_message of this module's guard
BASE = "/user/alice/demo/"
TABLE = "demo-snds.IR_BEN_R"
COLUMNS = ["BEN_NIR_PSA", "BEN_SEX_COD", "BEN_DCD_DTE"]
MIME_TYPES = {"text/plain", "text/html", "text/markdown", "text/latex"}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("rhub") / "hdh"
    data_dir.mkdir(mode=0o700)
    (data_dir / "guard.toml").write_text(
        f'[display]\nflush_seconds = 1\nmax_kernel_message = "{CAP // KiB}K"\n'
    )
    port = free_port()
    proc, lines = start_up(
        data_dir, port, free_port(), seed=5, stderr_file=data_dir.parent / "up.err"
    )
    try:
        api_url = next(
            x.split()[3].removesuffix("/api/docs")
            for x in lines
            if x.startswith("HDH control plane:")
        )
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        yield Up(proc, data_dir, f"http://127.0.0.1:{port}", api_url, creds, 0.0)
    finally:
        stop_up(proc)


@dataclass
class Kernel:
    """A kernel started through the guard, with its websocket (JupyterLab's v1 protocol)."""

    kid: str
    ws: websocket.WebSocket
    #: the size of every frame the browser received on this socket
    received: list[int] = field(default_factory=list)
    #: the frames received while the last cell ran
    last: list[int] = field(default_factory=list)

    def run(self, code: str) -> list[dict[str, Any]]:
        """Execute ``code``; the messages answering it (execute_reply ok, or fail)."""
        messages, self.last = run(self.ws, code)
        self.received += self.last
        replies = [m for m in messages if m["header"]["msg_type"] == "execute_reply"]
        assert replies and replies[0]["content"]["status"] == "ok", messages
        return messages

    def json(self, code: str) -> Any:
        """Execute ``code``; the last line it printed, as JSON."""
        out = stdout(self.run(code))
        return json.loads(out.strip().splitlines()[-1])


def stdout(messages: list[dict[str, Any]]) -> str:
    return "".join(
        m["content"]["text"]
        for m in messages
        if m["header"]["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )


def outputs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = ("stream", "display_data", "execute_result", "error")
    return [m for m in messages if m["header"]["msg_type"] in kinds]


@pytest.fixture(scope="module")
def browser(up: Up) -> Iterator[httpx.Client]:
    """alice, logged in, her ``demo`` server running, past the guard's OAuth."""
    with up.api("alice") as api:
        r = spawn(api, "alice", "demo")
        assert r.status_code in (201, 202), r.text
        wait_ready(api, "alice", "demo")
    c = _lab_session(up, "alice", BASE)
    yield c
    c.close()


def start_kernel(up: Up, browser: httpx.Client, name: str) -> Iterator[Kernel]:
    xsrf = browser.cookies.get("_xsrf", path=BASE)
    assert xsrf, "no _xsrf cookie from the guard"
    r = browser.post(
        f"{up.url}{BASE}api/kernels", json={"name": name}, headers={"X-XSRFToken": xsrf}
    )
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    assert r.json()["name"] == name
    ws = websocket.create_connection(
        f"{up.url.replace('http', 'ws', 1)}{BASE}api/kernels/{kid}/channels"
        f"?session_id={uuid.uuid4()}",
        cookie="; ".join(f"{ck.name}={ck.value}" for ck in browser.cookies.jar),
        origin=up.url,
        subprotocols=[V1],
        timeout=120,
    )
    try:
        yield Kernel(kid, ws)
    finally:
        ws.close()
        browser.delete(f"{up.url}{BASE}api/kernels/{kid}", headers={"X-XSRFToken": xsrf})


@pytest.fixture(scope="module")
def r_kernel(up: Up, browser: httpx.Client) -> Iterator[Kernel]:
    yield from start_kernel(up, browser, "ir")


@pytest.fixture(scope="module")
def py_kernel(up: Up, browser: httpx.Client) -> Iterator[Kernel]:
    yield from start_kernel(up, browser, "python3")


def audit_events(up: Up, action: str) -> list[dict[str, Any]]:
    return [e for e in up.audit() if e["action"] == action]


@pytest.fixture(scope="module")
def store(up: Up) -> Iterator[Any]:
    """The installation's store, read as ``hdh guard display`` reads it."""
    hub = open_installation(DataDir.resolve(up.data_dir))
    yield hub
    hub.close()


def shown_to_alice(store: Any) -> int:
    """Bytes of ``demo`` the guard has written as shown to alice today (display.count)."""
    rows = [r for r in day_report(store) if r["user"] == "alice"]
    return int(rows[0]["projects"].get("demo", 0)) if rows else 0


# --- 1. the mounted data, in R, through the guard ---------------------------------------

READ_CODE = (
    f'ben <- hdh_read("{TABLE}", columns = c({", ".join(json.dumps(c) for c in COLUMNS)}),\n'
    '                filters = list(list("BEN_SEX_COD", "==", 2)))\n'
    "cat(jsonlite::toJSON(list(class = class(ben), names = names(ben),\n"
    "  types = lapply(ben, class), n = nrow(ben), nir = ben$BEN_NIR_PSA,\n"
    "  sex = ben$BEN_SEX_COD, dcd = format(ben$BEN_DCD_DTE)), auto_unbox = TRUE,"
    ' na = "null"), "\\n")'
)


def test_hdh_read_in_the_r_kernel_gives_the_mounted_rows(
    up: Up, browser: httpx.Client, r_kernel: Kernel
) -> None:
    # JupyterLab's launcher offers the R kernel, with its logo, through the guard
    spec = browser.get(f"{up.url}{BASE}api/kernelspecs").json()["kernelspecs"]["ir"]
    assert spec["spec"]["language"] == "R"
    logo = browser.get(f"{up.url}{spec['resources']['logo-64x64']}")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    out = r_kernel.json(READ_CODE)
    path = up.data_dir / "datasets" / "demo-snds" / "v1" / "IR_BEN_R.parquet"
    expected = pq.read_table(path, columns=COLUMNS, filters=[("BEN_SEX_COD", "==", 2)])
    rows = expected.to_pydict()
    assert expected.num_rows > 10  # the filter keeps rows (the demo's women)
    assert out["class"] == "data.frame" and out["names"] == COLUMNS
    assert out["types"] == {
        "BEN_NIR_PSA": "character",
        "BEN_SEX_COD": "integer",
        "BEN_DCD_DTE": "Date",
    }
    assert out["n"] == expected.num_rows
    assert out["nir"] == rows["BEN_NIR_PSA"]
    assert out["sex"] == [2] * expected.num_rows
    assert out["dcd"] == [d.isoformat() if d else None for d in rows["BEN_DCD_DTE"]]


# --- 2. the R code is audited, as Python's -----------------------------------------------


def test_the_r_code_is_in_the_audit_log_for_alice_and_demo(up: Up, r_kernel: Kernel) -> None:
    marker = f"# audited {uuid.uuid4().hex}"
    r_kernel.run(f"{marker}\nx <- 1 + 1")
    executed_all = audit_events(up, "code.execute")
    executed = [e for e in executed_all if marker in e["details"]["code"]]
    assert len(executed) == 1, executed
    ev = executed[0]
    assert ev["actor"] == "alice"
    assert ev["target"] == f"project:demo/kernel:{r_kernel.kid}"
    assert ev["details"]["code"] == f"{marker}\nx <- 1 + 1"
    assert (ev["details"]["user"], ev["details"]["project"]) == ("alice", "demo")
    # and the read of test 1, whole
    assert any(e["details"]["code"] == READ_CODE for e in executed_all)


# --- 3. what R displays: every MIME type, counted; over the cap, the placeholder ---------


def test_an_r_data_frame_is_shown_in_every_mime_type_and_counted(
    store: Any, r_kernel: Kernel, py_kernel: Kernel
) -> None:
    first = sorted(r_kernel.json(READ_CODE)["nir"])[0]
    messages = r_kernel.run('head(ben[order(ben$BEN_NIR_PSA), c("BEN_NIR_PSA", "BEN_SEX_COD")], 3)')
    # IRkernel sends a visible value as display_data (IPython: execute_result)
    results = [m for m in outputs(messages) if m["header"]["msg_type"] == "display_data"]
    assert len(results) == 1, outputs(messages)
    data = results[0]["content"]["data"]
    assert set(data) == MIME_TYPES, sorted(data)
    for mime, text in data.items():  # each of them carries the rows, as IRkernel wrote them
        assert first in text, (mime, text)
    assert "<table" in data["text/html"] and "\\begin{tabular}" in data["text/latex"]

    # the same bundle displayed by a Python kernel reaches the browser identical: the guard
    # treats an output by its size, whatever its MIME types and whichever kernel sent it
    py = py_kernel.run(
        "import json\nfrom IPython.display import display\n"
        f"display(json.loads({json.dumps(json.dumps(data))}), raw=True)"
    )
    shown = [m for m in outputs(py) if m["header"]["msg_type"] == "display_data"]
    assert len(shown) == 1 and shown[0]["content"]["data"] == data

    # a bigger frame (still under the cap), and the guard's count grows by at least what
    # the browser received for it (every frame of the cell, all four MIME types)
    before = shown_to_alice(store)
    big = r_kernel.run(
        "options(repr.matrix.max.rows = 10000)\n"
        'data.frame(key = sprintf("key%05d", 1:150), v = (1:150) / 7)'
    )
    frames = r_kernel.last  # every frame received while the cell ran
    result = next(m for m in big if m["header"]["msg_type"] == "display_data")
    assert set(result["content"]["data"]) == MIME_TYPES
    size = sum(len(t) for t in result["content"]["data"].values())
    assert 16 * KiB < size < CAP, size  # what this accounting check is about dominates
    wait_for(
        lambda: shown_to_alice(store) - before >= sum(frames) >= size,
        "the R output in the guard's display.count",
    )
    # everything the browser received on both kernel sockets is counted
    received = sum(r_kernel.received) + sum(py_kernel.received)
    wait_for(lambda: shown_to_alice(store) >= received, "every kernel frame counted")


def _withheld(messages: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (
            m["header"]["msg_type"],
            m["content"].get("name", ""),
            re.sub(r"\d+", "N", m["content"].get("text", "")),
        )
        for m in outputs(messages)
    ]


def test_an_r_output_over_the_cap_is_withheld_as_a_python_one(
    r_kernel: Kernel, py_kernel: Kernel
) -> None:
    r_out = r_kernel.run(
        "options(repr.matrix.max.rows = 10000)\n"  # the whole frame, not its head and tail
        'data.frame(key = sprintf("key%05d", 1:800), v = (1:800) / 7)'
    )
    py_out = py_kernel.run(
        "from IPython.display import display\n"
        "display({m: 'Q' * 50_000 for m in ('text/plain', 'text/html', 'text/markdown',"
        " 'text/latex')}, raw=True)"
    )
    shown_r, shown_py = json.dumps(r_out), json.dumps(py_out)
    assert "key00799" not in shown_r and "QQQQ" not in shown_py
    assert _withheld(r_out) == _withheld(py_out)
    [(kind, name, text)] = _withheld(r_out)
    assert (kind, name) == ("stream", "stderr")
    assert text.startswith(
        "[HDH guard] an output of N bytes was not shown: one message may show N bytes"
    )
    assert f"may show {CAP} bytes" in json.dumps(r_out)
    assert max(r_kernel.last) < CAP


# --- 4. attacks from R: no network, nothing outside the sandbox --------------------------


@pytest.fixture
def host_listener() -> Iterator[tuple[list[str], int, list[str]]]:
    """A TCP server on every host address: (the host's addresses, its port, who connected)."""
    server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - every address, on purpose
    port = server.getsockname()[1]
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            seen.append(peer[0])
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    addresses = ["127.0.0.1"] + sorted(
        a.address
        for found in psutil.net_if_addrs().values()
        for a in found
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    )
    for address in addresses:  # the host reaches it: a refusal below is the sandbox's doing
        socket.create_connection((address, port), timeout=5).close()
    wait_for(lambda: len(seen) >= len(addresses), "the listener's own check")
    seen.clear()
    try:
        yield addresses, port, seen
    finally:
        server.close()


NET_ATTACK = r"""
probe <- function(expr) tryCatch({ force(expr); "REACHED" },
                                 error = function(e) conditionMessage(e),
                                 warning = function(w) conditionMessage(w))
res <- list(
  url = probe(readLines(url("http://example.org"), n = 1)),
  dns = probe(close(socketConnection("example.org", 80, timeout = 3))),
  ip = probe(close(socketConnection("1.1.1.1", 80, timeout = 3))),
  download = probe(download.file("http://1.1.1.1/", tempfile(), quiet = TRUE))
)
for (a in ADDRESSES) res[[paste("host", a)]] <- probe(close(socketConnection(a, PORT, timeout = 3)))
res[["hub"]] <- probe(close(socketConnection("127.0.0.1", HUB, timeout = 3)))
cat(jsonlite::toJSON(res, auto_unbox = TRUE), "\n")
"""


def test_r_cannot_reach_the_network_nor_the_host(
    up: Up, r_kernel: Kernel, host_listener: tuple[list[str], int, list[str]]
) -> None:
    addresses, port, seen = host_listener
    hub_port = int(up.url.rsplit(":", 1)[1])
    code = (
        f"ADDRESSES <- c({', '.join(json.dumps(a) for a in addresses)})\n"
        f"PORT <- {port}\nHUB <- {hub_port}\n{NET_ATTACK}"
    )
    out = r_kernel.json(code)
    assert len(out) == 5 + len(addresses), out
    # every attempt failed at the connection (not at some slip of the R code)
    failed = re.compile(r"cannot be opened|Couldn't resolve host name|Couldn't connect to server")
    assert all(failed.search(v) for v in out.values()), out
    assert seen == [], seen  # nothing reached the host's listener
    httpx.get(f"{up.url}/hub/login", timeout=10).raise_for_status()  # the hub was there


FILE_ATTACK = r"""
probe <- function(path) list(exists = file.exists(path),
  read = tryCatch({ readBin(path, "raw", 64); "READ" }, error = function(e) conditionMessage(e),
                  warning = function(w) conditionMessage(w)))
cat(jsonlite::toJSON(lapply(setNames(nm = PATHS), probe), auto_unbox = TRUE), "\n")
"""


def test_r_cannot_read_outside_the_sandbox(up: Up, r_kernel: Kernel) -> None:
    paths = [
        "/etc/shadow",
        "/proc/1/root/etc/shadow",
        str(up.data_dir / "hdh.sqlite"),  # the store: audit log, permits, tokens
        str(up.data_dir / "jupyterhub" / "jupyterhub.sqlite"),
        str(up.data_dir / "jupyterhub" / "cookie_secret"),
    ]
    for p in paths[:1] + paths[2:]:  # all there, on the host
        assert Path(p).is_file(), p
    code = f"PATHS <- c({', '.join(json.dumps(p) for p in paths)})\n{FILE_ATTACK}"
    out = r_kernel.json(code)
    assert set(out) == set(paths), out
    for p, probe in out.items():
        assert probe["read"].startswith(f"cannot open file '{p}'"), (p, probe)
        assert probe["read"].endswith(("No such file or directory", "Permission denied")), probe
        assert probe["exists"] is False, (p, probe)
