"""``hdh egress check``: the installation's thresholds, distinct exit codes, French CSVs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.cli.egress_check import (
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_REVIEW,
    EXIT_USAGE,
)
from tests.hdh.conftest import bridge  # noqa: F401 - the fixture


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def installation(tmp_path: Path) -> Path:
    """A data directory whose airlock.toml raises the threshold to 11 (the CNIL-style rule)."""
    root = tmp_path / "hdh"
    root.mkdir()
    _write(root, "airlock.toml", "[checks]\nsafe_threshold = 11\n")
    return root


def test_data_dir_thresholds_apply(
    installation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HDH_DATA_DIR", raising=False)
    c10 = _write(tmp_path, "c10.csv", "groupe,effectif\nA,10\nB,230\n")
    runner = CliRunner()
    given = runner.invoke(main, ["--data-dir", str(installation), "egress", "check", str(c10)])
    assert given.exit_code == EXIT_FAIL, given.output
    (flag,) = json.loads(given.output)["files"][0]["flags"]
    assert flag["message"] == "count 10 is below the threshold 11"
    # HDH_DATA_DIR names the installation too
    monkeypatch.setenv("HDH_DATA_DIR", str(installation))
    assert runner.invoke(main, ["egress", "check", str(c10)]).exit_code == EXIT_FAIL
    # no data directory given: ACRO's defaults, as before
    monkeypatch.delenv("HDH_DATA_DIR")
    assert runner.invoke(main, ["egress", "check", str(c10)]).exit_code == EXIT_PASS
    # --config names its own thresholds, over the installation's
    relaxed = _write(tmp_path, "relaxed.toml", "safe_threshold = 5\n")
    args = ["--data-dir", str(installation), "egress", "check", str(c10), "--config", str(relaxed)]
    assert runner.invoke(main, args).exit_code == EXIT_PASS


def test_bad_or_missing_installation_is_bad_input(
    installation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HDH_DATA_DIR", raising=False)
    c10 = _write(tmp_path, "c10.csv", "groupe,effectif\nA,10\nB,230\n")
    _write(installation, "airlock.toml", "[checks]\nsafe_treshold = 11\n")
    runner = CliRunner()
    res = runner.invoke(main, ["--data-dir", str(installation), "egress", "check", str(c10)])
    assert res.exit_code == EXIT_BAD_INPUT
    assert "safe_treshold" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["--data-dir", str(tmp_path / "nope"), "egress", "check", str(c10)])
    assert res.exit_code == EXIT_BAD_INPUT and "no data directory" in res.output


def test_exit_codes_are_distinct_and_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HDH_DATA_DIR", raising=False)
    codes = {EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_REVIEW}
    assert len(codes) == 5 and EXIT_USAGE == 2  # click's code for a usage error
    runner = CliRunner()
    review = _write(tmp_path, "cost.csv", "dept,mean_cost\n59,12.5\n")
    res = runner.invoke(main, ["egress", "check", str(review)])
    assert res.exit_code == EXIT_REVIEW and json.loads(res.output)["status"] == "review"
    for usage in (["egress", "check"], ["egress", "check", str(review), "--role", "nope"]):
        assert runner.invoke(main, usage).exit_code == EXIT_USAGE
    missing = runner.invoke(main, ["egress", "check", str(tmp_path / "missing.csv")])
    assert missing.exit_code == EXIT_BAD_INPUT
    assert json.loads(missing.output) == {
        "error": f"{tmp_path / 'missing.csv'}: no such regular file"
    }
    helptext = " ".join(runner.invoke(main, ["egress", "check", "--help"]).output.split())
    for code, meaning in (
        (EXIT_PASS, "every file passes"),
        (EXIT_FAIL, "a file fails"),
        (EXIT_USAGE, "usage error"),
        (EXIT_BAD_INPUT, "bad input"),
        (EXIT_REVIEW, "a file needs review"),
    ):
        assert f"{code} {meaning}" in helptext, helptext
    doc = " ".join((Path(__file__).parents[2] / "docs" / "egress-checks.md").read_text().split())
    assert "0 every file passes, 1 a file fails, 2 usage error" in doc


def test_french_csv_from_the_shell(tmp_path: Path) -> None:
    """The issue's own example: ``printf 'groupe;effectif\\nA;3\\nB;230\\n' > t.csv``."""
    env = {k: v for k, v in os.environ.items() if k != "HDH_DATA_DIR"}
    table = tmp_path / "t.csv"
    table.write_bytes(b"groupe;effectif\nA;3\nB;230\n")
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlab_hdh.cli", "egress", "check", str(table)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == EXIT_FAIL, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [f["rule"] for f in report["files"][0]["flags"]] == ["threshold"]
    unsplit = tmp_path / "u.csv"
    unsplit.write_bytes(b"groupe;effectif\nA 3\nB 230\n")
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlab_hdh.cli", "egress", "check", str(unsplit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == EXIT_FAIL and "Traceback" not in done.stderr
    (flag,) = json.loads(done.stdout)["files"][0]["flags"]
    assert flag["rule"] == "unreadable" and "separator" in flag["message"]


def test_in_a_sandbox_the_installations_thresholds_come_through_the_bridge(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bridge: dict[str, Any],  # noqa: F811
) -> None:
    """No data directory inside a sandbox: ``egress check`` asks the API bridge for the
    installation's ``[checks]``, so it does not pass a count that submit then fails."""
    monkeypatch.delenv("HDH_DATA_DIR", raising=False)
    c10 = _write(tmp_path, "c10.csv", "groupe,effectif\nA,10\nB,230\n")
    bridge["answers"]["/api/bridge/egress/checks"] = {"checks": {"safe_threshold": 11}}
    out = CliRunner().invoke(main, ["egress", "check", str(c10)])
    assert out.exit_code == EXIT_FAIL, out.output
    (flag,) = json.loads(out.output)["files"][0]["flags"]
    assert flag["message"] == "count 10 is below the threshold 11"
    assert "/api/bridge/egress/checks" in bridge["paths"]
    # a bridge that does not answer the route (an older hub): the defaults, as before
    del bridge["answers"]["/api/bridge/egress/checks"]
    assert CliRunner().invoke(main, ["egress", "check", str(c10)]).exit_code == EXIT_PASS
