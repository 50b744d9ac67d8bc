"""``hdh.sql``: DuckDB SQL over every mounted table, as ``"dataset".TABLE``.

Owns the views: each mounted dataset is a DuckDB schema named after it, each table a
view over its Parquet file (a yearly table ``T_MCOaaB`` also as one view over its years,
with a ``year`` column), in the newest mounted version unless ``versions`` names another.
Views read the files when queried, so projection and filters reach the scan.
"""

from __future__ import annotations

from typing import Any

from hdh._mounts import YEARLY, data_root, mounted, resolve
from hdh._reader import _duckdb_source, _need, _quote, connection
from hdh.errors import BadArgument, HDHError

_VIEWS: dict[tuple[str, str], str] = {}  # (dataset, table) → what its view reads


def _yearly_names(stems: list[str]) -> set[str]:
    """``T_MCOaaB`` for every ``T_MCO21B``-like stem."""
    import re

    out = set()
    for stem in stems:
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*?)(\d\d)([A-Z0-9_]*)", stem)
        if m and YEARLY.match(f"{m[1]}aa{m[3]}"):
            out.add(f"{m[1]}aa{m[3]}")
    return out


def _ensure_views(versions: dict[str, str] | None) -> Any:
    con = connection(_need("duckdb"))
    here = mounted()
    for dataset, have in here.items():
        version = (versions or {}).get(dataset) or have[-1]
        folder = data_root() / dataset / version
        stems = sorted(p.stem for p in folder.glob("*.parquet"))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(dataset)}")
        for table in stems + sorted(_yearly_names(stems)):
            ref = resolve(f"{dataset}.{table}", version)
            source, params = _duckdb_source(ref)
            # a view cannot take parameters: the paths go in as SQL string literals
            for p in params:
                source = source.replace("?", "'" + p.replace("'", "''") + "'", 1)
            if _VIEWS.get((dataset, table)) == source:
                continue
            view = f"{_quote(dataset)}.{_quote(table)}"
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")
            _VIEWS[(dataset, table)] = source
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
