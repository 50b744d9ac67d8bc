"""Row filters in the form pandas, PyArrow and cuDF take, checked once, for every engine.

``filters`` is a list of ``(column, op, value)`` conditions that must all hold, or a list of
such lists of which one must hold (disjunctive normal form, as ``pandas.read_parquet``).
Operators: ``==`` (or ``=``), ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``.
:func:`normalise` checks them against the table's columns; the ``to_*`` functions turn them
into each engine's own expression, so the engine prunes row groups (predicate pushdown).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from hdh.errors import BadArgument, UnknownColumn

Condition = tuple[str, str, Any]
Clauses = list[list[Condition]]  # OR of ANDs

OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
_SCALARS = (str, int, float, bool, dt.date, dt.datetime)


def normalise(filters: object, columns: Sequence[str]) -> Clauses:
    """``filters`` as OR-of-AND clauses, each column known and each value of a usable type."""
    if filters is None:
        return []
    if not isinstance(filters, list | tuple) or not filters:
        raise BadArgument(
            "filters must be a list of (column, op, value) conditions, e.g."
            " [('PRS_NAT_REF', '==', 1111), ('EXE_SOI_DTD', '>=', datetime.date(2021, 1, 1))]"
        )
    nested = all(isinstance(c, list) for c in filters)
    groups = list(filters) if nested else [list(filters)]
    known = set(columns)
    out: Clauses = []
    for group in groups:
        if not group:
            raise BadArgument("an empty list of conditions in filters")
        clause: list[Condition] = []
        for cond in group:
            if not isinstance(cond, tuple | list) or len(cond) != 3:
                raise BadArgument(f"a filter condition is (column, op, value), not {cond!r}")
            col, op, value = cond
            op = "==" if op == "=" else op
            if op not in OPS:
                raise BadArgument(f"unknown filter operator {op!r}; use one of {', '.join(OPS)}")
            if col not in known:
                raise UnknownColumn(f"filter on unknown column {col!r}; columns: {_cols(columns)}")
            if op in ("in", "not in"):
                if isinstance(value, str | bytes) or not isinstance(value, Sequence | set):
                    raise BadArgument(f"{op!r} takes a list of values, not {value!r}")
                values = list(value)
                if not values or not all(isinstance(v, _SCALARS) for v in values):
                    raise BadArgument(f"{op!r} takes a non-empty list of plain values")
                clause.append((col, op, values))
            else:
                if not isinstance(value, _SCALARS):
                    raise BadArgument(f"filter value for {col!r} must be a plain value: {value!r}")
                clause.append((col, op, value))
        out.append(clause)
    return out


def check_columns(columns: object, available: Sequence[str]) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise BadArgument(f"columns must be a non-empty list of column names, not {columns!r}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise UnknownColumn(
            f"unknown column(s) {', '.join(map(repr, missing))}; columns: {_cols(available)}"
        )
    return list(dict.fromkeys(columns))  # once each, in the order asked


def _cols(columns: Sequence[str]) -> str:
    cols = list(columns)
    return ", ".join(cols[:60]) + (f" … ({len(cols)} in all)" if len(cols) > 60 else "")


# ---------------------------------------------------------------- per engine


def to_arrow(clauses: Clauses) -> Any:
    """A ``pyarrow.compute`` expression (None when there is no filter)."""
    if not clauses:
        return None
    import pyarrow.parquet as pq

    return pq.filters_to_expression([[tuple(c) for c in clause] for clause in clauses])


def to_sql(clauses: Clauses) -> tuple[str, list[Any]]:
    """A SQL ``WHERE`` condition with ``?`` parameters (DuckDB), and its parameters."""
    params: list[Any] = []
    ors = []
    for clause in clauses:
        ands = []
        for col, op, value in clause:
            name = '"' + col.replace('"', '""') + '"'
            if op in ("in", "not in"):
                marks = ", ".join("?" for _ in value)
                ands.append(f"{name} {op.upper()} ({marks})")
                params.extend(value)
            else:
                ands.append(f"{name} {'=' if op == '==' else op} ?")
                params.append(value)
        ors.append("(" + " AND ".join(ands) + ")")
    return " OR ".join(ors), params


def _combine(clauses: Clauses, col: Any, compare: Any) -> Any:
    expr = None
    for clause in clauses:
        part = None
        for name, op, value in clause:
            term = compare(col(name), op, value)
            part = term if part is None else part & term
        expr = part if expr is None else expr | part
    return expr


def _compare(c: Any, op: str, value: Any, isin: str) -> Any:
    if op == "in":
        return getattr(c, isin)(value)
    if op == "not in":
        return ~getattr(c, isin)(value)
    return {
        "==": c.__eq__,
        "!=": c.__ne__,
        "<": c.__lt__,
        "<=": c.__le__,
        ">": c.__gt__,
        ">=": c.__ge__,
    }[op](value)


def to_polars(clauses: Clauses) -> Any:
    import polars as pl

    return _combine(clauses, pl.col, lambda c, op, v: _compare(c, op, v, "is_in"))


def to_spark(clauses: Clauses) -> Any:
    from pyspark.sql import functions as F  # noqa: N812 - PySpark's own convention

    return _combine(clauses, F.col, lambda c, op, v: _compare(c, op, v, "isin"))
