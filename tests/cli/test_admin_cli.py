"""Administration from the terminal: users (list, disable, revoke tokens), the audit log's
filters and order, the catalogue's paginated search and readable record summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.paths import DataDir


@pytest.fixture
def hdh(tmp_path: Path, store_url: str):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "hdh"), "--store-url", store_url]

    def run(*args: str, input: str | None = None, ok: bool = True):
        result = runner.invoke(main, [*base, *args], input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        return result

    run.data_dir = DataDir.resolve(tmp_path / "hdh", store_url)  # type: ignore[attr-defined]
    run("init")
    return run


def _store(hdh):
    return open_installation(hdh.data_dir)


def _events(hdh, *args: str) -> list[dict]:
    out = hdh("audit", "log", "--json", "--limit", "1000", *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- users --------------------------------------------------------------------------------------


def test_user_list_shows_role_email_state_and_token_count(hdh) -> None:
    hdh("user", "add", "alice", "--role", "researcher", "--email", "alice@example.org")
    hdh("user", "add", "bob", "--role", "reviewer")
    hdh("user", "token", "alice")
    hdh("user", "token", "alice")
    listed = json.loads(hdh("user", "list", "--json").stdout)
    assert listed == [
        {
            "name": "alice",
            "role": "researcher",
            "email": "alice@example.org",
            "disabled": False,
            "disabled_at": None,
            "tokens": 2,
            "password": False,
        },
        {
            "name": "bob",
            "role": "reviewer",
            "email": None,
            "disabled": False,
            "disabled_at": None,
            "tokens": 0,
            "password": False,
        },
    ]
    text = hdh("user", "list").stdout.splitlines()
    assert text[0].split() == ["NAME", "ROLE", "E-MAIL", "STATE", "TOKENS"]
    assert text[1].split() == ["alice", "researcher", "alice@example.org", "active", "2"]
    assert text[2].split() == ["bob", "reviewer", "-", "active", "0"]


def test_an_empty_user_list_says_how_to_add_one(hdh) -> None:
    assert "hdh user add" in hdh("user", "list").stdout
    assert json.loads(hdh("user", "list", "--json").stdout) == []


def test_a_disabled_user_cannot_log_in_nor_use_tokens_until_enabled(hdh) -> None:
    hdh("user", "add", "alice", "--role", "researcher")
    token = hdh("user", "token", "alice").stdout.strip()
    hdh("user", "passwd", "alice", "--password-stdin", input="alice-password\n")
    hub = _store(hdh)
    try:
        with hub.sessions() as s:
            assert accounts.authenticate(s, token).name == "alice"
            assert accounts.check_password(s, "alice", "alice-password").name == "alice"
        out = hdh("user", "disable", "alice").stdout
        assert "alice disabled" in out
        with hub.sessions() as s:
            assert accounts.authenticate(s, token) is None
            assert accounts.check_password(s, "alice", "alice-password") is None
        [row] = json.loads(hdh("user", "list", "--json").stdout)
        assert row["disabled"] is True and row["disabled_at"]
        assert "disabled" in hdh("user", "list").stdout.splitlines()[1].split()
        # a second disable changes nothing and says so
        assert "already disabled" in hdh("user", "disable", "alice").stdout
        assert "alice enabled" in hdh("user", "enable", "alice").stdout
        with hub.sessions() as s:
            assert accounts.authenticate(s, token).name == "alice"
            assert accounts.check_password(s, "alice", "alice-password").name == "alice"
        assert "already enabled" in hdh("user", "enable", "alice").stdout
    finally:
        hub.close()
    actions = [e["action"] for e in _events(hdh, "--oldest-first", "--user", "alice")]
    assert actions.count("user.disable") == 1 and actions.count("user.enable") == 1


def test_revoke_tokens_ends_every_api_token_of_a_user(hdh) -> None:
    hdh("user", "add", "alice", "--role", "researcher")
    hdh("user", "add", "bob", "--role", "researcher")
    tokens = [hdh("user", "token", "alice").stdout.strip() for _ in range(3)]
    bobs = hdh("user", "token", "bob").stdout.strip()
    assert "3 API tokens of alice revoked" in hdh("user", "revoke-tokens", "alice").stdout
    hub = _store(hdh)
    try:
        with hub.sessions() as s:
            assert all(accounts.authenticate(s, t) is None for t in tokens)
            assert accounts.authenticate(s, bobs).name == "bob"
    finally:
        hub.close()
    assert [u["tokens"] for u in json.loads(hdh("user", "list", "--json").stdout)] == [0, 1]
    assert "0 API tokens of alice revoked" in hdh("user", "revoke-tokens", "alice").stdout
    [event, *_] = _events(hdh, "--action", "token.revoke")
    assert event["target"] == "user:alice" and event["details"] == {"count": 0}
    assert "intact" in hdh("audit", "verify").stdout


@pytest.mark.parametrize("command", ["disable", "enable", "revoke-tokens"])
def test_user_commands_on_an_unknown_user_are_one_line(hdh, command: str) -> None:
    result = hdh("user", command, "ghost", ok=False)
    assert result.exit_code == 1 and "no user named 'ghost'" in result.output
    assert [e["action"] for e in _events(hdh)] == ["hub.init"]


# --- the audit log ------------------------------------------------------------------------------


@pytest.fixture
def logged(hdh):
    """A log with several users, projects and actions."""
    hdh("user", "add", "alice", "--role", "researcher")
    hdh("user", "add", "bob", "--role", "researcher")
    hdh("project", "create", "cohort", "--title", "Cohorte", "--purpose", "Étude")
    hdh("project", "add-member", "cohort", "alice")
    hdh("project", "create", "other", "--title", "Autre", "--purpose", "Étude")
    hdh("project", "add-member", "other", "bob")
    hdh("user", "token", "bob")
    return hdh


def test_audit_log_shows_the_newest_first_and_keeps_chain_order_on_request(logged) -> None:
    newest = _events(logged)
    seqs = [e["seq"] for e in newest]
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == len(seqs)
    oldest = _events(logged, "--oldest-first")
    assert [e["seq"] for e in oldest] == sorted(seqs)
    assert [e["seq"] for e in _events(logged, "--limit", "2")] == seqs[:2]
    assert [e["seq"] for e in _events(logged, "--limit", "2", "--oldest-first")] == [1, 2]
    # the readable form: one line per event, the newest first, and how to see more
    result = logged("audit", "log", "--limit", "3")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"#{seqs[0]} ")
    assert "token.issue" in lines[0] and "user:bob" in lines[0]
    assert f"showing the 3 newest of {len(seqs)} events" in result.stderr


def test_audit_log_filters_by_user_project_action_and_time(logged) -> None:
    by_alice = _events(logged, "--user", "alice")
    assert {e["action"] for e in by_alice} == {"user.create", "project.member.add"}
    cohort = _events(logged, "--project", "cohort")
    assert {e["action"] for e in cohort} == {"project.create", "project.member.add"}
    assert all("cohort" in e["target"] for e in cohort)
    assert {e["target"] for e in _events(logged, "--action", "user.create")} == {
        "user:alice",
        "user:bob",
    }
    # an action family: `project` is every project.* action
    assert {e["action"] for e in _events(logged, "--action", "project")} == {
        "project.create",
        "project.member.add",
    }
    both = _events(logged, "--user", "bob", "--project", "other")
    assert [e["action"] for e in both] == ["project.member.add"]
    every = _events(logged)
    middle = every[len(every) // 2]["ts"]
    since = _events(logged, "--since", middle)
    until = _events(logged, "--until", middle)
    assert since and until and all(e["ts"] >= middle for e in since)
    assert all(e["ts"] <= middle for e in until)
    seqs = {e["seq"] for e in since} | {e["seq"] for e in until}
    assert seqs == {e["seq"] for e in every}
    today = every[0]["ts"][:10]
    assert len(_events(logged, "--since", today, "--until", today)) == len(every)
    assert _events(logged, "--until", "2000-01-01") == []
    assert "no event matches" in logged("audit", "log", "--user", "nobody").stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since"),
        (("--until", "2026-13-01"), "--until"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "before --since"),
    ],
)
def test_audit_log_refuses_bad_times_in_one_line(logged, args, message) -> None:
    result = logged("audit", "log", *args, ok=False)
    assert result.exit_code == 2 and message in result.output
    assert "ISO" in result.output or "before" in result.output


# --- the catalogue ------------------------------------------------------------------------------


@pytest.fixture
def catalogued(hdh, raw_extract: Path):
    hdh("data", "ingest", str(raw_extract), "--dataset", "snds", "--title", "Extrait test")
    return hdh


def test_catalogue_search_pages_and_says_how_many_and_what_next(catalogued) -> None:
    every = json.loads(catalogued("catalogue", "search", "date", "--limit", "200", "--json").stdout)
    assert len(every) > 25
    first = catalogued("catalogue", "search", "date")
    lines = first.stdout.splitlines()
    assert len([x for x in lines if x.startswith(("variable", "table", "dataset"))]) == 20
    assert f"showing 1–20 of {len(every)}" in first.stdout
    assert "next: hdh catalogue search date --page 2" in first.stdout
    second = json.loads(catalogued("catalogue", "search", "date", "--page", "2", "--json").stdout)
    assert second == every[20:40]
    last_page = (len(every) + 19) // 20
    last = catalogued("catalogue", "search", "date", "--page", str(last_page))
    assert f"of {len(every)}" in last.stdout and "next:" not in last.stdout
    past = catalogued("catalogue", "search", "date", "--page", str(last_page + 1), ok=False)
    assert past.exit_code == 2 and f"{len(every)} matches" in past.output
    # all on one page: no paging note
    few = catalogued("catalogue", "search", "BEN_NIR_PSA")
    assert "showing" not in few.stdout and "next:" not in few.stdout


def test_catalogue_show_summarises_and_json_gives_the_record(catalogued) -> None:
    record = json.loads(catalogued("catalogue", "show", "snds", "--json").stdout)
    assert record["title"] == "Extrait test" and record["tables"]
    out = catalogued("catalogue", "show", "snds").stdout
    lines = out.splitlines()
    assert len(lines) < 80 and not out.lstrip().startswith("{")
    assert lines[0] == "snds v1 — Extrait test"
    assert "access rights: restricted" in out
    assert "versions: v1 (current)" in out
    assert f"{record['individuals']:,} individuals" in out
    if record["temporal_start"]:
        assert f"coverage: {record['temporal_start']} to {record['temporal_end']}" in out
    for table in record["tables"]:
        [line] = [x for x in lines if x.split()[:1] == [table["name"]]]
        assert f"{table['rows']:,} row" in line and f"{len(table['columns'])} columns" in line
    assert "--json" in out and "hdh catalogue dictionary snds" in out


def test_an_unknown_egress_user_is_pointed_to_a_user_list_that_exists(hdh) -> None:
    hdh("user", "add", "rita", "--role", "reviewer")
    refused = hdh("egress", "list", "--as", "nobody", ok=False)
    assert refused.exit_code == 1 and "`hdh user list`" in refused.output
    assert "rita" in hdh("user", "list").stdout
