"""``mi-pathway``'s headline by hand in DuckDB SQL (``mi_pathway.sql``) over an extract folder.

The independent computation that the tests compare :mod:`hdh.studies.mi_pathway` with, and
the hand-written peer of ``bench_cohort.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SQL = (Path(__file__).resolve().parent / "mi_pathway.sql").read_text()
TABLES = ("ER_PRS_F", "ER_PHA_F", "IR_PHA_R", "IR_BEN_R")


def connect(folder: Path, resident: bool = False) -> Any:
    """A DuckDB connection with the views (or, ``resident``, in-memory tables) the SQL reads."""
    import duckdb

    con = duckdb.connect()
    kind = "TABLE" if resident else "VIEW"
    for part in "BC":
        con.execute(
            f"CREATE {kind} MCO_{part} AS SELECT * FROM read_parquet("
            f"'{folder}/T_MCO*{part}.parquet', union_by_name = true)"
        )
    for table in TABLES:
        con.execute(
            f"CREATE {kind} {table} AS SELECT * FROM read_parquet('{folder}/{table}.parquet')"
        )
    return con


def headline(con: Any) -> dict[str, int]:
    """``n`` and the persons per class, ``any`` and ``all_four``."""
    cur = con.execute(SQL)
    row = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], (int(v) for v in row), strict=True))
