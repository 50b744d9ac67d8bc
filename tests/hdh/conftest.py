"""Fixtures for the notebook library: a data root laid out as a sandbox's ``/data``, and a
real HTTP server on a Unix socket standing in for the hub's API bridge."""

from __future__ import annotations

import datetime as dt
import json
import os
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _write(path: Path, table: pa.Table, row_group_size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)


def make_data_root(root: Path) -> Path:
    """``demo-snds`` v1 and v2, ``other`` v1; yearly ``T_MCO21B``/``T_MCO22B`` in v2."""
    v1, v2 = root / "demo-snds" / "v1", root / "demo-snds" / "v2"
    _write(v1 / "IR_BEN_R.parquet", pa.table({"BEN_NIR_PSA": ["a", "b"], "BEN_SEX_COD": [1, 2]}))
    ben = {"BEN_NIR_PSA": ["a", "b", "c", "d"], "BEN_SEX_COD": [1, 2, 2, 1]}
    _write(v2 / "IR_BEN_R.parquet", pa.table(ben))
    n = 400
    prs = pa.table(
        {
            "BEN_NIR_PSA": [["a", "b", "c", "d"][i % 4] for i in range(n)],
            "PRS_NAT_REF": [1111 if i % 3 == 0 else 3317 for i in range(n)],
            "EXE_SOI_DTD": [dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "PRS_ACT_QTE": [(i % 5) - 1 for i in range(n)],
            "PRS_PAI_MNT": [float(i) / 4 for i in range(n)],
        }
    )
    _write(v2 / "ER_PRS_F.parquet", prs, row_group_size=50)  # row groups by date
    b21 = pa.table(
        {
            "ETA_NUM": ["010", "010"],
            "RSA_NUM": ["1", "2"],
            "DGN_PAL": ["I210", "J18"],
            "GRG_GHM": ["05K051", "90Z00Z"],
        }
    )
    b22 = pa.table(
        {
            "ETA_NUM": ["010", "020", "020"],
            "RSA_NUM": ["1", "1", "2"],
            "DGN_PAL": ["I219", "I50", "I21"],
            "GRG_GHM": ["05K051", "05M09T", "05K052"],
            "SEJ_NBJ": [3, 7, 1],  # a column the earlier year lacks
        }
    )
    _write(v2 / "T_MCO21B.parquet", b21)
    _write(v2 / "T_MCO22B.parquet", b22)
    _write(root / "other" / "v1" / "X.parquet", pa.table({"x": [1]}))
    return root


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_data_root(tmp_path / "data")
    monkeypatch.setenv("HDH_DATA_ROOT", str(root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    return root


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A real HTTP server on a Unix socket answering ``GET /api/bridge/whoami`` with
    ``state["whoami"]`` (and any path of ``state["answers"]`` with its value); the notebook
    library and ``hdh egress check`` find it through ``HDH_BRIDGE_SOCKET``."""
    state: dict[str, Any] = {"whoami": {"permitted": []}, "paths": [], "answers": {}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state["paths"].append(self.path)
            answers = {"/api/bridge/whoami": state["whoami"], **state["answers"]}
            found = self.path in answers
            body = json.dumps(answers[self.path] if found else {"detail": "not found"}).encode()
            code = 200 if found else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    folder = tempfile.mkdtemp(prefix="hdhb", dir="/tmp")  # short: AF_UNIX paths are limited
    sock = os.path.join(folder, "api.sock")
    server = _UnixHTTPServer(sock, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", sock)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 000-patient synthetic extract (seed 11) as dataset ``synth`` version ``v1``, shared
    by the studies' tests: a few hundred infarctions, new users and reports."""
    from jupyterlab_hdh.data.synth import generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root / "synth" / "v1", 20_000, 11, progress=False)
    return root


@pytest.fixture
def synth_mounted(synth_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``synth_root`` as the sandbox's ``/data``; returns the extract's folder."""
    monkeypatch.setenv("HDH_DATA_ROOT", str(synth_root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    return synth_root / "synth" / "v1"
