"""``hdh guard``: what each person was shown, raising a budget, and guard.toml checked at start."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.context import open_installation
from jupyterlab_hdh.guard.display import AuditDisplayStore, DisplayLedger, DisplaySettings
from jupyterlab_hdh.paths import DataDir


def run(data: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)
    return r.exit_code, r.output


def test_display_report_and_raise(tmp_path: Path) -> None:
    data = tmp_path / "hdh"
    assert run(data, "init")[0] == 0
    assert run(data, "user", "add", "alice", "--role", "researcher")[0] == 0
    (data / "guard.toml").write_text('[display]\ndaily_budget = "1M"\n')
    code, out = run(data, "guard", "display")
    assert code == 0 and "nothing shown yet" in out
    hub = open_installation(DataDir.resolve(data))
    try:
        ledger = DisplayLedger(DisplaySettings.load(data), AuditDisplayStore(hub))
        ledger.add("alice", "demo", 2 * 1024 * 1024)
        ledger.close()
    finally:
        hub.close()
    code, out = run(data, "guard", "display")
    assert code == 0 and "alice: 2.0 MiB of 1.0 MiB (demo 2.0 MiB)  OVER BUDGET" in out
    code, out = run(data, "guard", "raise-budget", "alice", "--by", "5M")
    assert code == 0 and "raised by 5.0 MiB (now 6.0 MiB)" in out
    code, out = run(data, "guard", "display", "--json")
    [row] = json.loads(out)
    assert (row["user"], row["shown"], row["budget"]) == ("alice", 2 * 2**20, 6 * 2**20)
    assert row["alerted"]
    # mistakes: a clear line, nothing recorded
    assert run(data, "guard", "raise-budget", "nobody", "--by", "5M") == (
        1,
        "Error: no user 'nobody' in this installation\n",
    )
    code, out = run(data, "guard", "raise-budget", "alice", "--by", "lots")
    assert code == 2 and "'lots' is not a size" in out
    code, out = run(data, "guard", "raise-budget", "alice", "--by", "0")
    assert code == 2 and "positive" in out
    code, out = run(data, "guard", "display", "--day", "yesterday")
    assert code == 2 and "is not a day" in out
    assert json.loads(run(data, "guard", "display", "--json")[1])[0]["raised"] == 5 * 2**20


def test_up_refuses_a_bad_guard_toml(tmp_path: Path) -> None:
    data = tmp_path / "hdh"
    data.mkdir()
    (data / "guard.toml").write_text('[display]\ndaily_budgt = "1M"\n')
    code, out = run(data, "up", "--port", "1")
    assert code == 1 and "guard.toml" in out and "daily_budgt" in out
    assert not (data / "hdh.sqlite").exists()
