"""Write chunk columns as Parquet files with exactly the registered Arrow schemas.

Owns: the conversion of numpy columns to Arrow arrays of the schema's type
(null conventions: ``""`` for strings, NaN for numbers, the ``NEVER`` sentinel
for dates, masked arrays for integers; columns not given are all-null), one
``ParquetWriter`` per table appended chunk by chunk, and row counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jupyterlab_hdh.data.snds_schemas import arrow_schema, load_schema, raw_only_fields, raw_schema

from .population import NEVER

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": True}


def table_schema(name: str, raw: bool) -> pa.Schema:
    return arrow_schema(raw_schema(name) if raw else load_schema(name))


def to_arrow(values: Any, typ: pa.DataType, n: int) -> pa.Array:
    """One column as an Arrow array of ``typ`` (scalars are broadcast)."""
    if isinstance(values, pa.Array):
        return values.cast(typ)
    if np.ndim(values) == 0:
        values = np.full(n, values, dtype=object if isinstance(values, str) else None)
    if isinstance(values, np.ma.MaskedArray):
        return pa.array(np.asarray(values.data), mask=np.ma.getmaskarray(values)).cast(typ)
    values = np.asarray(values)
    if len(values) != n:
        raise ValueError(f"column of length {len(values)} in a table of {n} rows")
    if pa.types.is_date32(typ) or pa.types.is_timestamp(typ):
        days = values.astype(np.int64)
        mask = days >= NEVER
        if pa.types.is_date32(typ):
            return pa.array(days.astype("datetime64[D]"), mask=mask, type=typ)
        return pa.array((days * 86_400).astype("datetime64[s]"), mask=mask, type=typ)
    if pa.types.is_string(typ):
        obj = values.astype(object)
        mask = (obj == "") | (obj == None)  # noqa: E711 - elementwise comparison
        return pa.array(obj, mask=mask, type=typ)
    if pa.types.is_floating(typ):
        return pa.array(values.astype(np.float64), type=typ, from_pandas=True)
    return pa.array(values, type=typ)


def arrow_table(schema: pa.Schema, columns: dict[str, Any]) -> pa.Table:
    lengths = {np.size(v) if not isinstance(v, pa.Array) else len(v) for v in columns.values()}
    lengths.discard(1)
    n = lengths.pop() if lengths else (1 if columns else 0)
    if lengths:
        raise ValueError("columns of different lengths")
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise KeyError(f"columns not in the schema: {sorted(unknown)}")
    arrays = [
        to_arrow(columns[f.name], f.type, n) if f.name in columns else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class ExtractWriter:
    """One Parquet file per table, written chunk by chunk."""

    def __init__(self, out_dir: Path, tables: list[str], raw: bool) -> None:
        self.out_dir = out_dir
        self.raw = raw
        self.schemas = {name: table_schema(name, raw) for name in tables}
        self.rows = dict.fromkeys(tables, 0)
        self._writers = {
            name: pq.ParquetWriter(out_dir / f"{name}.parquet", schema, **PARQUET_OPTIONS)
            for name, schema in self.schemas.items()
        }

    def write(self, name: str, columns: dict[str, Any], n: int | None = None) -> None:
        schema = self.schemas[name]
        if not self.raw:  # direct identifiers exist only in raw extracts
            dropped = set(raw_only_fields(name))
            columns = {k: v for k, v in columns.items() if k not in dropped}
        table = arrow_table(schema, columns)
        if n is not None and table.num_rows != n:  # pragma: no cover - internal check
            raise AssertionError(name)
        if table.num_rows:
            self._writers[name].write_table(table)
            self.rows[name] += table.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
