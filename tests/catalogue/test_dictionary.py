"""Data dictionaries built from the registered Table Schemas, and their CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from jupyterlab_hdh.catalogue.dictionary import CSV_COLUMNS, data_dictionary, dictionary_csv
from jupyterlab_hdh.catalogue.records import TableRecord, VariableRecord
from jupyterlab_hdh.data.snds_schemas import UnknownTableError, load_schema

from . import SNDS_TABLES


@pytest.mark.parametrize("table", SNDS_TABLES + ("T_MCO23D", "T_MCO19B"))
def test_every_field_documented(table: str) -> None:
    try:
        descriptor = load_schema(table)
    except UnknownTableError:
        pytest.skip(f"{table} has no registered schema yet")
    record = data_dictionary(table, row_count=42)
    assert record.name == table
    assert record.rows == 42
    assert record.title == descriptor.get("title", "")
    assert [c.name for c in record.columns] == [f["name"] for f in descriptor["fields"]]
    for column, field in zip(record.columns, descriptor["fields"], strict=True):
        assert column.type == field.get("type", "string")
        assert column.description == (field.get("description") or "").strip()
        assert column.constraints == (field.get("constraints") or {})


def test_primary_key_nomenclature_and_french_text() -> None:
    record = data_dictionary("IR_BEN_R")
    assert record.rows is None
    assert record.primary_key == ("BEN_NIR_PSA", "BEN_RNG_GEM")
    rank = record.column("BEN_RNG_GEM")
    assert rank.nomenclature == "IR_BER_V:BEN_RNG_GEM"
    assert rank.description == "rang de naissance du bénéficiaire"
    assert record.column("BEN_NIR_PSA").nomenclature is None  # "-" in the source
    assert record.column("BEN_NIR_PSA").constraints["minLength"] == 17


def test_foreign_key_targets() -> None:
    record = data_dictionary("ER_PRS_F")
    assert record.column("BEN_NIR_PSA").foreign_key == "IR_BEN_R.BEN_NIR_PSA"
    assert record.column("BEN_RNG_GEM").foreign_key == "IR_BEN_R.BEN_RNG_GEM"
    assert record.column("PFS_EXE_NUM").foreign_key == "DA_PRA_R.PFS_PFS_NUM"
    assert record.column("BEN_AMA_COD").foreign_key is None


def test_yearly_pmsi_table() -> None:
    record = data_dictionary("T_MCO23B")
    assert record.name == "T_MCO23B"
    assert set(record.primary_key) == {"ETA_NUM", "RSA_NUM"}
    assert "DGN_PAL" in {c.name for c in record.columns}


@pytest.mark.parametrize("table", ["NOPE", "ir_ben_r", "T_MCO2B", ""])
def test_unknown_table_raises(table: str) -> None:
    with pytest.raises(UnknownTableError):
        data_dictionary(table)


def test_csv_export_round_trips() -> None:
    record = data_dictionary("ER_PRS_F", row_count=10)
    text = dictionary_csv(record)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == len(record.columns)
    by_name = {row["variable"]: row for row in rows}
    prs = by_name["BEN_NIR_PSA"]
    assert prs["table"] == "ER_PRS_F"
    assert prs["primary_key"] == "false"
    assert prs["foreign_key"] == "IR_BEN_R.BEN_NIR_PSA"
    assert by_name["DCT_ORD_NUM"]["primary_key"] == "true"
    cmu = by_name["BEN_CMU_TOP"]
    assert json.loads(cmu["constraints"]) == record.column("BEN_CMU_TOP").constraints
    assert "bénéficiaire" in by_name["BEN_AMA_COD"]["description"]


def test_csv_neutralises_spreadsheet_formulas() -> None:
    record = TableRecord(
        name="T",
        columns=[VariableRecord(name="A", description='=HYPERLINK("http://x")')],
    )
    row = list(csv.DictReader(io.StringIO(dictionary_csv(record))))[0]
    assert row["description"].startswith("'=")
