"""HDH's notebook library: what a researcher imports inside a project sandbox (``import hdh``).

Reads the dataset versions mounted read-only under ``/data`` (``$HDH_DATA_ROOT``) into the
engine of one's choice, with projection and predicate pushdown::

    import hdh
    hdh.datasets()                                   # what is mounted and permitted
    hdh.tables("demo-snds")                          # its tables, rows, columns
    prs = hdh.read("demo-snds.ER_PRS_F", columns=["BEN_NIR_PSA", "EXE_SOI_DTD"],
                   filters=[("PRS_NAT_REF", "==", 1111)])             # pandas (Arrow)
    stays = hdh.read("demo-snds.T_MCOaaB", engine="duckdb", years=[2021, 2022])
    hdh.sql('SELECT count(*) FROM "demo-snds".IR_BEN_R').df()

The cohort toolkit is :mod:`hdh.cohort`, the airlock (export requests) :mod:`hdh.airlock`;
:mod:`hdh.jupyter` is the sandbox server's extension and contents manager. Everything here
runs in the sandbox: it imports only the standard library, the data libraries, Jupyter and
httpx, never HDH's host side (``jupyterlab_hdh``; enforced by the import-linter contracts in
``pyproject.toml``). Every error is an :class:`HDHError` with a one-line message. Docs:
``docs/notebook-library.md``.
"""

from __future__ import annotations

from hdh._catalogue import datasets, tables
from hdh._reader import ENGINES, read, spark
from hdh._sql import sql
from hdh.errors import (
    BadArgument,
    DatasetNotMounted,
    DatasetNotPermitted,
    EngineUnavailable,
    HDHError,
    UnknownColumn,
    UnknownTable,
)

__all__ = [
    "ENGINES",
    "BadArgument",
    "DatasetNotMounted",
    "DatasetNotPermitted",
    "EngineUnavailable",
    "HDHError",
    "UnknownColumn",
    "UnknownTable",
    "datasets",
    "read",
    "spark",
    "sql",
    "tables",
]
