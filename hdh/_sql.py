"""``hdh.sql``: DuckDB SQL over every mounted table, as ``"dataset".TABLE``.

Owns the views: each mounted dataset is a DuckDB schema named after it, each table a
view over its Parquet file (a yearly table ``T_MCOaaB`` also as one view over its years,
with a ``year`` column), in the newest mounted version unless ``versions`` names another.
Views read the files when queried, so projection and filters reach the scan.
"""

from __future__ import annotations

from typing import Any

from hdh._mounts import mounted, refs, resolve
from hdh._reader import _need, _quote, connection, duckdb_source
from hdh.errors import BadArgument, HDHError

_VIEWS: dict[tuple[str, str], str] = {}  # (dataset, table) → what its view reads


def _ensure_views(versions: dict[str, str] | None) -> Any:
    con = connection(_need("duckdb"))
    for dataset, have in mounted().items():
        version = (versions or {}).get(dataset) or have[-1]
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(dataset)}")
        for ref in refs(dataset, version):
            source = duckdb_source(ref)
            if _VIEWS.get((dataset, ref.table)) == source:
                continue
            view = f"{_quote(dataset)}.{_quote(ref.table)}"
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")
            _VIEWS[(dataset, ref.table)] = source
    return con


def sql(query: str, *, versions: dict[str, str] | None = None, params: Any = None) -> Any:
    """Run DuckDB SQL over the mounted tables; returns a DuckDB relation (``.df()``,
    ``.pl()``, ``.arrow()``, or shown as is in a notebook).

    Tables are ``"dataset".TABLE`` (quote a dataset name with a hyphen:
    ``SELECT count(*) FROM "demo-snds".ER_PRS_F``); a yearly PMSI table is also one view
    over its years (``"demo-snds".T_MCOaaB``, with ``year``). ``versions``: ``{dataset:
    version}`` to query another mounted version than the newest. ``params``: values for
    ``?`` placeholders.
    """
    if not isinstance(query, str) or not query.strip():
        raise BadArgument("hdh.sql takes the text of a SQL query")
    if versions is not None:
        here = mounted()
        for dataset, version in versions.items():
            if dataset not in here or version not in here[dataset]:
                resolve(f"{dataset}.X", version)  # raises the not-mounted message
    con = _ensure_views(versions)
    duckdb = _need("duckdb")
    try:
        return con.sql(query, params=params)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HDHError(f"SQL error: {first}") from None
