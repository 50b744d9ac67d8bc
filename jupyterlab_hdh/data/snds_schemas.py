"""Registry of the Table Schemas HDH generates, validates and documents.

Owns: loading the shipped SNDS descriptors (with the documented errata), the
mapping from yearly PMSI table names (``T_MCO23B``) to their templates
(``T_MCOaaB``), the Arrow type of each Table Schema type, which columns hold
identifiers to pseudonymise, and the *raw profile* of a table (what a source
extract looks like before pseudonymisation). Pure data code: no I/O beyond the
package's own files.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pyarrow as pa

# defined in the in-sandbox package: the disclosure checks (hdh.disclosure) read them too
from hdh._identifiers import IDENTIFIER_FIELDS as IDENTIFIER_FIELDS

SCHEMA_PACKAGE = "jupyterlab_hdh.data.schemas"

#: Tables of an SNDS-shaped extract, in generation/ingestion order. Yearly PMSI
#: tables (T_MCOyyA/B/C/D) are matched by ``PMSI_TABLE_RE``.
STATIC_TABLES = (
    "IR_BEN_R",
    "IR_PHA_R",
    "ER_PRS_F",
    "ER_PHA_F",
    "ER_CAM_F",
    "IR_IMB_R",
    "KI_CCI_R",
    "HDH_PV_CAS",
    "HDH_DEV_TLM",
)
PMSI_TABLE_RE = re.compile(r"^T_MCO(?P<yy>\d{2})(?P<part>[ABCD])$")

#: Direct identifiers present only in raw extracts, dropped at ingestion
#: (the pseudonymised tables keep the birth year and month already present).
RAW_ONLY_FIELDS: dict[str, tuple[dict[str, Any], ...]] = {
    "IR_BEN_R": (
        {
            "name": "BEN_NAI_DTE",
            "type": "date",
            "description": "Date de naissance complète (identifiant direct, extrait brut)",
        },
    ),
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("s"),
    "boolean": pa.bool_(),
    "year": pa.int32(),
    "yearmonth": pa.string(),
}


class UnknownTableError(KeyError):
    """The table name is not one HDH knows a schema for."""

    def __str__(self) -> str:  # KeyError quotes its argument; say it plainly
        return f"unknown table {self.args[0]!r}: no Table Schema is registered for it"


@dataclass(frozen=True)
class TableName:
    """A concrete table name and the schema template it instantiates."""

    name: str
    template: str
    year: int | None = None


def resolve(name: str) -> TableName:
    """Map a concrete table name to its template (``T_MCO23B`` → ``T_MCOaaB``)."""
    m = PMSI_TABLE_RE.match(name)
    if m:
        return TableName(name, f"T_MCOaa{m['part']}", 2000 + int(m["yy"]))
    if name in STATIC_TABLES:
        return TableName(name, name)
    raise UnknownTableError(name)


def is_known_table(name: str) -> bool:
    try:
        resolve(name)
    except UnknownTableError:
        return False
    return True


@cache
def _errata() -> dict[str, Any]:
    text = resources.files(SCHEMA_PACKAGE).joinpath("errata.json").read_text("utf-8")
    return json.loads(text)


@cache
def _template_descriptor(template: str) -> dict[str, Any]:
    base = resources.files(SCHEMA_PACKAGE)
    for sub in ("snds", "hdh"):
        path = base.joinpath(sub, f"{template}.json")
        if path.is_file():
            descriptor = json.loads(path.read_text("utf-8"))
            break
    else:
        raise UnknownTableError(template)
    for field in descriptor["fields"]:
        fix = _errata().get(template, {}).get(field["name"])
        if fix:
            constraints = field.get("constraints", {})
            for key in fix.get("drop_constraints", ()):
                constraints.pop(key, None)
    return descriptor


def load_schema(name: str) -> dict[str, Any]:
    """The Table Schema descriptor of a concrete table (errata applied), as a fresh copy."""
    table = resolve(name)
    descriptor = copy.deepcopy(_template_descriptor(table.template))
    descriptor["name"] = table.name
    return descriptor


def identifier_fields(name: str) -> tuple[str, ...]:
    return IDENTIFIER_FIELDS.get(resolve(name).template, ())


def raw_schema(name: str) -> dict[str, Any]:
    """The schema of a raw (not yet pseudonymised) extract of ``name``.

    Identifier columns hold direct identifiers, so their length constraints do
    not apply; raw-only direct-identifier columns are appended.
    """
    descriptor = load_schema(name)
    ids = set(identifier_fields(name))
    for field in descriptor["fields"]:
        if field["name"] in ids:
            field["type"] = "string"
            constraints = field.get("constraints", {})
            for key in ("minLength", "maxLength", "pattern"):
                constraints.pop(key, None)
    for extra in RAW_ONLY_FIELDS.get(resolve(name).template, ()):
        descriptor["fields"].append(dict(extra))
    return descriptor


def raw_only_fields(name: str) -> tuple[str, ...]:
    return tuple(f["name"] for f in RAW_ONLY_FIELDS.get(resolve(name).template, ()))


def arrow_type(field: dict[str, Any]) -> pa.DataType:
    """The Arrow type HDH uses for a Table Schema field."""
    try:
        return _ARROW_TYPES[field.get("type", "string")]
    except KeyError:
        raise ValueError(f"unsupported Table Schema type {field.get('type')!r}") from None


def arrow_schema(descriptor: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a Table Schema descriptor (all fields nullable)."""
    return pa.schema([pa.field(f["name"], arrow_type(f)) for f in descriptor["fields"]])


def primary_key(descriptor: dict[str, Any]) -> tuple[str, ...]:
    pk = descriptor.get("primaryKey") or ()
    return (pk,) if isinstance(pk, str) else tuple(pk)


#: The 9 keys joining DCIR claims (ER_PRS_F) to their detail tables, from the schema.
DCIR_KEYS: tuple[str, ...] = primary_key(_template_descriptor("ER_PRS_F"))
#: The keys of a PMSI MCO stay (ETA_NUM + RSA_NUM), joining its A/B/C/D parts.
STAY_KEYS: tuple[str, ...] = primary_key(_template_descriptor("T_MCOaaC"))
