"""``hdh egress``: the whole airlock from the control-plane host's terminal (both backends)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.egress import manager
from tests.egress import airlock

TABLE = "region,count\nnorth,120\nsouth,140\n"

Hdh = Callable[..., Result]


@pytest.fixture
def hdh(hub: Any, store_url: str) -> tuple[Hdh, Any]:
    workspace = airlock.setup(hub)
    airlock.write(workspace, "out/table.csv", TABLE)
    airlock.write(workspace, "analysis.py", "print('table')\n")
    runner = CliRunner()
    base = ["--data-dir", str(hub.data_dir.root), "--store-url", store_url, "egress"]

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, [*base, *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run, hub


def _vote_args(view: dict[str, Any], reviewer: str) -> list[str]:
    [out] = [f for f in view["files"] if f["role"] == "output"]
    args = [str(view["id"]), out["path"], "approve", "--as", reviewer]
    if out["check_status"] == "fail":
        args += ["--exception", "checked by hand: every cell above 100"]
    return args


def test_submit_vote_approve_release_download(hdh: Any, tmp_path: Path) -> None:
    run, hub = hdh
    out = run(
        "submit", "out/table.csv", "--code", "analysis.py", "--as", "alice",
        "--project", "study", "--title", "Table 1",
        "--context", '{"population": "adults", "variables": ["region"]}', "--json",
    )  # fmt: skip
    view = json.loads(out.output)
    rid = view["id"]
    assert view["state"] == "submitted"
    assert {(f["path"], f["role"]) for f in view["files"]} == {
        ("out/table.csv", "output"),
        ("analysis.py", "code"),
    }
    assert view["files"][0]["context"] == {"population": "adults", "variables": ["region"]}
    assert "partially_reviewed" in run("vote", *_vote_args(view, "rita")).output
    assert "is reviewed" in run("vote", *_vote_args(view, "raj")).output
    assert "approved" in run("approve", str(rid), "--as", "rita").output
    released = json.loads(run("release", str(rid), "--json").output)  # as the operator
    assert released["state"] == "released" and released["release_complete"] is True

    dest = tmp_path / "downloads"
    dest.mkdir()
    got = run("download", str(rid), "--as", "alice", "-o", str(dest)).output.split()
    assert len(got) == 1 and Path(got[0]).read_text() == TABLE
    refused = run("download", str(rid), "--as", "alice", "-o", str(dest), ok=False)
    assert refused.exit_code == 1 and "exists (use --force" in refused.output
    refused = run("download", str(rid), "--as", "rita", "-o", str(dest), ok=False)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "no egress request" in refused.output

    listed = json.loads(run("list", "--json").output)
    assert [(r["id"], r["state"]) for r in listed] == [(rid, "released")]
    assert run("list", "--as", "mallory").output == ""
    notes = run("notifications", "--as", "alice", "--unread", "--mark-read").output
    assert "was approved" in notes and "was released" in notes
    assert run("notifications", "--as", "alice", "--unread").output == ""


def test_show_as_text_json_and_inert_html(hdh: Any, tmp_path: Path) -> None:
    run, hub = hdh
    airlock.write(hub.data_dir.workspace("study"), "x.html", "<script>alert(1)</script><b>x</b>")
    rid = json.loads(
        run("submit", "out/table.csv", "x.html", "--as", "alice", "--project", "study",
            "--title", "T", "--json").output
    )["id"]  # fmt: skip
    text = run("show", str(rid), "--as", "rita").output
    assert f"Request #{rid} 'T': submitted" in text and "out/table.csv (output)" in text
    page = tmp_path / "review.html"
    run("show", str(rid), "--as", "rita", "--html", str(page))
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "north" in html
    # a member of another project sees nothing
    refused = run("show", str(rid), "--as", "mallory", ok=False)
    assert refused.exit_code == 1 and f"no egress request #{rid}" in refused.output


def test_refusals_are_one_line_errors(hdh: Any) -> None:
    run, _hub = hdh
    view = json.loads(
        run("submit", "out/table.csv", "--as", "alice", "--project", "study", "--json").output
    )
    rid = str(view["id"])
    cases = [
        (("show", "999"), "no egress request #999"),
        (("vote", rid, "out/table.csv", "approve", "--as", "bob"), "bob may not vote"),
        (("vote", rid, "out/table.csv", "approve", "--as", "nobody"), "no user 'nobody'"),
        (("approve", rid, "--as", "rita"), "cannot"),
        (("submit", "../other/x.csv", "--as", "alice", "--project", "study"), ""),
        (("release", rid), "cannot"),
        (("return", rid, "--as", "rita", "--reason", "no"), "cannot"),
    ]
    for args, words in cases:
        result = run(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and words in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    usage = run("submit", "x.csv", "--as", "alice", ok=False)
    assert usage.exit_code == 2 and "--project" in usage.output
    assert json.loads(run("show", rid, "--json").output)["state"] == "submitted"


def test_withdraw_and_return(hdh: Any) -> None:
    run, _hub = hdh
    view = json.loads(
        run("submit", "out/table.csv", "--as", "alice", "--project", "study", "--json").output
    )
    rid = str(view["id"])
    run("vote", rid, "out/table.csv", "changes", "--as", "rita")
    run("vote", rid, "out/table.csv", "changes", "--as", "raj")
    run("comment", rid, "private thought", "--as", "rita", "--private")
    returned = json.loads(
        run("return", rid, "--as", "raj", "--reason", "round to 5", "--json").output
    )
    assert returned["state"] == "returned"
    assert "withdrawn" in run("withdraw", rid, "--as", "alice").output


def test_recover_finishes_an_interrupted_release(hdh: Any) -> None:
    run, hub = hdh
    assert "nothing to recover" in run("recover").output
    view = json.loads(
        run("submit", "out/table.csv", "--as", "alice", "--project", "study", "--json").output
    )
    rid = view["id"]
    run("vote", *_vote_args(view, "rita"))
    run("vote", *_vote_args(view, "raj"))
    run("approve", str(rid), "--as", "raj")
    # the release transaction committed, then the process died before copying anything
    with hub.transaction() as s:
        manager.start_release(s, rid, actor=airlock.ADMIN)
    assert airlock.state(hub, rid) == "releasing"
    out = json.loads(run("recover", "--json").output)
    assert out == [{"request": rid, "outcome": "released"}]
    assert airlock.state(hub, rid) == "released"
    [released] = list((hub.data_dir.outbox / str(rid)).iterdir())
    assert released.read_text() == TABLE


def test_check_runs_offline_and_send_mail_needs_smtp(hdh: Any) -> None:
    run, hub = hdh
    table = hub.data_dir.workspace("study") / "out" / "table.csv"
    result = run("check", str(table), ok=False)
    assert result.exit_code in (0, 1, 2), result.output
    report = json.loads(result.output)
    assert report["status"] in ("pass", "fail", "review")
    assert [f["name"] for f in report["files"]] == [str(table)]
    off = run("send-mail", ok=False)
    assert off.exit_code == 1 and "e-mail is off" in off.output


def test_the_cli_applies_the_installations_daily_quota(hdh: Any) -> None:
    run, hub = hdh
    (hub.data_dir.root / "airlock.toml").write_text("[limits]\nmax_requests_per_day = 1\n")
    args = ["submit", "out/table.csv", "--as", "alice", "--project", "study", "--draft"]
    run(*args, "--title", "first")
    refused = run(*args, "--title", "second", ok=False)
    assert refused.exit_code == 1 and "daily quota of 1" in refused.output
    assert "Traceback" not in refused.output
