"""The template studies' headlines written by hand in DuckDB SQL (``bench/<study>.sql``).

The independent computations that the tests compare :mod:`hdh.studies` with, and the
hand-written peers of ``bench_cohort.py``. :func:`connect` makes a view (or, ``resident``,
an in-memory table) per table of an extract folder, the yearly PMSI tables as one each
over their years (``MCO_A``, ``MCO_B``…), and the clean DCIR lines the studies share
(``DISPENSED``, ``CAM_ACTS``: ``clean_dcir.sql``) and linked MCO stays (``MCO_C_LINKED``:
``clean_pmsi.sql``); :func:`run` runs ``bench/<study>.sql`` with its
named parameters (``$name``) and returns its one row.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_YEARLY = re.compile(r"T_MCO\d\d([A-Z]+)")
_DCIR = ("ER_PRS_F", "ER_PHA_F", "ER_CAM_F", "IR_PHA_R", "IR_BEN_R")
_READ = {*_DCIR, "HDH_PV_CAS"}  # besides the yearly PMSI tables


def connect(folder: Path, resident: bool = False) -> Any:
    """A DuckDB connection over the extract in ``folder``. ``resident`` loads into memory only
    the tables the studies read (the whole extract of 1 M patients does not fit)."""
    import duckdb

    con = duckdb.connect()
    # spill into the system's temporary folder, not a .tmp/ in the current one (the checkout)
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/hdh-duckdb-spill'")
    kind = "TABLE" if resident else "VIEW"
    parts = sorted(
        {m[1] for p in folder.glob("T_MCO*.parquet") if (m := _YEARLY.fullmatch(p.stem))}
    )
    for part in parts if not resident else [p for p in parts if p in ("A", "B", "C")]:
        con.execute(
            f"CREATE {kind} MCO_{part} AS SELECT * FROM read_parquet("
            f"'{folder}/T_MCO??{part}.parquet', union_by_name = true)"
        )
    for path in sorted(folder.glob("*.parquet")):
        if resident and path.stem not in _READ:
            continue
        if not _YEARLY.fullmatch(path.stem):
            source = f"read_parquet('{path}')"
            con.execute(f"CREATE {kind} {path.stem} AS SELECT * FROM {source}")
    if "C" in parts:
        con.execute((HERE / "clean_pmsi.sql").read_text())  # MCO_C_LINKED
    if all((folder / f"{t}.parquet").exists() for t in _DCIR):
        con.execute((HERE / "clean_dcir.sql").read_text())  # DISPENSED, CAM_ACTS
    return con


def run(con: Any, study: str, **params: Any) -> dict[str, Any]:
    """The one row of ``bench/<study>.sql`` as a dict (integers as ``int``)."""
    cur = con.execute((HERE / f"{study}.sql").read_text(), params or None)
    row = cur.fetchone()
    names = [c[0] for c in cur.description]
    return {n: int(v) if isinstance(v, int) else v for n, v in zip(names, row, strict=True)}


def headline(con: Any) -> dict[str, int]:
    """``mi_pathway.sql``: ``n`` and the persons per class, ``any`` and ``all_four``."""
    return run(con, "mi_pathway")
