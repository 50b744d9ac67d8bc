"""Every /hdh handler is authenticated and authorised (the extension template's check_auth)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import JupyterServerAuthWarning

from hdh.jupyter.mounts import list_mounts


def _initialised_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServerApp:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    app = ServerApp()
    app.initialize(
        argv=[
            "--ServerApp.allow_unauthenticated_access=False",
            "--ServerApp.reraise_server_extension_failures=True",
            "--ServerApp.jpserver_extensions=hdh.jupyter=True",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.open_browser=False",
            "--ServerApp.port=0",
            "--ServerApp.allow_root=True",
        ]
    )
    return app


def _auth_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Undecorated-endpoint warnings about OUR routes (others' are not this extension's)."""
    return [
        line
        for w in caught
        if issubclass(w.category, JupyterServerAuthWarning)
        for line in str(w.message).splitlines()
        if "/hdh/" in line
    ]


def _patterns(router: Any) -> Any:
    for rule in router.rules:
        if hasattr(rule.target, "rules"):
            yield from _patterns(rule.target)
        elif hasattr(rule.matcher, "regex"):
            yield rule.matcher.regex.pattern


def test_hdh_routes_are_all_decorated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = _initialised_app(tmp_path, monkeypatch)
    try:
        routes = list(_patterns(app.web_app.default_router))
        assert any("/hdh/mounts" in r for r in routes), "the extension did not load"
        for route in ("/hdh/whoami", "/hdh/catalogue"):  # the bridged routes, checked too
            assert any(route in r for r in routes), route
        assert _auth_warnings(caught) == []
    finally:
        ServerApp.clear_instance()


def test_the_check_catches_an_undecorated_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Leaky(APIHandler):
        def get(self) -> None:  # no @web.authenticated: what the check must catch
            self.finish({})

    app = _initialised_app(tmp_path, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.web_app.add_handlers(".*$", [("/hdh/leaky", Leaky)])
    assert any("Leaky" in m for m in _auth_warnings(caught))
    ServerApp.clear_instance()


def test_list_mounts_reads_footers_only(tmp_path: Path) -> None:
    version = tmp_path / "snds" / "v2"
    version.mkdir(parents=True)
    pq.write_table(
        pa.table({"BEN_IDT_ANO": ["a", "b", "c"], "AGE": [1, 2, 3]}), version / "IR_BEN_R.parquet"
    )
    (version / "BROKEN.parquet").write_bytes(b"not parquet")
    (tmp_path / "notes.txt").write_text("ignored: not a dataset folder")
    mounts: list[dict[str, Any]] = list_mounts(tmp_path)
    assert [(m["dataset"], m["version"]) for m in mounts] == [("snds", "v2")]
    tables = {t["table"]: t for t in mounts[0]["tables"]}
    assert tables["IR_BEN_R"]["rows"] == 3 and tables["IR_BEN_R"]["columns"] == [
        "BEN_IDT_ANO",
        "AGE",
    ]
    assert "unreadable" in tables["BROKEN"]["error"]
    assert list_mounts(tmp_path / "absent") == []
