"""``hdh project`` and ``hdh permit``: the operator's console for projects and permits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.paths import DataDir
from tests.governance.fakes import fake_version


def _console(tmp_path: Path, store_url: str, ingest_from: Path | None):
    """An initialised hub with users, snds v1 and project cohort led by alice."""
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", store_url]

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, [*base, *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run("init")
    if ingest_from is not None:
        run("data", "ingest", str(ingest_from), "--dataset", "snds")
    else:
        hub = open_installation(DataDir.resolve(tmp_path / "hdh", store_url))
        fake_version(hub)
        hub.close()
    for name, role in (("alice", "researcher"), ("bob", "researcher"), ("rev", "reviewer")):
        run("user", "add", name, "--role", role)
    run("project", "create", "cohort", "--title", "Cohorte", "--purpose", "Étude de cohorte")
    run("project", "add-member", "cohort", "alice", "--role", "lead")
    return run


@pytest.fixture
def hdh(tmp_path: Path, store_url: str):
    """The console; snds v1 is a catalogue row without files."""
    return _console(tmp_path, store_url, None)


@pytest.fixture
def hdh_ingested(tmp_path: Path, store_url: str, raw_extract: Path):
    """The console, with snds v1 really ingested from the raw extract."""
    return _console(tmp_path, store_url, raw_extract)


def test_projects_and_permits_from_the_cli(hdh_ingested, tmp_path: Path) -> None:
    hdh = hdh_ingested
    refused = hdh("permit", "check", "alice", "cohort", ok=False)
    assert "no permit covering 'alice'" in refused.output
    out = hdh(
        "permit",
        "grant",
        "cohort",
        "--member",
        "alice",
        "--dataset",
        "snds/v1",
        "--expires",
        "2099-01-31",
    ).output
    assert "permit #1 granted on cohort to alice for snds/v1 until 2099-02-01T00:00:00+00:00" in out
    check = hdh("permit", "check", "alice", "cohort").output
    assert "alice may open cohort: permit #1" in check
    assert str(tmp_path / "hdh" / "datasets" / "snds" / "v1") in check
    shown = json.loads(hdh("project", "show", "cohort").output)
    assert shown["members"] == [{"user": "alice", "role": "lead"}]
    assert shown["permits"][0]["mounts"][0]["version"] == "v1"
    assert "cohort\tpermit #1 active\talice\tCohorte" in hdh("project", "list").output
    assert "#1\tcohort\tactive" in hdh("permit", "list", "--project", "cohort").output
    hdh("project", "add-member", "cohort", "bob")
    assert (
        "permit #2"
        in hdh(
            "permit",
            "grant",
            "cohort",
            "--member",
            "alice",
            "--member",
            "bob",
            "--dataset",
            "snds",
            "--days",
            "10",
        ).output
    )
    permits = json.loads(hdh("permit", "list", "--json").output)
    assert [p["status"] for p in permits] == ["revoked", "active"]
    assert "permit #2 revoked" in hdh("permit", "revoke", "2", "--reason", "ended").output
    result = hdh("permit", "check", "bob", "cohort", ok=False)
    assert result.exit_code == 1
    assert "revoked at" in result.output and "because: ended" in result.output
    assert "intact" in hdh("audit", "verify").output
    events = [
        json.loads(x) for x in hdh("audit", "log", "--json", "--limit", "1000").output.splitlines()
    ]
    actions = [e["action"] for e in events]
    assert {"project.create", "project.member.add", "permit.grant", "permit.revoke"} <= set(actions)
    assert all(e["actor"].startswith("cli:") for e in events if e["action"].startswith("permit"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("project", "create", "..", "--title", "t", "--purpose", "p"), "invalid project slug"),
        (("project", "create", "Cohort", "--title", "t", "--purpose", "p"), "invalid project slug"),
        (("project", "create", "cohort", "--title", "t", "--purpose", "p"), "already exists"),
        (("project", "add-member", "cohort", "rev"), "only researchers"),
        (("project", "add-member", "nope", "alice"), "no project 'nope'"),
        (("project", "show", "nope"), "no project 'nope'"),
        (
            ("permit", "grant", "cohort", "--member", "bob", "--dataset", "snds", "--days", "3"),
            "'bob' is not a member",
        ),
        (
            ("permit", "grant", "cohort", "--member", "alice", "--dataset", "x/v3", "--days", "3"),
            "no version v3 of dataset 'x'",
        ),
        (
            (
                "permit",
                "grant",
                "cohort",
                "--member",
                "alice",
                "--dataset",
                "snds",
                "--expires",
                "2001-01-01",
            ),
            "not in the future",
        ),
        (
            (
                "permit",
                "grant",
                "cohort",
                "--member",
                "alice",
                "--dataset",
                "snds",
                "--expires",
                "2099-01-01T10:00",
            ),
            "offset",
        ),
        (("permit", "grant", "cohort", "--member", "alice", "--dataset", "snds"), "exactly one"),
        (("permit", "revoke", "7", "--reason", "x"), "no permit #7"),
        (("permit", "check", "bob", "cohort"), "not a member"),
        (("permit", "check", "alice", "nope"), "no project 'nope'"),
    ],
)
def test_errors_are_one_clear_line(hdh, args: tuple[str, ...], message: str) -> None:
    result = hdh(*args, ok=False)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
