"""The metadata model: validation rules and published URIs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from jupyterlab_hdh.catalogue.records import (
    ACCESS_RIGHTS_URIS,
    Agent,
    DatasetRecord,
    TableRecord,
    VariableRecord,
)

from . import BASE_URL, CNAM, sample_records


def minimal(**overrides: Any) -> DatasetRecord:
    fields: dict[str, Any] = dict(
        name="demo",
        version="1",
        title="Démo",
        description="Jeu de démonstration",
        publisher=CNAM,
        issued=datetime(2024, 1, 1, tzinfo=UTC),
    )
    fields.update(overrides)
    return DatasetRecord(**fields)


@pytest.mark.parametrize("name", ["a", "snds", "snds-synth_2024", "0abc", "a" * 63])
def test_slug_names_accepted(name: str) -> None:
    assert minimal(name=name).name == name


@pytest.mark.parametrize(
    "name", ["", "-abc", "_abc", "SNDS", "a b", "a/b", "../etc", "é", "a" * 64, "a.b"]
)
def test_bad_slug_names_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        minimal(name=name)


@pytest.mark.parametrize("version", ["", "../1", "1/2", "v 1", "x" * 33])
def test_bad_versions_rejected(version: str) -> None:
    with pytest.raises(ValidationError):
        minimal(version=version)


def test_defaults_are_restricted_health_data() -> None:
    record = minimal()
    assert record.access_rights == "restricted"
    assert record.access_rights_uri == ACCESS_RIGHTS_URIS["restricted"]
    assert record.access_rights_uri.endswith("/access-right/RESTRICTED")
    assert record.theme_uris == ["http://publications.europa.eu/resource/authority/data-theme/HEAL"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"temporal_start": date(2024, 1, 1), "temporal_end": date(2023, 1, 1)}, "temporal_end"),
        ({"modified": datetime(2023, 1, 1, tzinfo=UTC)}, "modified"),
        ({"records": 10, "individuals": 11}, "individuals"),
        ({"records": -1}, "greater than or equal"),
        ({"theme": ["HEALTH"]}, "data theme"),
        ({"access_rights": "open"}, "access_rights"),
        ({"keywords": ["ok", "  "]}, "blank"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_inconsistent_records_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        minimal(**overrides)


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "a b@c.fr", "a@@b.fr"])
def test_bad_contact_email_rejected(email: str) -> None:
    with pytest.raises(ValidationError):
        Agent(name="X", email=email)


def test_duplicate_tables_and_columns_rejected() -> None:
    column = VariableRecord(name="A", type="string")
    with pytest.raises(ValidationError, match="duplicate column"):
        TableRecord(name="T", columns=[column, column])
    with pytest.raises(ValidationError, match="duplicate table"):
        minimal(tables=[TableRecord(name="T"), TableRecord(name="T")])


def test_keywords_deduplicated_in_order() -> None:
    assert minimal(keywords=["b", "a", "b"]).keywords == ["b", "a"]


def test_uris_built_from_base_url() -> None:
    record = minimal(name="snds", version="2024.1")
    for base in (BASE_URL, BASE_URL.rstrip("/")):
        assert record.identifier(base) == "https://hdh.example.org/id/dataset/snds/2024.1"
        assert record.landing_page(base) == "https://hdh.example.org/catalogue/snds/2024.1"
    assert record.table_page(BASE_URL, "IR_BEN_R").endswith(
        "/catalogue/snds/2024.1/tables/IR_BEN_R"
    )
    with pytest.raises(ValueError, match="absolute http"):
        record.identifier("hdh.example.org")


def test_records_are_immutable_and_serialisable() -> None:
    record = sample_records()[0]
    with pytest.raises(ValidationError):
        record.title = "changed"  # type: ignore[misc]
    again = DatasetRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert again.table("IR_BEN_R").primary_key == ("BEN_NIR_PSA", "BEN_RNG_GEM")
    with pytest.raises(KeyError):
        again.table("NOPE")
