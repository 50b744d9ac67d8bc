"""``hdh.datasets()`` and ``hdh.tables(name)``: what this sandbox can read, as tables.

Owns the listings a researcher starts from: the mounted dataset versions (from ``/data``)
joined with what the project's permit grants (from the control plane through the API
bridge, when it answers), and each table's rows, columns and size (Parquet footers only).
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from hdh._mounts import YEAR_COLUMN, choose_version, data_root, mounted, permitted, refs
from hdh.errors import BadArgument


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def datasets() -> Any:
    """A DataFrame of dataset versions: ``dataset, version, mounted, permitted, tables``.

    ``permitted`` is None when the control plane cannot be asked (outside a sandbox)."""
    here = mounted()
    granted = permitted()
    keys = {(d, v) for d, vs in here.items() for v in vs} | (granted or set())
    rows = []
    for dataset, version in sorted(keys):
        folder = data_root() / dataset / version
        is_mounted = version in here.get(dataset, [])
        rows.append(
            {
                "dataset": dataset,
                "version": version,
                "mounted": is_mounted,
                "permitted": None if granted is None else (dataset, version) in granted,
                "tables": len(list(folder.glob("*.parquet"))) if is_mounted else 0,
            }
        )
    return _frame(rows, ["dataset", "version", "mounted", "permitted", "tables"])


def tables(dataset: str, version: str | None = None) -> Any:
    """A DataFrame of a mounted dataset version's tables: ``table, rows, columns, bytes,
    years`` (a yearly table ``T_MCOaaB`` is listed once more over all its years)."""
    if not isinstance(dataset, str) or not dataset or "." in dataset.strip("."):
        if isinstance(dataset, str) and "." in dataset:
            raise BadArgument(
                f"hdh.tables takes a dataset name such as 'demo-snds', not {dataset!r}"
            )
        raise BadArgument(f"hdh.tables takes a dataset name, not {dataset!r}")
    version = choose_version(dataset, version)
    metas: dict[Any, Any] = {}  # one footer read per file, shared by its yearly table

    def meta(path: Any) -> Any:
        if path not in metas:
            metas[path] = pq.read_metadata(path)
        return metas[path]

    rows = []
    for ref in refs(dataset, version):
        files = [meta(p) for p in ref.files]
        # a yearly table: the union of its years' columns, and year
        names = {n for f in files for n in f.schema.to_arrow_schema().names}
        if ref.yearly:
            names.add(YEAR_COLUMN)
        rows.append(
            {
                "table": ref.table,
                "rows": sum(f.num_rows for f in files),
                "columns": len(names),
                "bytes": sum(p.stat().st_size for p in ref.files),
                "years": list(ref.years) if ref.yearly else None,
            }
        )
    out = _frame(rows, ["table", "rows", "columns", "bytes", "years"])
    out.attrs.update(dataset=dataset, version=version, year_column=YEAR_COLUMN)
    return out
