"""The ``hdh`` command: help everywhere, the whole data flow, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from jupyterlab_hdh.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    """Every command path, through the groups' own listing (``hdh`` loads its groups lazily,
    so ``group.commands`` alone would be empty)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_the_listing_reaches_every_command_group() -> None:
    paths = {p[0] for p in _commands(main)}
    assert {"data", "egress", "guard", "user", "project", "permit", "up"} <= paths
    assert len(list(_commands(main))) > 60


@pytest.mark.parametrize("path", [(), *_commands(main)], ids=lambda p: " ".join(p) or "hdh")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.fixture
def hdh(tmp_path: Path, store_url: str):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", store_url]

    def run(*args: str, input: str | None = None, ok: bool = True):
        result = runner.invoke(main, [*base, *args], input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_the_data_flow_from_the_cli(hdh, raw_extract: Path, tmp_path: Path) -> None:
    assert "created pseudonymisation keys" in hdh("init").output
    assert "nothing to do" in hdh("init").output
    out = hdh(
        "data", "ingest", str(raw_extract), "--dataset", "snds", "--title", "Extrait test"
    ).output
    assert "snds v1" in out and "individuals" in out
    assert "snds v1" in hdh("data", "list").output
    hits = json.loads(hdh("catalogue", "search", "BEN_NIR_PSA", "--json").output)
    assert hits and hits[0]["variable"] == "BEN_NIR_PSA"
    record = json.loads(hdh("catalogue", "show", "snds", "--json").output)
    assert record["title"] == "Extrait test"
    assert (
        "DGN_PAL"
        in hdh(
            "catalogue",
            "dictionary",
            "snds",
            sorted(t["name"] for t in record["tables"] if t["name"].endswith("B"))[0],
        ).output
    )
    export = tmp_path / "dcat.jsonld"
    hdh("catalogue", "export-dcat", "--validate", "--out", str(export))
    doc = json.loads(export.read_text())
    assert "snds/v1" in json.dumps(doc) and "dcat:Catalog" in json.dumps(doc)
    nir = pq.read_table(raw_extract / "IR_BEN_R.parquet")["BEN_IDT_ANO"][0].as_py()
    assert "registered" in hdh("optout", "add", input=nir + "\n").output
    assert hdh("optout", "count").output.strip() == "1"
    assert "v2 issued" in hdh("data", "reapply-optout").output
    assert "intact" in hdh("audit", "verify").output
    actions = [
        json.loads(line)["action"]
        for line in hdh("audit", "log", "--json", "--limit", "100").output.splitlines()
    ]
    assert {"hub.init", "dataset.ingest", "optout.add", "dataset.reapply_optout"} <= set(actions)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "ingest", "/nonexistent", "--dataset", "x"), "does not exist"),
        (("data", "ingest", "{extract}", "--dataset", "../x"), "path separator"),
        (("catalogue", "show", "nope"), "no dataset 'nope'"),
        (("catalogue", "search", ""), "empty"),
        (("optout", "add", "12345"), "not a valid NIR-like identifier"),
        (("user", "add", "Bad Name", "--role", "admin"), "invalid user name"),
    ],
)
def test_errors_are_one_clear_line(
    hdh, raw_extract: Path, args: tuple[str, ...], message: str
) -> None:
    hdh("init")
    result = hdh(*(a.format(extract=raw_extract) for a in args), ok=False)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyterlab_hdh.cli",
            "--data-dir",
            str(tmp_path / "none"),
            "data",
            "list",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "hdh init" in proc.stderr and "Traceback" not in proc.stderr


def test_audit_verify_fails_on_tampering(hdh, tmp_path: Path, store_url: str) -> None:
    import sqlalchemy as sa

    from jupyterlab_hdh.store.db import make_engine

    hdh("init")
    hdh("user", "add", "bob", "--role", "reviewer")
    engine = make_engine(store_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        conn.execute(sa.text("UPDATE audit_events SET actor = 'eve' WHERE seq = 2"))
    engine.dispose()
    result = hdh("audit", "verify", ok=False)
    assert result.exit_code == 1 and "broken at event 2" in result.output


def test_synth_from_the_cli_is_deterministic_and_refuses_a_used_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(
            main,
            [
                "data",
                "synth",
                "--patients",
                "40",
                "--seed",
                "5",
                "--out",
                str(tmp_path / name),
                "--quiet",
            ],
        )
        assert result.exit_code == 0 and "tables" in result.output, result.output
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    again = runner.invoke(main, ["data", "synth", "--patients", "40", "--out", str(tmp_path / "a")])
    assert again.exit_code == 1 and "Traceback" not in again.output
    assert "not empty" in again.output or "non-empty" in again.output


def test_user_email_set_refused_and_cleared(tmp_path: Path) -> None:
    from jupyterlab_hdh.context import open_installation
    from jupyterlab_hdh.paths import DataDir
    from jupyterlab_hdh.store.models import User

    runner = CliRunner()

    def hdh(*args: str) -> Result:
        return runner.invoke(main, ["--data-dir", str(tmp_path / "d"), *args])

    assert hdh("init").exit_code == 0
    bad = hdh("user", "add", "dora", "--role", "reviewer", "--email", "not an address")
    assert bad.exit_code == 1 and "invalid e-mail address" in bad.output
    assert "Traceback" not in bad.output
    ok = hdh("user", "add", "dora", "--role", "reviewer", "--email", "dora@hospital.example")
    assert ok.exit_code == 0, ok.output

    def stored() -> str | None:
        hub = open_installation(DataDir.resolve(tmp_path / "d"))
        try:
            with hub.sessions() as s:
                return s.query(User).filter_by(name="dora").one().email
        finally:
            hub.close()

    assert stored() == "dora@hospital.example"
    assert hdh("user", "email", "dora").exit_code == 2  # neither an address nor --clear
    assert hdh("user", "email", "dora", "x\nBcc: eve@evil.example").exit_code == 1
    assert stored() == "dora@hospital.example"
    assert hdh("user", "email", "dora", "--clear").exit_code == 0
    assert stored() is None
