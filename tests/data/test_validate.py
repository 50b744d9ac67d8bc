"""Tests of jupyterlab_hdh.data.validate: conforming reads, each violation rule, and
agreement with frictionless on small good and bad CSV files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyterlab_hdh.data.snds_schemas import arrow_schema, load_schema, raw_schema
from jupyterlab_hdh.data.validate import (
    MAX_VIOLATIONS,
    ValidationError,
    Violation,
    check_foreign_keys,
    read_table,
)

DESC: dict[str, Any] = {
    "name": "TEST_T",
    "missingValues": [""],
    "primaryKey": ["ETA_NUM", "RSA_NUM"],
    "fields": [
        {"name": "ETA_NUM", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "RSA_NUM", "type": "integer"},
        {"name": "NIR", "type": "string", "constraints": {"minLength": 17, "maxLength": 17}},
        {"name": "SEX", "type": "string", "constraints": {"enum": ["1", "2", "9"]}},
        {
            "name": "GHM",
            "type": "string",
            "constraints": {"pattern": "[0-9]{2}[A-Z][0-9]{2}[A-Z0-9]"},
        },
        {"name": "DTD", "type": "date"},
        {"name": "QTE", "type": "number", "constraints": {"minimum": 0, "maximum": 10}},
        {"name": "TOP", "type": "boolean"},
        {"name": "ANN", "type": "year"},
        {"name": "AMD", "type": "yearmonth"},
    ],
}
HEADER = "ETA_NUM,RSA_NUM,NIR,SEX,GHM,DTD,QTE,TOP,ANN,AMD"
GOOD_ROWS = [
    "100000001,1,AAAAAAAAAAAAAAAAA,1,05M09T,2023-01-31,1.5,1,1950,2023-01",
    "100000001,2,BBBBBBBBBBBBBBBBB,2,90Z00Z,2023-02-28,0,false,1980,2023-02",
    "100000002,1,,,,,,,,",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def csv_file(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "t.csv") -> Path:
    return write(tmp_path / name, "\n".join([header, *rows]) + "\n")


def violations(path: Path, descriptor: dict[str, Any] = DESC) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        read_table(path, descriptor)
    return info.value


def pairs(err: ValidationError) -> set[tuple[int | None, str]]:
    return {(v.row, v.rule) for v in err.violations}


# --------------------------------------------------------------------------- good files


def test_good_csv_is_conformed_to_the_arrow_schema(tmp_path: Path) -> None:
    table = read_table(csv_file(tmp_path, GOOD_ROWS), DESC)
    assert table.schema == arrow_schema(DESC)
    rows = table.to_pylist()
    assert rows[0]["ETA_NUM"] == 100000001
    assert rows[0]["DTD"] == dt.date(2023, 1, 31)
    assert rows[0]["TOP"] is True and rows[1]["TOP"] is False
    assert rows[0]["ANN"] == 1950 and rows[0]["AMD"] == "2023-01"
    assert rows[2]["NIR"] is None and rows[2]["QTE"] is None  # "" is a missing value


def test_semicolon_delimiter_bom_quotes_and_column_order(tmp_path: Path) -> None:
    header = "RSA_NUM;ETA_NUM;NIR;SEX;GHM;DTD;QTE;TOP;ANN;AMD"
    row = '7;100000001;"AAAAAAAA;AAAAAAAA";1;05M09T;2023-01-31;2;TRUE;2000;2023-12'
    path = write(tmp_path / "s.csv", "\ufeff" + header + "\n" + row + "\r\n")
    table = read_table(path, DESC)
    assert table.column_names == [f["name"] for f in DESC["fields"]]
    assert table.to_pylist()[0]["NIR"] == "AAAAAAAA;AAAAAAAA"
    assert table.to_pylist()[0]["RSA_NUM"] == 7


def test_header_only_csv_gives_an_empty_table(tmp_path: Path) -> None:
    table = read_table(csv_file(tmp_path, []), DESC)
    assert table.num_rows == 0 and table.schema == arrow_schema(DESC)


def test_parquet_safe_casts(tmp_path: Path) -> None:
    t = pa.table(
        {
            "ETA_NUM": pa.array([100000001, 100000002], pa.int32()),
            "RSA_NUM": pa.array([1.0, 2.0], pa.float64()),
            "NIR": pa.array(["A" * 17, ""]),
            "SEX": pa.array(["1", "2"]).dictionary_encode(),
            "GHM": pa.array([None, None], pa.string()),
            "DTD": pa.array([dt.datetime(2023, 1, 1), None], pa.timestamp("ms")),
            "QTE": pa.array([1, 2], pa.int64()),
            "TOP": pa.array([True, None]),
            "ANN": pa.array([1950, 1960], pa.int64()),
            "AMD": pa.array(["2023-01", None]),
        }
    )
    pq.write_table(t, tmp_path / "t.parquet")
    out = read_table(tmp_path / "t.parquet", DESC)
    assert out.schema == arrow_schema(DESC)
    assert out.column("RSA_NUM").to_pylist() == [1, 2]
    assert out.column("DTD").to_pylist() == [dt.date(2023, 1, 1), None]
    assert out.column("NIR").to_pylist() == ["A" * 17, None]  # missing value in Parquet too


def test_snds_date_formats(tmp_path: Path) -> None:
    desc = {
        "fields": [
            {"name": "D", "type": "date", "format": "%d%m%Y"},
            {"name": "M", "type": "date", "format": "%m"},
            {"name": "T", "type": "datetime", "format": "%d%b%Y:%H:%M:%S"},
            {"name": "I", "type": "datetime"},
        ]
    }
    path = write(
        tmp_path / "d.csv", "D,M,T,I\n31122023,05,01JAN2023:10:20:30,2023-01-01T01:02:03Z\n"
    )
    row = read_table(path, desc).to_pylist()[0]
    assert row == {
        "D": dt.date(2023, 12, 31),
        "M": dt.date(1900, 5, 1),
        "T": dt.datetime(2023, 1, 1, 10, 20, 30),
        "I": dt.datetime(2023, 1, 1, 1, 2, 3),
    }
    bad = write(tmp_path / "b.csv", "D,M,T,I\n31022023,13,32JAN2023:00:00:00,2023-01-01\n")
    err = violations(bad, desc)
    assert {(v.field, v.rule) for v in err.violations} == {
        ("D", "type"),
        ("M", "type"),
        ("T", "type"),
        ("I", "type"),
    }


def test_custom_missing_values_and_boolean_values(tmp_path: Path) -> None:
    desc = {
        "missingValues": ["NA"],
        "fields": [
            {"name": "N", "type": "integer"},
            {"name": "S", "type": "string"},
            {"name": "B", "type": "boolean", "trueValues": ["0"], "falseValues": ["9"]},
        ],
    }
    table = read_table(write(tmp_path / "m.csv", "N,S,B\nNA,,0\n3,NA,9\n"), desc)
    assert table.to_pylist() == [
        {"N": None, "S": "", "B": True},
        {"N": 3, "S": None, "B": False},
    ]
    err = violations(write(tmp_path / "e.csv", "N,S,B\n,x,1\n"), desc)
    assert pairs(err) == {(1, "type")}  # "" is not missing here, so not an integer


def test_real_snds_schemas(tmp_path: Path) -> None:
    for name in ("IR_BEN_R", "T_MCO23C", "ER_PRS_F"):
        desc = load_schema(name)
        header = ",".join(f["name"] for f in desc["fields"])
        table = read_table(write(tmp_path / f"{name}.csv", header + "\n"), desc)
        assert table.schema == arrow_schema(desc)
    raw = raw_schema("IR_BEN_R")
    assert read_table(
        write(tmp_path / "raw.csv", ",".join(f["name"] for f in raw["fields"]) + "\n"), raw
    ).schema == arrow_schema(raw)


# --------------------------------------------------------------------------- bad inputs


def test_truncated_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ETA_NUM": list(range(1000))}), tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: len(data) // 2])
    err = violations(path)
    assert [v.rule for v in err.violations] == ["file-unreadable"]
    assert "Parquet" in str(err) and "Traceback" not in str(err)
    assert str(path) in str(err)


def test_garbage_bytes_named_parquet(tmp_path: Path) -> None:
    path = tmp_path / "garbage.parquet"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    err = violations(path)
    assert err.rules == {"file-unreadable"}
    assert len(str(err).splitlines()) == 2  # one header line, one reason line


def test_empty_files(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.parquet"):
        path = tmp_path / name
        path.write_bytes(b"")
        err = violations(path)
        assert err.rules == {"file-unreadable"}
        assert "empty" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    err = violations(tmp_path / "absent.csv")
    assert err.rules == {"file-unreadable"} and "not found" in str(err)


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tab.csv",
        HEADER.replace(",", "\t") + "\n" + GOOD_ROWS[0].replace(",", "\t") + "\n",
    )
    err = violations(path)
    assert {"missing-column", "extra-column"} <= err.rules
    assert "delimiter must be a comma or a semicolon" in str(err)


def test_ragged_rows(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], "100000003,1", GOOD_ROWS[1] + ",extra", "100000004,1,,,,,,,,,"]
    rows.append("100000005,1,,,,,,,,2023-13")  # after the ragged rows: data row 5
    err = violations(csv_file(tmp_path, rows))
    assert pairs(err) == {(2, "missing-cell"), (3, "extra-cell"), (4, "extra-cell"), (5, "type")}
    msg = str(err)
    assert "row 2" in msg and "[missing-cell]" in msg and "header has 10" in msg


def test_too_many_ragged_rows_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyterlab_hdh.data.validate as validate

    monkeypatch.setattr(validate, "_MAX_RAGGED", 50)
    err = violations(csv_file(tmp_path, ["1,2"] * 200))
    assert err.rules == {"file-unreadable"}
    assert "more than 50 rows do not have the header's 10 cells" in str(err)


def test_wrong_types(tmp_path: Path) -> None:
    rows = [
        "x,1,,,,,,,,",
        "100000001,1.5,,,,,,,,",
        "100000001,2,,,,2023-02-30,,,,",
        "100000001,3,,,,,abc,,,",
        "100000001,4,,,,,,yes,,",
        "100000001,5,,,,,,,50,",
        "100000001,6,,,,,,,,2023-1x",
    ]
    err = violations(csv_file(tmp_path, rows))
    assert pairs(err) == {(i, "type") for i in range(1, 8)}
    first = err.violations[0]
    assert first == Violation(
        str(tmp_path / "t.csv"), 1, "ETA_NUM", "type", "value 'x' is not a valid integer"
    )
    assert "value '2023-02-30' is not a valid date" in str(err)


def test_parquet_wrong_physical_type(tmp_path: Path) -> None:
    t = pa.table(
        {f["name"]: pa.nulls(2, arrow_schema(DESC).field(f["name"]).type) for f in DESC["fields"]}
    )
    t = t.set_column(0, "ETA_NUM", pa.array([100000001, 100000002]))
    t = t.set_column(1, "RSA_NUM", pa.array([1.0, 2.5]))  # 2.5 is not an integer
    t = t.set_column(2, "NIR", pa.array([1, 2]))  # integers where the schema says string
    pq.write_table(t, tmp_path / "p.parquet")
    err = violations(tmp_path / "p.parquet")
    assert pairs(err) == {(None, "type"), (2, "type")}
    assert "column has type int64 in the file, expected string" in str(err)
    assert "value 2.5 is not a valid integer" in str(err)


def test_missing_and_extra_columns(tmp_path: Path) -> None:
    header = HEADER.replace(",QTE", "").replace(",AMD", ",AMD,FOO")
    err = violations(csv_file(tmp_path, [], header=header))
    assert {(v.field, v.rule) for v in err.violations} == {
        ("QTE", "missing-column"),
        ("FOO", "extra-column"),
    }


def test_duplicate_primary_key(tmp_path: Path) -> None:
    rows = [
        "100000001,1,,,,,,,,",
        "100000001,2,,,,,,,,",
        "100000001,1,,,,,,,,",
        "100000002,1,,,,,,,,",
        "100000001,1,,,,,,,,",
        "100000002,1,,,,,,,,",
    ]
    err = violations(csv_file(tmp_path, rows))
    assert pairs(err) == {(3, "primary-key"), (6, "primary-key")}
    assert err.total == 3  # row 5 repeats the key of row 1 as well
    text = str(err)
    assert "duplicate primary key (ETA_NUM=100000001, RSA_NUM=1), already in row 1" in text
    assert "also in rows 5" in text


def test_unique_constraint(tmp_path: Path) -> None:
    desc = {
        "fields": [
            {"name": "K", "type": "string", "constraints": {"unique": True}},
            {"name": "V", "type": "integer"},
        ]
    }
    err = violations(write(tmp_path / "u.csv", "K,V\na,1\nb,2\n,3\n,4\na,5\n"), desc)
    assert pairs(err) == {(5, "unique")}  # nulls (empty) are not duplicates


def test_values_out_of_range_and_constraints(tmp_path: Path) -> None:
    rows = [
        "0,1,AAAAAAAAAAAAAAAAA,1,05M09T,,11,,,",
        "100000001,2,SHORT,3,bad,,-1,,,",
    ]
    err = violations(csv_file(tmp_path, rows))
    assert pairs(err) == {
        (1, "minimum"),
        (1, "maximum"),
        (2, "minLength"),
        (2, "enum"),
        (2, "pattern"),
        (2, "minimum"),
    }
    assert "value 11.0 is above the maximum 10" in str(err)
    assert "value 'SHORT' has 5 characters, at least 17 required" in str(err)


def test_required(tmp_path: Path) -> None:
    err = violations(csv_file(tmp_path, [",1,,,,,,,,"]))
    assert {(v.row, v.field, v.rule) for v in err.violations} == {(1, "ETA_NUM", "required")}


def test_non_utf8_csv(tmp_path: Path) -> None:
    text = (
        HEADER
        + "\n"
        + GOOD_ROWS[0]
        + "\n"
        + GOOD_ROWS[1].replace("BBBBBBBBBBBBBBBBB", "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉ")
        + "\n"
    )
    err = violations(write(tmp_path / "latin1.csv", text, "latin-1"))
    assert pairs(err) == {(2, "file-unreadable")}
    assert "not valid UTF-8" in str(err) and "column NIR" in str(err)
    err = violations(write(tmp_path / "h.csv", "ÉTA_NUM\n1\n", "latin-1"))
    assert err.rules == {"file-unreadable"} and "header" in str(err)


def test_message_names_file_row_and_rule(tmp_path: Path) -> None:
    err = violations(csv_file(tmp_path, ["100000001,1,,4,,,,,,"]))
    line = str(err).splitlines()[1]
    expected = "[enum] value '4' is not one of the allowed values: '1', '2', '9'"
    assert line == f"  - {tmp_path / 't.csv'}, row 1, column SEX: {expected}"


def test_violations_are_capped_but_counted(tmp_path: Path) -> None:
    rows = [f"100000001,{i},,4,,,,,," for i in range(1, 501)]
    err = violations(csv_file(tmp_path, rows))
    assert len(err.violations) == MAX_VIOLATIONS and err.total == 500
    assert f"first {MAX_VIOLATIONS} listed" in str(err)


def test_row_numbers_across_batches(tmp_path: Path) -> None:
    n = 200_000
    eta = np.full(n, "100000001", dtype=object)
    rsa = np.arange(1, n + 1).astype(str).astype(object)
    eta[149_999] = "oops"  # data row 150000
    lines = [f"{a},{b},,,,,,,," for a, b in zip(eta, rsa, strict=True)]
    lines.insert(10, "1,2")  # ragged data row 11 shifts every later row by one
    err = violations(csv_file(tmp_path, lines))
    assert pairs(err) == {(11, "missing-cell"), (150_001, "type")}

    ints = pa.array(np.arange(1, n + 1, dtype=np.int64))
    t = pa.table(
        {f["name"]: pa.nulls(n, arrow_schema(DESC).field(f["name"]).type) for f in DESC["fields"]}
    )
    t = t.set_column(0, "ETA_NUM", pa.array(np.full(n, 100000001)))
    qte = np.zeros(n)
    qte[139_999] = 99.0
    t = t.set_column(1, "RSA_NUM", ints).set_column(6, "QTE", pa.array(qte))
    pq.write_table(t, tmp_path / "big.parquet", row_group_size=50_000)
    err = violations(tmp_path / "big.parquet")
    assert pairs(err) == {(140_000, "maximum")}


def test_foreign_keys() -> None:
    parent = pa.table({"ETA_NUM": [1, 2], "RSA_NUM": [10, 20]})
    b, d = load_schema("T_MCO23B"), load_schema("T_MCO23D")
    child = pa.table({"ETA_NUM": [1, 2, None], "RSA_NUM": [10, 99, None]})
    found = check_foreign_keys(
        {"T_MCO23B": parent, "T_MCO23D": child}, {"T_MCO23B": b, "T_MCO23D": d}
    )
    assert [(v.file, v.row, v.rule) for v in found] == [("T_MCO23D", 2, "foreign-key")]
    assert "T_MCO23B.ETA_NUM+RSA_NUM" in found[0].message


# --------------------------------------------------------------------------- frictionless


FRICTIONLESS_RULES = {
    "type-error": "type",
    "unique-error": "unique",
    "primary-key": "primary-key",
    "missing-label": "missing-column",
    "extra-label": "extra-column",
}

XDESC: dict[str, Any] = {
    "missingValues": [""],
    "primaryKey": ["ID", "SUB"],
    "fields": [
        {"name": "ID", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "SUB", "type": "integer"},
        {"name": "CODE", "type": "string", "constraints": {"enum": ["A", "B"], "minLength": 1}},
        {"name": "NIR", "type": "string", "constraints": {"minLength": 5, "unique": True}},
        {"name": "D", "type": "date"},
        {"name": "X", "type": "number", "constraints": {"minimum": 0, "maximum": 10}},
        {"name": "B", "type": "boolean"},
    ],
}
XCASES = {
    "good": ["1,1,A,AAAAA,2020-01-01,1.5,true", "1,2,B,BBBBB,2020-02-29,,0", "2,,,,,,"],
    "good_semicolon": ["1;1;A;AAAAA;2020-01-01;10;1"],
    "types": ["x,1,A,AAAAA,2020-01-01,1,1", "2,1,A,CCCCC,2020-13-01,y,maybe"],
    "required": [",1,A,AAAAA,,,"],
    "range": ["0,1,A,AAAAA,,-0.5,", "1,1,A,BBBBB,,10.5,"],
    "enum": ["1,1,C,AAAAA,,,"],
    "min_length": ["1,1,A,AAAA,,,"],
    "unique": ["1,1,A,AAAAA,,,", "1,2,A,AAAAA,,,", "1,3,A,,,,"],
    "primary_key": ["1,1,A,,,,", "1,1,B,,,,", "2,1,A,,,,", "2,1,A,,,,"],
    "mixed": ["1,1,A,AAAAA,2020-01-01,1,1", "0,1,Z,AAA,2020-02-30,11,x", "1,1,A,AAAAA,,,"],
}


def _frictionless_pairs(path: Path) -> set[tuple[int | None, str]]:
    from frictionless import Resource, Schema, validate

    resource = Resource(path=path.name, basepath=str(path.parent))
    resource.schema = Schema.from_descriptor(XDESC)
    report = validate(resource)
    out: set[tuple[int | None, str]] = set()
    for row, _field, kind, note in report.flatten(["rowNumber", "fieldName", "type", "note"]):
        # constraint errors carry the constraint in the note: 'constraint "minimum" is "1"'
        rule = note.split('"')[1] if kind == "constraint-error" else FRICTIONLESS_RULES[kind]
        out.add((None if row is None else row - 1, rule))
    return out


@pytest.mark.parametrize("case", sorted(XCASES))
def test_agrees_with_frictionless(tmp_path: Path, case: str) -> None:
    delim = ";" if "semicolon" in case else ","
    header = delim.join(f["name"] for f in XDESC["fields"])
    path = write(tmp_path / f"{case}.csv", "\n".join([header, *XCASES[case]]) + "\n")
    expected = _frictionless_pairs(path)
    try:
        read_table(path, XDESC)
        ours: set[tuple[int | None, str]] = set()
    except ValidationError as err:
        ours = pairs(err)
    assert ours == expected
    assert (not expected) == case.startswith("good")
