"""``hdh.read``: one mounted table into the engine of the researcher's choice.

Owns the engines: each reads only the columns asked for and lets the engine apply the
filters while scanning (projection and predicate pushdown into the Parquet files), and a
yearly table (``T_MCOaaB``) is read as one table over its years with a ``year`` column.
Engines are imported when first used, so ``import hdh`` costs none of them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

from hdh import _filters
from hdh._mounts import YEAR_COLUMN, TableRef, resolve
from hdh.errors import BadArgument, EngineUnavailable

#: engine name → the module it needs, and what to tell a person who lacks it
ENGINES: dict[str, tuple[str, str]] = {
    "pandas": ("pandas", "pandas is part of every sandbox; reinstall HDH"),
    "arrow": ("pyarrow", "pyarrow is part of every sandbox; reinstall HDH"),
    "duckdb": ("duckdb", "DuckDB is part of every sandbox; reinstall HDH"),
    "polars": ("polars", "Polars is part of every sandbox; reinstall HDH"),
    "cudf": ("cudf", "cuDF needs a GPU sandbox (the project's GPU compute profile)"),
    "spark": ("pyspark", "PySpark is not installed in this sandbox (the Spark compute profile)"),
}
DEFAULT_ENGINE = "pandas"


def _need(engine: str) -> Any:
    if engine not in ENGINES:
        raise BadArgument(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    module, advice = ENGINES[engine]
    if importlib.util.find_spec(module) is None:
        raise EngineUnavailable(f"engine {engine!r} is not available: {advice}")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # cuDF without a GPU raises at import
        raise EngineUnavailable(f"engine {engine!r} cannot start here: {exc}") from None


def read(
    name: str,
    engine: str = DEFAULT_ENGINE,
    *,
    columns: list[str] | None = None,
    filters: Any = None,
    version: str | None = None,
    years: Any = None,
) -> Any:
    """Read a mounted table: ``hdh.read("demo-snds.ER_PRS_F", columns=[...], filters=[...])``.

    ``name``: ``"dataset.TABLE"``; a yearly PMSI table as ``"dataset.T_MCOaaB"`` (all its
    years, or ``years=[2021, 2022]``), with a ``year`` column. ``engine``: ``"pandas"``
    (Arrow-backed dtypes; the default), ``"arrow"`` (a ``pyarrow.Table``), ``"duckdb"`` (a
    lazy DuckDB relation), ``"polars"`` (a DataFrame), ``"cudf"`` (GPU), ``"spark"`` (a
    Spark DataFrame on :func:`hdh.spark`'s session). ``columns``: only these.
    ``filters``: ``[(column, op, value), ...]`` all true, or a list of such lists of which
    one is (ops ``== != < <= > >= in``, ``not in``). ``version``: the newest mounted one
    unless named. Raises :class:`hdh.HDHError` with a one-line message on bad input.
    """
    mod = _need(engine)
    ref = resolve(name, version, years)
    available = ref.schema().names
    cols = _filters.check_columns(columns, available)
    clauses = _filters.normalise(filters, available)
    reader = _READERS[engine]
    return reader(mod, ref, cols, clauses)


def _arrow_table(ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not ref.yearly:
        dataset = ds.dataset(str(ref.files[0]), format="parquet")
        return dataset.to_table(columns=cols, filter=_filters.to_arrow(clauses))
    needed = None if cols is None else set(cols) | set(_filter_cols(clauses))
    parts = []
    for year, path in zip(ref.years, ref.files, strict=True):
        part = ds.dataset(str(path), format="parquet")
        names = [c for c in part.schema.names if needed is None or c in needed]
        table = part.to_table(columns=names)  # a year may lack a column: null there
        parts.append(table.append_column(YEAR_COLUMN, pa.array([year] * len(table), pa.int16())))
    table = pa.concat_tables(parts, promote_options="permissive")
    expr = _filters.to_arrow(clauses)
    if expr is not None:
        table = table.filter(expr)
    return table.select(cols) if cols is not None else table


def _filter_cols(clauses: Any) -> list[str]:
    return list(dict.fromkeys(c for clause in clauses for c, _, _ in clause))


def _read_pandas(pd: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    table = _arrow_table(ref, cols, clauses)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _read_arrow(pa_mod: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    return _arrow_table(ref, cols, clauses)


def duckdb_source(ref: TableRef) -> str:
    """A DuckDB ``FROM`` item for the table's files (with ``year`` for a yearly table).

    The paths go in as SQL string literals (a view takes no parameters); they come from
    the mount layout, never from the caller."""
    if not ref.yearly:
        return f"read_parquet({_literal(ref.files[0])})"
    selects = " UNION ALL BY NAME ".join(
        f"SELECT *, CAST({year} AS SMALLINT) AS {YEAR_COLUMN} FROM read_parquet({_literal(path)})"
        for year, path in zip(ref.years, ref.files, strict=True)
    )
    return f"({selects})"


def _literal(path: Any) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_duckdb(duckdb: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    select = ", ".join(_quote(c) for c in cols) if cols else "*"
    query = f"SELECT {select} FROM {duckdb_source(ref)}"
    params: list[Any] = []
    if clauses:
        where, params = _filters.to_sql(clauses)
        query += f" WHERE {where}"
    return connection(duckdb).sql(query, params=params)


_CONNECTION: Any = None


def connection(duckdb: Any = None) -> Any:
    """The notebook's DuckDB connection (one per kernel; :func:`hdh.sql` uses it too)."""
    global _CONNECTION
    if _CONNECTION is None:
        duckdb = duckdb or _need("duckdb")
        _CONNECTION = duckdb.connect(":memory:")
    return _CONNECTION


def _read_polars(pl: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    frames = []
    for i, path in enumerate(ref.files):
        lf = pl.scan_parquet(str(path))
        if ref.yearly:
            lf = lf.with_columns(pl.lit(ref.years[i], dtype=pl.Int16).alias(YEAR_COLUMN))
        frames.append(lf)
    lf = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    if clauses:
        lf = lf.filter(_filters.to_polars(clauses))
    if cols is not None:
        lf = lf.select(cols)
    return lf.collect()


def _read_cudf(cudf: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    """Each file decoded on the GPU (a yearly table's with its ``year``), then the rows
    filtered here: cuDF's own ``filters`` returned unfiltered rows when one held a date."""
    import pyarrow.parquet as pq

    needed = None if cols is None else set(cols) | set(_filter_cols(clauses))
    frames = []
    for i, path in enumerate(ref.files):
        present = pq.read_schema(path).names
        df = cudf.read_parquet(
            str(path), columns=[c for c in present if needed is None or c in needed]
        )
        if ref.yearly:
            df[YEAR_COLUMN] = cudf.Series([ref.years[i]] * len(df), dtype="int16")
        frames.append(df)
    df = frames[0] if len(frames) == 1 else cudf.concat(frames, ignore_index=True)
    if clauses:
        df = df[_cudf_mask(df, clauses)].reset_index(drop=True)
    return df[cols] if cols is not None else df


def _cudf_mask(df: Any, clauses: Any) -> Any:
    """The rows of a cuDF frame that pass the filters; dates as ``numpy.datetime64`` (cuDF
    has no date type: a date column is read as datetimes at midnight)."""
    import numpy as np

    def gpu_value(v: Any) -> Any:
        if isinstance(v, dt.date):
            return np.datetime64(v)
        if isinstance(v, list | tuple | set | frozenset):
            return [gpu_value(x) for x in v]
        return v

    def compare(c: Any, op: str, v: Any) -> Any:
        # a null never passes, as in Arrow's filters (``not in`` included)
        return _filters._compare(c, op, gpu_value(v), "isin").fillna(False) & c.notna()

    return _filters._combine(clauses, lambda n: df[n], compare)


def spark(config: Mapping[str, str] | None = None) -> Any:
    """The kernel's Spark session, configured for the sandbox (see ``hdh._spark``): the
    master from ``HDH_SPARK_MASTER`` (a cluster), else ``local[*]`` bound to the sandbox's
    loopback, no web UI, scratch in the temporary folder, the heap sized from the sandbox's
    memory limit. ``config``: Spark settings to add or override (static ones, such as
    ``spark.driver.memory``, only before the first session of the kernel)."""
    _need("spark")
    from hdh import _spark

    return _spark.session(config)


def _read_spark(pyspark: Any, ref: TableRef, cols: list[str] | None, clauses: Any) -> Any:
    from pyspark.sql import functions as F  # noqa: N812

    session = spark()
    frames = []
    for i, path in enumerate(ref.files):
        df = session.read.parquet(str(path))
        if ref.yearly:
            df = df.withColumn(YEAR_COLUMN, F.lit(ref.years[i]).cast("smallint"))
        frames.append(df)
    df = frames[0]
    for more in frames[1:]:
        df = df.unionByName(more, allowMissingColumns=True)
    if clauses:
        df = df.where(_filters.to_spark(clauses))
    return df.select(*cols) if cols is not None else df


_READERS = {
    "pandas": _read_pandas,
    "arrow": _read_arrow,
    "duckdb": _read_duckdb,
    "polars": _read_polars,
    "cudf": _read_cudf,
    "spark": _read_spark,
}
