"""Finished-table checks: thresholds, zeros, margins, identifiers, dates, formula injection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hdh.disclosure import CheckConfig, CheckInput, FileReport, check_files


def _check(tmp_path: Path, name: str, text: str, **kw: object) -> FileReport:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    (report,) = check_files([CheckInput(p, name, "output")], **kw)  # type: ignore[arg-type]
    return report


def _rules(report: FileReport) -> list[str]:
    return [f.rule for f in report.flags]


def test_safe_count_table_passes(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,sex,count\nNord,F,120\nNord,M,98\nSud,F,45\nSud,M,10\n")
    assert r.status == "pass", r.flags
    assert r.kind == "table" and r.flags == []


def test_small_count_fails_with_cell_location(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,sex,count\nNord,F,120\nNord,M,9\nSud,F,45\n")
    assert r.status == "fail"
    (flag,) = r.flags
    assert flag.rule == "threshold"
    assert flag.location == {"row": 2, "column": "count", "labels": {"region": "Nord", "sex": "M"}}


def test_threshold_comes_from_config(tmp_path: Path) -> None:
    text = "region,count\nA,7\nB,50\n"
    assert _check(tmp_path, "t.csv", text).status == "fail"
    assert _check(tmp_path, "u.csv", text, config=CheckConfig(safe_threshold=5)).status == "pass"


def test_zeros_follow_configuration(tmp_path: Path) -> None:
    text = "region,count\nA,0\nB,50\n"
    assert _rules(_check(tmp_path, "t.csv", text)) == ["zeros"]
    relaxed = CheckConfig(zeros_are_disclosive=False)
    assert _check(tmp_path, "u.csv", text, config=relaxed).status == "pass"


def test_denominator_beside_a_rate_is_checked(tmp_path: Path) -> None:
    text = "dept,deaths,population,rate\n59,12,3000,0.004\n62,11,4,2.75\n"
    r = _check(tmp_path, "t.csv", text)
    assert r.status == "fail"
    assert [(f.rule, f.location.get("column")) for f in r.flags if f.severity == "fail"] == [
        ("threshold", "population")
    ]
    assert any(f.rule == "no-evidence" and f.severity == "review" for f in r.flags)


def test_magnitudes_without_evidence_need_review(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,mean_cost\nA,1520.5\nB,990.25\n")
    assert r.status == "review"
    assert _rules(r) == ["no-evidence"]


def test_suppressed_cell_recoverable_from_total_row(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,n\nA,*\nB,20\nC,30\nTotal,62\n")
    assert r.status == "fail"
    (flag,) = r.flags
    assert flag.rule == "secondary-suppression"
    assert flag.location["labels"] == {"region": "A"}


def test_two_suppressed_cells_in_one_line_are_safe(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,n\nA,*\nB,*\nC,30\nTotal,62\n")
    assert r.status == "pass", r.flags


def test_recovery_chains_through_rows_and_columns(tmp_path: Path) -> None:
    # A/x and B/x are both suppressed (column x alone is safe), but row A's total column
    # reveals A/x, and then column x's total reveals B/x.
    text = "g,x,y,Total\nA,*,20,25\nB,*,30,34\nC,40,40,80\nTotal,49,90,139\n"
    r = _check(tmp_path, "t.csv", text)
    cells = sorted(
        (f.location["labels"]["g"], f.location["column"])
        for f in r.flags
        if f.rule == "secondary-suppression"
    )
    assert cells == [("A", "x"), ("B", "x")]


def test_identifier_column_by_name_and_by_value(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "BEN_NIR_PSA,count\nabc,20\n")
    assert "identifier-column" in _rules(r) and r.status == "fail"
    hexid = "a" * 64
    r = _check(tmp_path, "u.csv", f"who,count\n{hexid},20\nother,30\n")
    assert _rules(r) == ["identifier-column"]
    r = _check(tmp_path, "v.csv", "who,count\n1850775123456 42,20\n185077512345642,30\n")
    assert _rules(r) == ["identifier-column"]


def test_individual_dates_with_small_groups(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "date_deces,count\n2023-01-04,12\n2023-01-05,15\n")
    assert r.status == "pass", r.flags
    r = _check(tmp_path, "u.csv", "date_deces,count\n2023-01-04,12\n2023-01-05,15\n2023-01-06,3\n")
    assert "individual-date" in _rules(r)
    r = _check(tmp_path, "v.csv", "sejour_id_ok,entree\nx,2023-01-04\ny,2023-02-05\n")
    assert _rules(r) == ["individual-date"]
    # month precision is not an individual date
    r = _check(tmp_path, "w.csv", "mois,count\n2023-01,3\n2023-02,15\n")
    assert "individual-date" not in _rules(r)


@pytest.mark.parametrize("payload", ["=1+1", "+SUM(A1)", "@cmd", "\tx", "-cmd|' /C calc'!A0"])
def test_formula_injection_flagged(tmp_path: Path, payload: str) -> None:
    frame = pd.DataFrame({"label": [payload, "b"], "count": [20, 30]})
    p = tmp_path / "t.csv"
    frame.to_csv(p, index=False)
    (r,) = check_files([CheckInput(p, "t.csv", "output")])
    assert "formula-injection" in _rules(r) and r.status == "fail"


def test_negative_number_is_not_a_formula(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,delta_cost\nA,-3.5\nB,12\n")
    assert "formula-injection" not in _rules(r)


def test_subtotals_and_grand_total_do_not_invent_recoveries(tmp_path: Path) -> None:
    text = (
        "region,sex,n\nNord,F,*\nNord,M,*\nNord,Total,40\n"
        "Sud,F,25\nSud,M,30\nSud,Total,55\nAll,All,*\n"
    )
    r = _check(tmp_path, "t.csv", text)
    assert "secondary-suppression" not in _rules(r), r.flags


def test_subtotal_block_recovers_its_own_cell(tmp_path: Path) -> None:
    text = "region,sex,n\nNord,F,*\nNord,M,22\nNord,Total,40\nSud,F,25\nSud,M,30\nSud,Total,55\n"
    r = _check(tmp_path, "t.csv", text)
    (flag,) = [f for f in r.flags if f.rule == "secondary-suppression"]
    assert flag.location["labels"] == {"region": "Nord", "sex": "F"}


def test_leading_run_of_integers_is_a_category_column(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "n_children,count\n0,500\n1,300\n2,40\n3,12\n")
    assert r.status == "pass", r.flags
    # the same numbers as the only column are counts
    r = _check(tmp_path, "u.csv", "count\n0\n1\n2\n3\n")
    assert {f.rule for f in r.flags} == {"zeros", "threshold"}


def test_whole_numbers_written_as_floats_are_counts_and_maybe_amounts(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,x\nA,150.0\nB,3.0\n")
    assert r.status == "fail" and _rules(r) == ["threshold", "no-evidence"]
    assert _rules(_check(tmp_path, "v.csv", "region,x\nA,150.0\nB,30.0\n")) == ["no-evidence"]
    r = _check(tmp_path, "u.csv", "region,x\nA,150\nB,3\n")
    assert _rules(r) == ["threshold"]


def test_lone_dash_marker_is_not_a_formula(tmp_path: Path) -> None:
    r = _check(tmp_path, "t.csv", "region,n\nA,-\nB,20\nC,30\n")
    assert "formula-injection" not in _rules(r) and r.status == "pass", r.flags
