"""Helpers shared by the cohort toolkit: narwhals frames in, native frames out.

Every public function of :mod:`hdh.cohort` takes a native frame (pandas, Polars eager or
lazy, a DuckDB relation, a PyArrow table, a PySpark DataFrame where narwhals supports it),
works on it through narwhals, and returns a native frame of the same library. Window
functions are written with ``over(order_by=...)`` and no ``partition_by`` (the patient is
folded into the sort order instead), and a value per group is joined back with
:func:`with_group_value`: narwhals' partitioned ``over`` on PyArrow joins the groups back
by row position, which PyArrow's hash join does not keep beyond 64k rows (wrong and
varying results, seen on 20 000 synthetic patients). Conditions make each side of ``|``
and ``&`` non-null (``fill_null``): cuDF's ``|`` does not read a null as "unknown", so
``True | null`` would drop the row; and pandas compares NaN as false, not null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import narwhals as nw

from hdh.errors import BadArgument, UnknownColumn

#: A narwhals DataFrame or LazyFrame (``Any``: narwhals types joins per frame kind).
Frame = Any


def wrap(native: Any, what: str = "frame") -> Frame:
    """The narwhals frame over ``native``; a one-line error for anything that is not a frame."""
    if isinstance(native, nw.DataFrame | nw.LazyFrame):
        return native
    try:
        return nw.from_native(native)
    except TypeError:
        raise BadArgument(
            f"{what} must be a data frame (pandas, Polars, DuckDB, PyArrow or PySpark),"
            f" not {type(native).__name__}"
        ) from None


def names(frame: Frame) -> list[str]:
    return list(frame.collect_schema().names())


def require(frame: Frame, columns: Iterable[str], what: str = "frame") -> None:
    """Raise :class:`UnknownColumn` naming the first missing column and what the frame has."""
    have = names(frame)
    for column in columns:
        if column not in have:
            raise UnknownColumn(f"{what} has no column {column!r} (it has: {', '.join(have)})")


def _windows_in_parallel(frame: Frame) -> bool:
    """Whether narwhals computes a partitioned window on ``frame``'s library correctly and
    in one pass (not on PyArrow: row-position join-back; not cuDF: untested there)."""
    impl = frame.implementation
    return not (impl.is_pyarrow() or impl.is_cudf())


def with_group_value(frame: Frame, value: nw.Expr, by: Sequence[str], alias: str) -> Frame:
    """``frame`` with a column ``alias``: the aggregate ``value`` (e.g. ``nw.col("x").min()``)
    of the row's group ``by`` (rows with a null key get null).

    A partitioned window where the library has a correct one; else the groups' values are
    joined back on the keys.
    """
    if _windows_in_parallel(frame):
        keyed = nw.all_horizontal(*(~nw.col(c).is_null() for c in by), ignore_nulls=False)
        return frame.with_columns(nw.when(keyed).then(value.over(*by)).otherwise(None).alias(alias))
    groups = frame.group_by(list(by)).agg(value.alias(alias))
    return frame.join(groups, on=list(by), how="left")


def group_sums(
    frame: Frame,
    by: Sequence[str],
    *,
    totals: Mapping[str, str] | None = None,
    running: Mapping[str, str] | None = None,
    order_by: Sequence[str] = (),
) -> Frame:
    """``frame`` with sums over the row's group ``by``, of columns of whole numbers >= 0.

    ``totals`` maps a new column to the column it sums over the whole group; ``running``
    maps a new column to the running sum, in the order ``order_by`` (list enough columns to
    break every tie), of the column it names from the group's first row to this one (with
    a column of ones, the row's number). Both are null on a row with a null key.

    One partitioned window (every sum at once) where the library has a correct one; on
    PyArrow and cuDF, running sums over the frame sorted by ``by`` + ``order_by`` less the
    sum before the group's first row, and totals joined back (:func:`with_group_value`).
    """
    totals, running = dict(totals or {}), dict(running or {})
    if _windows_in_parallel(frame):
        keyed = nw.all_horizontal(*(~nw.col(c).is_null() for c in by), ignore_nulls=False)
        return frame.with_columns(
            *(
                nw.when(keyed).then(nw.col(c).sum().over(*by)).otherwise(None).alias(a)
                for a, c in totals.items()
            ),
            *(
                nw.when(keyed)
                .then(nw.col(c).cum_sum().over(*by, order_by=list(order_by)))
                .otherwise(None)
                .cast(nw.Int64)
                .alias(a)
                for a, c in running.items()
            ),
        )
    for alias, column in totals.items():
        frame = with_group_value(frame, nw.col(column).sum(), by, alias)
    order = list(dict.fromkeys([*by, *order_by]))  # names once: cuDF sorts no repeated column
    for alias, column in running.items():
        before = f"{alias}__before"
        frame = frame.with_columns(
            nw.col(column).cum_sum().over(order_by=order).cast(nw.Int64).alias(alias)
        ).with_columns((nw.col(alias) - nw.col(column)).alias(before))
        first = f"{alias}__first"
        frame = (
            with_group_value(frame, nw.col(before).min(), by, first)
            .with_columns((nw.col(alias) - nw.col(first)).alias(alias))
            .drop(before, first)
        )
    return frame


def first_rows(frame: Frame, by: Sequence[str], order_by: Sequence[str]) -> Frame:
    """The first row of each group ``by`` in the order ``order_by`` (ties broken by the
    library: list enough columns to break them), in one pass (no self-join). Rows with a
    null key are dropped."""
    one, row = "__hdh_one", "__hdh_row"
    numbered = group_sums(
        frame.with_columns(nw.lit(1, nw.Int64).alias(one)),
        by,
        running={row: one},
        order_by=order_by,
    )
    return numbered.filter(nw.col(row) == 1).drop(one, row)


def distinct(frame: Frame) -> Frame:
    """The distinct rows of ``frame`` (a grouping, which every library does in parallel)."""
    return frame.group_by(names(frame)).agg()


def computed_once(native: Any) -> Any:
    """A small intermediate result (a cohort, its index dates) computed now, once, so that
    the plans built on it do not repeat it: a DuckDB relation is materialised (its rows
    held in memory, on the same connection), a Polars LazyFrame collected and made lazy
    again; eager frames and other libraries are returned as they are."""
    frame = wrap(native)
    if isinstance(frame, nw.LazyFrame):
        if frame.implementation.is_duckdb():
            return native.materialize()
        if frame.implementation.is_polars():
            return native.collect().lazy()
    return native


def collect(frame: Frame) -> nw.DataFrame[Any]:
    return frame.collect() if isinstance(frame, nw.LazyFrame) else frame


def scalar(frame: Frame) -> Any:
    """The single value of a one-row, one-column frame (collects a lazy one)."""
    return collect(frame).item(0, 0)


def same_library(frames: Sequence[Frame]) -> None:
    kinds = {(f.implementation, isinstance(f, nw.LazyFrame)) for f in frames}
    if len(kinds) > 1:
        found = ", ".join(
            sorted(f"{i.name.lower()} {'lazy' if lazy else 'eager'}" for i, lazy in kinds)
        )
        raise BadArgument(f"frames must come from the same library, got {found}")


def day_number(expr: nw.Expr) -> nw.Expr:
    """Days since 1970-01-01 of a date or datetime expression, as an integer.

    Computed from year, month and day (H. Hinnant's ``days_from_civil``) because casting a
    date to an integer is not supported alike by every engine.
    """
    y = expr.dt.year().cast(nw.Int64)
    m = expr.dt.month().cast(nw.Int64)
    d = expr.dt.day().cast(nw.Int64)
    y = y - (m <= 2).cast(nw.Int64)
    era = y // 400  # years are positive here (SNDS dates)
    yoe = y - era * 400
    mp = nw.when(m > 2).then(m - 3).otherwise(m + 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def as_date(expr: nw.Expr, frame: Frame | None = None) -> nw.Expr:
    """A date or datetime expression as a date (datetimes are truncated to their day).

    cuDF has no date type: on a cuDF ``frame`` the result is a datetime at midnight, in
    microseconds whatever the source's unit (cuDF stacks no columns of different units).
    """
    if frame is not None and frame.implementation.is_cudf():
        return expr.cast(nw.Datetime("us")).dt.truncate("1d")
    return expr.cast(nw.Date)
