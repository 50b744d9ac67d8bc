"""CSV as spreadsheets and R really write it: `;` and tab separators, decimal commas, quoting,
a byte-order mark, R's row-name column, whole counts written as ``3.0``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdh.disclosure import CheckInput, FileReport, check_files


def _check(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> FileReport:
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    (report,) = check_files([CheckInput(p, name, "output")])
    return report


def _rules(report: FileReport) -> list[str]:
    return [f.rule for f in report.flags]


@pytest.mark.parametrize(
    "text",
    [
        "groupe;effectif\nA;3\nB;230\n",  # R write.csv2, French Excel
        "groupe\teffectif\nA\t3\nB\t230\n",  # tab-separated .csv
        '"groupe";"effectif"\n"A";3\n"B";230\n',  # quoted
        "\ufeffgroupe;effectif\r\nA;3\r\nB;230\r\n",  # Excel: BOM and CRLF
        "groupe|effectif\nA|3\nB|230\n",  # some SAS and database exports
        "groupe,effectif\nA,3\nB,230\n",  # the plain case, for reference
    ],
)
def test_small_count_is_found_whatever_the_dialect(tmp_path: Path, text: str) -> None:
    r = _check(tmp_path, text)
    assert r.status == "fail", r.flags
    (flag,) = r.flags
    assert flag.rule == "threshold"
    assert flag.location == {"row": 1, "column": "effectif", "labels": {"groupe": "A"}}


def test_utf16_tab_export_is_read(tmp_path: Path) -> None:
    # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    r = _check(tmp_path, "groupe\teffectif\r\nA\t3\r\nB\t230\r\n".encode("utf-16"))
    assert _rules(r) == ["threshold"], r.flags


def test_decimal_commas_are_numbers(tmp_path: Path) -> None:
    r = _check(tmp_path, "groupe;taux\nA;3,5\nB;4,25\n")
    assert r.status == "review" and _rules(r) == ["no-evidence"], r.flags
    r = _check(tmp_path, "groupe\teffectif\ttaux\nA\t3\t0,5\nB\t230\t1,5\n", "u.csv")
    assert r.status == "fail" and _rules(r) == ["threshold", "no-evidence"], r.flags
    assert r.flags[0].location["column"] == "effectif"


def test_decimal_comma_file_with_a_small_count_fails(tmp_path: Path) -> None:
    r = _check(tmp_path, "sexe;effectif;cout_moyen\nF;4;12,5\nM;120;13,25\n")
    assert [(f.rule, f.location.get("column")) for f in r.flags] == [
        ("threshold", "effectif"),
        ("no-evidence", "cout_moyen"),
    ]


def test_french_thousands_separators_are_numbers(tmp_path: Path) -> None:
    r = _check(tmp_path, "groupe;effectif\nA;1 234\nB;5\u00a0678\nC;7\n")
    assert _rules(r) == ["threshold"], r.flags
    assert r.flags[0].location["labels"] == {"groupe": "C"}


def test_quoted_comma_in_a_label_is_not_a_separator(tmp_path: Path) -> None:
    r = _check(tmp_path, 'region,count\n"Nord, Pas-de-Calais",120\n"Sud, Est",4\n')
    assert _rules(r) == ["threshold"], r.flags
    assert r.flags[0].location["labels"] == {"region": "Sud, Est"}


@pytest.mark.parametrize(
    "text",
    [
        "groupe;effectif\nA 3\nB 230\n",  # a header split by ';', rows by spaces
        "groupe\teffectif\nA 3\nB 230\n",
    ],
)
def test_one_column_whose_header_holds_a_separator_is_unreadable(tmp_path: Path, text: str) -> None:
    r = _check(tmp_path, text)
    assert r.status == "fail"
    (flag,) = r.flags
    assert flag.rule == "unreadable" and "separator" in flag.message, flag.message


def test_a_real_one_column_table_is_still_checked(tmp_path: Path) -> None:
    r = _check(tmp_path, "effectif\n3\n230\n")
    assert _rules(r) == ["threshold"]


def test_r_row_names_are_an_index_not_counts(tmp_path: Path) -> None:
    # write.csv(df): a first column with an empty header holding 1..n
    r = _check(tmp_path, '"","groupe","effectif"\n"1","A",30\n"2","B",230\n')
    assert r.status == "pass", r.flags
    r = _check(tmp_path, '"","groupe","effectif"\n"1","A",3\n"2","B",230\n', "u.csv")
    assert _rules(r) == ["threshold"]
    assert r.flags[0].location["column"] == "effectif"
    # a single row; and pandas' to_csv index (0..n-1)
    assert _check(tmp_path, '"","effectif"\n"1",30\n', "v.csv").status == "pass"
    assert _check(tmp_path, ",groupe,effectif\n0,A,30\n1,B,40\n", "w.csv").status == "pass"


def test_an_unnamed_first_column_of_other_numbers_is_still_a_count(tmp_path: Path) -> None:
    r = _check(tmp_path, ",groupe\n4,A\n7,B\n")
    assert r.status == "fail" and set(_rules(r)) == {"threshold"}


def test_whole_counts_written_as_floats_are_counts(tmp_path: Path) -> None:
    # pandas writes an integer column with a missing value as floats: 3.0
    r = _check(tmp_path, "groupe,effectif\nA,30.0\nB,3.0\nC,\n")
    assert r.status == "fail" and _rules(r) == ["threshold"], r.flags
    assert r.flags[0].message == "count 3 is below the threshold 10"
    assert _check(tmp_path, "groupe;effectif\nA;30,0\nB;230,0\n", "u.csv").status == "pass"
    # not named like a count: checked as counts, and reviewed as possible whole amounts
    r = _check(tmp_path, "groupe,x\nA,30.0\nB,3.0\n", "x.csv")
    assert _rules(r) == ["threshold", "no-evidence"], r.flags
    assert "written as decimals" in r.flags[1].message
    # named like an amount, or not whole: magnitudes as before
    assert _rules(_check(tmp_path, "groupe,montant\nA,30.0\nB,3.0\n", "v.csv")) == ["no-evidence"]
    assert _rules(_check(tmp_path, "groupe,x\nA,30.5\nB,3.0\n", "w.csv")) == ["no-evidence"]
