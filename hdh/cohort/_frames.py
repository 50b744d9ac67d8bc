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

from collections.abc import Iterable, Sequence
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


def with_group_value(frame: Frame, value: nw.Expr, by: Sequence[str], alias: str) -> Frame:
    """``frame`` with a column ``alias``: the aggregate ``value`` (e.g. ``nw.col("x").min()``)
    of the row's group ``by``, joined back on the keys (rows with a null key get null)."""
    groups = frame.group_by(list(by)).agg(value.alias(alias))
    return frame.join(groups, on=list(by), how="left")


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
