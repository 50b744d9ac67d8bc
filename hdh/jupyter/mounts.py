"""What is mounted in this sandbox: dataset versions under ``/data`` and their tables.

Pure file-system code (no Tornado): reads directory names and Parquet footers
only, never table data. ``HDH_DATA_ROOT`` overrides ``/data`` (tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from hdh._mounts import DATA_ROOT_ENV, data_root

__all__ = ["DATA_ROOT_ENV", "data_root", "list_mounts"]


def _table(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"table": path.stem, "file": path.name, "bytes": path.stat().st_size}
    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # a damaged file is reported, not fatal
        entry["error"] = f"unreadable Parquet footer: {type(exc).__name__}"
        return entry
    entry["rows"] = meta.num_rows
    entry["columns"] = [meta.schema.column(i).name for i in range(meta.num_columns)]
    return entry


def list_mounts(root: Path | None = None) -> list[dict[str, Any]]:
    """``[{dataset, version, path, tables: [{table, file, bytes, rows, columns}]}]``, sorted."""
    base = root or data_root()
    if not base.is_dir():
        return []
    out = []
    for dataset in sorted(p for p in base.iterdir() if p.is_dir()):
        for version in sorted(p for p in dataset.iterdir() if p.is_dir()):
            out.append(
                {
                    "dataset": dataset.name,
                    "version": version.name,
                    "path": str(version),
                    "tables": [_table(f) for f in sorted(version.glob("*.parquet"))],
                }
            )
    return out
