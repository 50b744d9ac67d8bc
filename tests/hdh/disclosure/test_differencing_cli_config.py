"""Differencing across outputs and earlier releases; the offline CLI; the configuration file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hdh.disclosure import CheckConfig, CheckError, CheckInput, check_files
from jupyterlab_hdh.cli.egress_check import check_command

ALL = "dept,count\n59,120\n62,45\n80,300\n"
UNDER_65 = "dept,count\n59,117\n62,45\n80,290\n"  # nested: 59 differs by 3


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_two_outputs_that_difference_each_other_fail(tmp_path: Path) -> None:
    a, b = _write(tmp_path, "all.csv", ALL), _write(tmp_path, "young.csv", UNDER_65)
    reports = check_files([CheckInput(a, "all.csv"), CheckInput(b, "young.csv")])
    assert [r.status for r in reports] == ["fail", "fail"]
    flag = reports[0].flags[0]
    assert flag.rule == "differencing"
    assert flag.location["labels"] == {"dept": "59"} and flag.location["column"] == "count"
    assert set(flag.location["files"]) == {"all.csv", "young.csv"}
    assert "3" in flag.message


def test_difference_with_an_earlier_release_fails(tmp_path: Path) -> None:
    old, new = _write(tmp_path, "old.csv", ALL), _write(tmp_path, "new.csv", UNDER_65)
    (r,) = check_files(
        [CheckInput(new, "new.csv")], earlier_releases=[CheckInput(old, "released/old.csv")]
    )
    assert r.status == "fail" and r.flags[0].location["files"] == ["new.csv", "released/old.csv"]


def test_large_differences_or_crossing_tables_pass(tmp_path: Path) -> None:
    far = _write(tmp_path, "far.csv", "dept,count\n59,100\n62,30\n80,250\n")
    crossing = _write(tmp_path, "x.csv", "dept,count\n59,125\n62,40\n80,300\n")
    base = _write(tmp_path, "all.csv", ALL)
    for other in (far, crossing):
        reports = check_files([CheckInput(base, "all.csv"), CheckInput(other, other.name)])
        assert [r.status for r in reports] == ["pass", "pass"], reports


def test_other_labels_are_not_compared(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.csv", ALL)
    b = _write(tmp_path, "b.csv", "region,count\n59,117\n62,45\n80,290\n")
    assert [r.status for r in check_files([CheckInput(a, "a.csv"), CheckInput(b, "b.csv")])] == [
        "pass",
        "pass",
    ]


# ------------------------------------------------------------------------- CLI


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = _write(tmp_path, "ok.csv", ALL)
    res = runner.invoke(check_command, [str(ok)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["files"][0]["status"] == "pass"
    bad = _write(tmp_path, "bad.csv", "dept,count\n59,4\n")
    res = runner.invoke(check_command, [str(ok), str(bad)])
    assert res.exit_code == 1
    doc = json.loads(res.output)
    flag = doc["files"][1]["flags"][0]
    assert (doc["status"], flag["rule"], flag["location"]["row"]) == ("fail", "threshold", 1)
    review = _write(tmp_path, "cost.csv", "dept,mean_cost\n59,12.5\n")
    assert runner.invoke(check_command, [str(review)]).exit_code == 4  # review
    res = runner.invoke(check_command, [str(ok)], catch_exceptions=False)
    assert res.exit_code == 0


def test_cli_differencing_and_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    old, new = _write(tmp_path, "old.csv", ALL), _write(tmp_path, "new.csv", UNDER_65)
    res = runner.invoke(check_command, [str(new), "--earlier", str(old)])
    assert res.exit_code == 1 and "differencing" in res.output
    assert runner.invoke(check_command, [str(tmp_path / "missing.csv")]).exit_code == 3
    cfg = _write(tmp_path, "c.toml", "safe_treshold = 5\n")
    res = runner.invoke(check_command, [str(new), "--config", str(cfg)])
    assert res.exit_code == 3 and "safe_treshold" in res.output


def test_cli_config_changes_the_verdict(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = _write(tmp_path, "bad.csv", "dept,count\n59,4\n")
    cfg = _write(tmp_path, "c.toml", "[checks]\nsafe_threshold = 3\n")
    assert runner.invoke(check_command, [str(bad), "--config", str(cfg)]).exit_code == 0


# ------------------------------------------------------------------------- config


def test_default_config_file_matches_the_defaults() -> None:
    path = Path(__file__).parents[3] / "hdh/disclosure/default_config.toml"
    assert CheckConfig.load(path) == CheckConfig()
    assert CheckConfig.load(None).to_dict()["safe_threshold"] == 10


@pytest.mark.parametrize(
    "text,needle",
    [
        ("unknown_key = 1\n", "unknown key 'unknown_key'"),
        ("safe_threshold = 'ten'\n", "must be an integer"),
        ("safe_nk_k = 1.5\n", "safe_nk_k"),
        ("zeros_are_disclosive = 1\n", "true or false"),
        ("figure_types = 'png'\n", "list of strings"),
        ("identifier_column_patterns = ['(']\n", "bad identifier pattern"),
        ("safe_threshold = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    p = _write(tmp_path, "c.toml", text)
    with pytest.raises(CheckError, match=needle.replace("(", r"\(")):
        CheckConfig.load(p)


def test_cli_reads_evidence_given_as_supporting(tmp_path: Path) -> None:
    import pandas as pd

    from hdh.disclosure import crosstab, write_table

    df = pd.DataFrame(
        {"g": ["a"] * 30 + ["b"] * 30, "h": ["x", "y"] * 30, "v": [10.0] * 59 + [1e6]}
    )
    table = tmp_path / "cost.csv"
    side = write_table(crosstab(df, "g", "h", values="v", aggfunc="sum"), table)
    runner = CliRunner()
    alone = json.loads(runner.invoke(check_command, [str(table)]).output)
    assert alone["status"] == "review"  # magnitudes, no evidence
    res = runner.invoke(check_command, [str(table), "--supporting", str(side)])
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["files"][0]["evidence"] == "sdc-sidecar"
    flagged = {
        (f["rule"], f["location"]["labels"]["g"], f["location"]["column"])
        for f in doc["files"][0]["flags"]
    }
    assert flagged == {("nk-rule", "b", "y"), ("p-ratio", "b", "y")}
