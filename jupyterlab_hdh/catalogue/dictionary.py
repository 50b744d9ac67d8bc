"""Data dictionaries: a table's documented variables, from its Table Schema.

Owns turning a registered Table Schema descriptor (``jupyterlab_hdh.data``)
into a ``TableRecord`` (every field with its type, the text format a CSV file
must use for it, French description, nomenclature, constraints, primary-key
flag and foreign-key target) and the
CSV export of a dictionary. Pure functions: the only input read is the
package's own schema files, through ``load_schema``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from jupyterlab_hdh.catalogue.records import TableRecord, VariableRecord
from jupyterlab_hdh.data.snds_schemas import UnknownTableError, load_schema
from jupyterlab_hdh.data.validate import text_format

__all__ = ["CSV_COLUMNS", "UnknownTableError", "data_dictionary", "dictionary_csv"]

#: Columns of the CSV export, in order.
CSV_COLUMNS = (
    "table",
    "variable",
    "type",
    "csv_format",
    "description",
    "nomenclature",
    "primary_key",
    "foreign_key",
    "constraints",
)

#: SNDS schemas write "no nomenclature" as "-" (or leave it empty).
_NO_NOMENCLATURE = {"", "-"}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _foreign_key_targets(descriptor: dict[str, Any]) -> dict[str, str]:
    """Map each referencing column to ``"TABLE.COLUMN"`` (first reference wins)."""
    targets: dict[str, str] = {}
    for foreign_key in descriptor.get("foreignKeys") or ():
        fields = _as_list(foreign_key.get("fields", []))
        reference = foreign_key.get("reference") or {}
        resource = reference.get("resource") or descriptor.get("name", "")
        referenced = _as_list(reference.get("fields", []))
        for column, target in zip(fields, referenced, strict=False):
            targets.setdefault(column, f"{resource}.{target}")
    return targets


def _primary_key(descriptor: dict[str, Any]) -> set[str]:
    key = descriptor.get("primaryKey") or []
    return set(_as_list(key))


def _variable(
    field: dict[str, Any], primary: set[str], targets: dict[str, str], missing: list[str]
) -> VariableRecord:
    nomenclature = (field.get("nomenclature") or "").strip()
    constraints = dict(field.get("constraints") or {})
    return VariableRecord(
        name=field["name"],
        type=field.get("type", "string"),
        csv_format=text_format(field, missing),
        description=(field.get("description") or "").strip(),
        nomenclature=None if nomenclature in _NO_NOMENCLATURE else nomenclature,
        constraints=constraints,
        primary_key=field["name"] in primary,
        foreign_key=targets.get(field["name"]),
    )


def data_dictionary(table_name: str, row_count: int | None = None) -> TableRecord:
    """The data dictionary of a registered table.

    Raises ``UnknownTableError`` (a ``KeyError``) when no Table Schema is
    registered for ``table_name``; callers listing optional tables catch it.
    """
    descriptor = load_schema(table_name)
    primary = _primary_key(descriptor)
    targets = _foreign_key_targets(descriptor)
    description = (descriptor.get("observation") or descriptor.get("description") or "").strip()
    return TableRecord(
        name=descriptor.get("name", table_name),
        title=(descriptor.get("title") or "").strip(),
        description=description,
        rows=row_count,
        columns=[
            _variable(f, primary, targets, descriptor.get("missingValues", [""]))
            for f in descriptor.get("fields", [])
        ],
    )


def dictionary_csv(table_record: TableRecord) -> str:
    """The dictionary as CSV (UTF-8 text, header row, ``\\r\\n`` line ends per RFC 4180).

    Constraints are written as compact JSON; booleans as ``true``/``false``.
    Cells that a spreadsheet would run as a formula are prefixed with ``'``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for column in table_record.columns:
        row = (
            table_record.name,
            column.name,
            column.type,
            column.csv_format,
            column.description,
            column.nomenclature or "",
            "true" if column.primary_key else "false",
            column.foreign_key or "",
            json.dumps(column.constraints, ensure_ascii=False, sort_keys=True)
            if column.constraints
            else "",
        )
        writer.writerow([_neutralise_formula(cell) for cell in row])
    return buffer.getvalue()


def _neutralise_formula(cell: str) -> str:
    """Keep spreadsheet software from evaluating a cell (CSV injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell
