"""The catalogue's metadata model: what HDH records about a dataset version.

Owns the pydantic models of a HealthDCAT-AP-style dataset record
(``DatasetRecord``), of its tables (``TableRecord``) and of their variables
(``VariableRecord``), the validation rules on names and values, and the URIs
a record is published under (built from the hub's public base URL). Pure
domain code: no database, no web framework, no I/O.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Dataset names are URL path segments and directory names (``/data/<name>/<version>``).
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: Versions are path segments too: ``2024.1``, ``v3``, ``2025-06-01``.
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
#: Table names as SNDS writes them (``IR_BEN_R``, ``T_MCO23B``).
TABLE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
#: Variable (column) names.
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
#: Deliberately simple: one ``@``, a dotted domain, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

#: Table Schema field types (frictionless) a variable may have.
TableSchemaType = Literal[
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "time",
    "year",
    "yearmonth",
    "duration",
    "object",
    "array",
    "geopoint",
    "geojson",
    "any",
]

AccessRights = Literal["public", "restricted", "non-public"]

#: EU Publications Office access-right authority table (DCAT-AP controlled vocabulary).
ACCESS_RIGHTS_URIS: dict[str, str] = {
    "public": "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
    "restricted": "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    "non-public": "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
}

#: EU data-theme authority table; ``HEAL`` is "Health".
DATA_THEME_BASE = "http://publications.europa.eu/resource/authority/data-theme/"
DATA_THEMES = frozenset(
    {"AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST"}
    | {"OP_DATPRO", "REGI", "SOCI", "TECH", "TRAN"}
)


def normalise_base_url(base_url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", base_url):
        raise ValueError(f"base URL must be an absolute http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Agent(_Model):
    """An organisation acting as publisher / data controller, with a contact e-mail."""

    name: str = Field(min_length=1, max_length=300)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")


class QualitySummary(_Model):
    """The outcome of the ingestion data-quality checks, summarised."""

    passed: int = Field(ge=0)
    failed: int = Field(ge=0)
    summary: str = Field(default="", max_length=2000)

    @property
    def total(self) -> int:
        return self.passed + self.failed


class VariableRecord(_Model):
    """One column of a table, as the data dictionary documents it."""

    name: str = Field(pattern=VARIABLE_NAME_PATTERN)
    type: TableSchemaType = "string"
    description: str = ""
    #: Code list the values come from (SNDS ``nomenclature``), ``None`` when free.
    nomenclature: str | None = None
    #: How a value is written in a CSV file, in words (``DDMMYYYY (e.g. 01032021)``);
    #: empty in records made before HDH documented it.
    csv_format: str = ""
    #: Table Schema constraints (``required``, ``minLength``, ``enum``, ...).
    constraints: dict[str, Any] = Field(default_factory=dict)
    primary_key: bool = False
    #: ``"TABLE.COLUMN"`` this column references, when it is a foreign key.
    foreign_key: str | None = None


class TableRecord(_Model):
    """One table of a dataset version and its columns."""

    name: str = Field(pattern=TABLE_NAME_PATTERN)
    title: str = ""
    description: str = ""
    rows: int | None = Field(default=None, ge=0)
    columns: list[VariableRecord] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _unique_column_names(cls, columns: list[VariableRecord]) -> list[VariableRecord]:
        seen: set[str] = set()
        for column in columns:
            if column.name in seen:
                raise ValueError(f"duplicate column name {column.name!r}")
            seen.add(column.name)
        return columns

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    def column(self, name: str) -> VariableRecord:
        for candidate in self.columns:
            if candidate.name == name:
                return candidate
        raise KeyError(f"table {self.name} has no column {name!r}")


class DatasetRecord(_Model):
    """A dataset version as the catalogue publishes it (HealthDCAT-AP fields).

    Titles and descriptions are in French; the optional ``*_en`` fields carry
    an English translation for the DCAT export.
    """

    name: str = Field(pattern=SLUG_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    title: str = Field(min_length=1, max_length=300)
    title_en: str | None = Field(default=None, max_length=300)
    description: str = Field(min_length=1)
    description_en: str | None = None
    publisher: Agent
    population: str = ""
    temporal_start: date | None = None
    temporal_end: date | None = None
    records: int | None = Field(default=None, ge=0)
    individuals: int | None = Field(default=None, ge=0)
    tables: list[TableRecord] = Field(default_factory=list)
    coding_systems: list[str] = Field(default_factory=list)
    access_rights: AccessRights = "restricted"
    legal_basis: str = ""
    synthetic: bool = False
    quality: QualitySummary | None = None
    keywords: list[str] = Field(default_factory=list)
    #: EU data-theme codes (``HEAL`` = health).
    theme: list[str] = Field(default_factory=lambda: ["HEAL"])
    issued: datetime
    modified: datetime | None = None

    @field_validator("keywords", "coding_systems")
    @classmethod
    def _no_blank_entries(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("entries must not be blank")
        return list(dict.fromkeys(cleaned))  # de-duplicate, keep order

    @field_validator("theme")
    @classmethod
    def _known_themes(cls, themes: list[str]) -> list[str]:
        unknown = [t for t in themes if t not in DATA_THEMES]
        if unknown:
            raise ValueError(f"unknown EU data theme(s) {unknown}; use codes like 'HEAL'")
        return themes

    @field_validator("tables")
    @classmethod
    def _unique_table_names(cls, tables: list[TableRecord]) -> list[TableRecord]:
        names = [t.name for t in tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate table name(s) {duplicates}")
        return tables

    @model_validator(mode="after")
    def _consistent(self) -> DatasetRecord:
        if self.temporal_start and self.temporal_end and self.temporal_end < self.temporal_start:
            raise ValueError("temporal_end is before temporal_start")
        if self.modified is not None and self.modified < self.issued:
            raise ValueError("modified is before issued")
        if (
            self.records is not None
            and self.individuals is not None
            and self.individuals > self.records
        ):
            raise ValueError("individuals cannot exceed records")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """``(name, version)``: what identifies a record in the catalogue."""
        return (self.name, self.version)

    @property
    def access_rights_uri(self) -> str:
        return ACCESS_RIGHTS_URIS[self.access_rights]

    @property
    def theme_uris(self) -> list[str]:
        return [DATA_THEME_BASE + code for code in self.theme]

    def identifier(self, base_url: str) -> str:
        """The persistent URI of this dataset version (also its RDF subject)."""
        return f"{normalise_base_url(base_url)}/id/dataset/{self.name}/{self.version}"

    def landing_page(self, base_url: str) -> str:
        """The public catalogue page of this dataset version."""
        return f"{normalise_base_url(base_url)}/catalogue/{self.name}/{self.version}"

    def table_page(self, base_url: str, table: str) -> str:
        """The catalogue page of one table (its data dictionary)."""
        return f"{self.landing_page(base_url)}/tables/{table}"

    def table(self, name: str) -> TableRecord:
        for candidate in self.tables:
            if candidate.name == name:
                return candidate
        raise KeyError(f"dataset {self.name}/{self.version} has no table {name!r}")
