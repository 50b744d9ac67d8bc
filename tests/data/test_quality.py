"""Tests of jupyterlab_hdh.data.quality on hand-built Parquet extracts whose violating
rows are known, the threshold edge case, control-file errors, and (when the synthetic
generator is available) an end-to-end run on a generated extract."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyterlab_hdh.data.quality import (
    DEFAULT_CHECKS,
    QualityControlError,
    load_checks,
    quality_report,
)
from jupyterlab_hdh.data.snds_schemas import load_schema, raw_schema, resolve
from jupyterlab_hdh.data.validate import read_table

D = dt.date
T = dt.datetime
KEYS = {
    "FLX_DIS_DTD": D(2022, 1, 1),
    "FLX_EMT_NUM": 1,
    "FLX_EMT_ORD": 0,
    "FLX_EMT_TYP": 1,
    "FLX_TRT_DTD": D(2022, 1, 1),
    "ORG_CLE_NUM": "01M000000",
    "PRS_ORD_NUM": 1,
    "REM_TYP_AFF": 1,
}


def _dcir_keys(n: int) -> dict[str, list[Any]]:
    return {"DCT_ORD_NUM": list(range(1, n + 1)), **{k: [v] * n for k, v in KEYS.items()}}


def _write(out: Path, name: str, columns: dict[str, list[Any]]) -> Path:
    """Write ``columns`` with the Arrow types of the table's schema."""
    schema = {f["name"]: f for f in load_schema(name)["fields"]}
    from jupyterlab_hdh.data.snds_schemas import arrow_type

    table = pa.table({c: pa.array(v, arrow_type(schema[c])) for c, v in columns.items()})
    path = out / f"{name}.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture
def extract(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["IR_BEN_R"] = _write(
        tmp_path,
        "IR_BEN_R",
        {
            "BEN_NIR_PSA": ["P1", "P2", "P3", None, "P5"],
            "BEN_RNG_GEM": [1, 1, 1, 1, 1],
            "BEN_IDT_ANO": ["I1", "I2", "I3", "I4", None],
            "BEN_NAI_ANN": [1950, 1899, 2090, 1980, 1985],
            "BEN_SEX_COD": [1, 2, 2, 1, 2],
            "BEN_DCD_DTE": [None, D(2022, 6, 1), None, None, D(1600, 1, 1)],
        },
    )
    prs = _dcir_keys(6)
    prs["FLX_DIS_DTD"] = [
        D(2022, 2, 1),
        D(2022, 8, 1),
        D(2022, 4, 15),  # before care start
        D(2022, 1, 5),
        D(2022, 3, 10),
        D(2022, 1, 2),
    ]
    prs.update(
        {
            "BEN_NIR_PSA": ["P1", "P2", "P2", "PX", "P1", None],
            "BEN_RNG_GEM": [1, 1, 1, 1, 2, 1],
            "EXE_SOI_DTD": [
                D(2022, 1, 10),
                D(2022, 7, 1),  # after death of P2
                D(2022, 5, 1),
                None,
                D(2022, 3, 1),
                D(2022, 1, 1),
            ],
            "EXE_SOI_DTF": [
                D(2022, 1, 10),
                D(2022, 7, 1),
                D(2022, 4, 1),  # before start
                D(2022, 1, 1),
                D(2022, 3, 1),
                D(2022, 1, 1),
            ],
            "BEN_SEX_COD": [1, 2, 2, 1, 1, 2],
        }
    )
    files["ER_PRS_F"] = _write(tmp_path, "ER_PRS_F", prs)
    cam = _dcir_keys(3)
    cam["FLX_DIS_DTD"] = prs["FLX_DIS_DTD"][:3]
    cam["CAM_PRS_IDE"] = ["QEQK004", "QEQK004", "YYYY010"]
    files["ER_CAM_F"] = _write(tmp_path, "ER_CAM_F", cam)
    files["ER_PHA_F"] = _write(
        tmp_path,
        "ER_PHA_F",
        {
            "PHA_PRS_C13": [3400000000001, 3400000000002, 3400000000099, None],
            "PHA_ACT_QSN": [1, -11, 31, 5],
        },
    )
    files["IR_PHA_R"] = _write(
        tmp_path,
        "IR_PHA_R",
        {"PHA_CIP_C13": [3400000000001, 3400000000002], "PHA_ATC_C07": ["B01AC06", "B01AC6"]},
    )
    files["T_MCO22B"] = _write(
        tmp_path,
        "T_MCO22B",
        {
            "ETA_NUM": [100000001] * 4,
            "RSA_NUM": [1000000001, 1000000002, 1000000003, 1000000004],
            "DGN_PAL": ["I21000", "C509", "C50", "I21.0"],
            "GRG_GHM": ["05M09T", "90Z00Z", "09M05T", "05M09T"],
            "COD_SEX": ["1", "1", "2", "2"],
            "SEJ_NBJ": [3, 0, 5, 2],
        },
    )
    files["T_MCO22C"] = _write(
        tmp_path,
        "T_MCO22C",
        {
            "ETA_NUM": [100000001] * 4,
            "RSA_NUM": [1000000001, 1000000002, 1000000003, 1000000004],
            "NIR_ANO_17": ["P1", "P2", "P3", None],
            "EXE_SOI_DTD": [T(2022, 1, 1), T(2022, 6, 5), T(2022, 2, 1), None],
            "EXE_SOI_DTF": [T(2022, 1, 4), T(2022, 6, 5), T(2022, 2, 3), None],
            "NIR_RET": [False, True, False, False],  # boolean: '0' reads as False
            "SEJ_RET": [True, True, False, True],  # trueValues ['0']: '0' reads as True
            "DAT_RET": ["0", "0", "0", "0"],
            "NAI_RET": ["0", "0", "0", "0"],
        },
    )
    files["T_MCO23B"] = _write(
        tmp_path,
        "T_MCO23B",
        {
            "ETA_NUM": [100000001],
            "RSA_NUM": [1000000001],
            "DGN_PAL": ["A01"],
            "GRG_GHM": ["01M01A"],
            "COD_SEX": ["2"],
            "SEJ_NBJ": [1],
        },
    )
    return files


#: (check_id, table) → (violated, denominator); None = not applicable (table absent)
EXPECTED: dict[tuple[str, str], tuple[int, int] | None] = {
    ("ben_nir_psa_not_null", "IR_BEN_R"): (1, 5),
    ("ben_idt_ano_not_null", "IR_BEN_R"): (1, 5),
    ("prs_ben_nir_psa_not_null", "ER_PRS_F"): (1, 6),
    ("mco_nir_ano_17_not_null", "T_MCO22C"): (1, 4),
    ("mco_dgn_pal_icd10", "T_MCO22B"): (1, 4),
    ("mco_dgn_pal_icd10", "T_MCO23B"): (0, 1),
    ("mco_ass_dgn_icd10", "T_MCOaaD"): None,
    ("pha_atc_c07_format", "IR_PHA_R"): (1, 2),
    ("pha_prs_c13_in_ir_pha_r", "ER_PHA_F"): (1, 3),
    ("mco_return_codes", "T_MCO22C"): (2, 4),
    ("prs_care_date_not_null", "ER_PRS_F"): (1, 6),
    ("mco_care_date_not_null", "T_MCO22C"): (1, 4),
    ("prs_beneficiary_known", "ER_PRS_F"): (2, 5),
    ("mco_ghm_error_stays", "T_MCO22B"): (1, 4),
    ("mco_ghm_error_stays", "T_MCO23B"): (0, 1),
    ("ben_birth_year_plausible", "IR_BEN_R"): (2, 5),
    ("prs_care_start_before_end", "ER_PRS_F"): (1, 5),
    ("mco_stay_start_before_end", "T_MCO22C"): (0, 3),
    ("prs_no_care_after_death", "ER_PRS_F"): (1, 2),
    ("mco_no_stay_after_death", "T_MCO22C"): (1, 1),
    ("mco_breast_cancer_in_men", "T_MCO22B"): (1, 2),
    ("mco_breast_cancer_in_men", "T_MCO23B"): (0, 0),
    ("prs_mammography_in_men", "ER_CAM_F"): (1, 2),
    ("mco_stay_length_consistent", "T_MCO22B"): (1, 3),
    ("mco_stay_length_consistent", "T_MCO23B"): None,  # T_MCO23C absent
    ("pha_boxes_plausible", "ER_PHA_F"): (2, 4),
    ("prs_feed_after_care", "ER_PRS_F"): (1, 5),
}


def test_report_counts_every_violation(extract: dict[str, Path]) -> None:
    report = quality_report(extract)
    got = {(c["check_id"], c["table"]): c for c in report["checks"]}
    assert set(got) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        res = got[key]
        if expected is None:
            assert res["status"] == "not_applicable", key
            assert res["violated"] is None and "absent" in res["message"], key
            continue
        violated, denominator = expected
        assert (res["violated"], res["denominator"]) == expected, key
        if denominator == 0:
            assert res["status"] == "not_applicable", key
            continue
        pct = 100 * violated / denominator
        assert res["pct"] == pytest.approx(pct, abs=1e-4), key
        assert res["status"] == ("passed" if pct <= res["threshold_pct"] else "failed"), key
    assert sum(report["summary"].values()) == len(report["checks"])
    assert report["summary"]["error"] == 0


def test_report_is_json_and_deterministic(extract: dict[str, Path]) -> None:
    a, b = quality_report(extract), quality_report(dict(reversed(list(extract.items()))))
    json.dumps(a)
    assert a["checks"] == b["checks"]
    order = [c.check_id for c in load_checks()]
    ids = [c["check_id"] for c in a["checks"]]
    assert sorted(ids, key=order.index) == ids
    keys = {
        "check_id",
        "category",
        "subcategory",
        "table",
        "field",
        "description",
        "violated",
        "denominator",
        "pct",
        "threshold_pct",
        "status",
    }
    assert all(keys <= set(c) for c in a["checks"])
    assert set(a["summary"]) == {"passed", "failed", "not_applicable", "error"}


HEADER = "check_id,check,category,subcategory,table,field,param,description,threshold_pct"


def _control(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "checks.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_threshold_edge_pct_equal_to_threshold_passes(
    extract: dict[str, Path], tmp_path: Path
) -> None:
    control = _control(
        tmp_path,
        "ghm_at,like,completeness,value,T_MCOaaB,GRG_GHM,90%,GHM 90 at threshold,25",
        "ghm_below,like,completeness,value,T_MCOaaB,GRG_GHM,90%,GHM 90 below threshold,24.99",
        "ben_third,not_null,conformance,relational,IR_BEN_R,BEN_IDT_ANO,,one in five,20",
    )
    report = quality_report(
        {"T_MCO22B": extract["T_MCO22B"], "IR_BEN_R": extract["IR_BEN_R"]}, control
    )
    status = {(c["check_id"], c["table"]): (c["pct"], c["status"]) for c in report["checks"]}
    assert status[("ghm_at", "T_MCO22B")] == (25.0, "passed")
    assert status[("ghm_below", "T_MCO22B")] == (25.0, "failed")
    assert status[("ben_third", "IR_BEN_R")] == (20.0, "passed")
    assert report["summary"] == {"passed": 2, "failed": 1, "not_applicable": 0, "error": 0}


def test_missing_column_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "ER_PRS_F", {"EXE_SOI_DTD": [D(2022, 1, 1)]})
    control = _control(
        tmp_path, "order,date_order,plausibility,temporal,ER_PRS_F,EXE_SOI_DTD,EXE_SOI_DTF,x,0"
    )
    (res,) = quality_report({"ER_PRS_F": path}, control)["checks"]
    assert res["status"] == "error" and "EXE_SOI_DTF" in res["message"]


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("a,nonsense,conformance,value,IR_BEN_R,BEN_NAI_ANN,,x,0", "unknown check type 'nonsense'"),
        ("a,not_null,conformity,value,IR_BEN_R,BEN_NAI_ANN,,x,0", "unknown category"),
        ("a,not_null,conformance,value,IR_BEN_R,BEN_NAI_ANN,,x,abc", "not a number"),
        ("a,not_null,conformance,value,IR_BEN_R,BEN_NAI_ANN,,x,150", "between 0 and 100"),
        ("a,not_null,conformance,value,NO_SUCH,BEN_NAI_ANN,,x,0", "unknown table 'NO_SUCH'"),
        ("a,not_null,conformance,value,IR_BEN_R,NOPE,,x,0", "no column 'NOPE'"),
        ("a,regex,conformance,value,T_MCOaaB,DGN_PAL,^[A-Z]{0,3}$,x,0", "cells, the header has"),
        ("a,range,plausibility,atemporal,IR_BEN_R,BEN_NAI_ANN,1900-2000,x,0", "LOW..HIGH"),
        ("a,regex,conformance,value,T_MCOaaB,DGN_PAL,([,x,0", "invalid param for regex"),
    ],
)
def test_control_file_errors_name_the_line(tmp_path: Path, row: str, needle: str) -> None:
    ok = "ok,not_null,conformance,value,IR_BEN_R,BEN_NIR_PSA,,fine,0"
    control = _control(tmp_path, ok, row)
    with pytest.raises(QualityControlError) as info:
        quality_report({}, control)
    message = str(info.value)
    assert f"{control} line 3" in message and needle in message


def test_control_file_header_and_duplicates(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("check_id,table\n", encoding="utf-8")
    with pytest.raises(QualityControlError, match=r"line 1: header lacks column\(s\) check, "):
        load_checks(bad)
    row = "dup,not_null,conformance,value,IR_BEN_R,BEN_NIR_PSA,,x,0"
    with pytest.raises(QualityControlError, match="line 3: check_id 'dup' already used on line 2"):
        load_checks(_control(tmp_path, row, row))


def test_shipped_control_file_is_valid() -> None:
    checks = load_checks(DEFAULT_CHECKS)
    assert {c.category for c in checks} == {"conformance", "completeness", "plausibility"}
    assert len({c.check_id for c in checks}) == len(checks)


def test_absent_tables_are_not_applicable() -> None:
    report = quality_report({})
    assert report["summary"]["not_applicable"] == len(load_checks())
    assert all(c["status"] == "not_applicable" for c in report["checks"])


# --------------------------------------------------------------------------- integration


def _generator() -> Any:
    synth = pytest.importorskip("jupyterlab_hdh.data.synth")
    generate = getattr(synth, "generate", None)
    if generate is None:
        pytest.skip("jupyterlab_hdh.data.synth.generate is not available yet")
    return generate


@pytest.mark.parametrize("raw", [False, True])
def test_generated_extract_validates_and_gets_a_report(tmp_path: Path, raw: bool) -> None:
    generate = _generator()
    generate(tmp_path, patients=60, seed=7, raw=raw)
    files = {p.stem: p for p in sorted(tmp_path.glob("*.parquet"))}
    assert files
    for name, path in files.items():
        descriptor = raw_schema(name) if raw else load_schema(name)
        table = read_table(path, descriptor)
        assert table.num_rows == pq.ParquetFile(path).metadata.num_rows, name
    if raw:
        return
    report = quality_report(files)
    assert report["summary"]["error"] == 0, [c for c in report["checks"] if c["status"] == "error"]
    applicable = {c["table"] for c in report["checks"] if c["status"] != "not_applicable"}
    assert applicable <= set(files)
    assert {resolve(n).template for n in files} & {"IR_BEN_R", "ER_PRS_F"}


def _generated_report(tmp_path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    generate = _generator()
    generate(tmp_path, patients=400, seed=11)
    files = {p.stem: p for p in sorted(tmp_path.glob("*.parquet"))}
    manifest = json.loads((tmp_path / "extract.json").read_text("utf-8"))
    return quality_report(files), manifest.get("dirty_cases", {})


def _total(report: dict[str, Any], check_id: str) -> int:
    return sum(c["violated"] or 0 for c in report["checks"] if c["check_id"] == check_id)


def test_generated_dirty_cases_are_found(tmp_path: Path) -> None:
    report, dirty = _generated_report(tmp_path)
    for check_id, key in [
        ("prs_no_care_after_death", "care_after_death_injected"),
        ("mco_ghm_error_stays", "error_stays_grg_ghm_90"),
    ]:
        if key not in dirty:
            pytest.skip(f"generator does not report {key}")
        assert _total(report, check_id) == dirty[key], check_id


def test_generated_return_codes_follow_the_schema(tmp_path: Path) -> None:
    """The schema reads SEJ_RET '0' (OK) as true (trueValues ['0'], falseValues ['9'])."""
    report, dirty = _generated_report(tmp_path)
    if "stays_bad_linkage_return_codes" not in dirty:
        pytest.skip("generator does not report stays_bad_linkage_return_codes")
    assert _total(report, "mco_return_codes") == dirty["stays_bad_linkage_return_codes"]
