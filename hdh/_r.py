"""The Python side of the R helper (``hdh/R/hdh.R``): R asks, Python writes a CSV R reads.

R calls :func:`call` through reticulate with a JSON request and a temporary file path; this
module runs ``hdh.read`` (engine ``"arrow"``), ``hdh.sql``, ``hdh.datasets`` or
``hdh.tables``, writes the result as a header-less CSV of plain columns (pyarrow.csv) and
answers with JSON: the columns' names and R types, or the one-line message of an
:class:`~hdh.HDHError`. Nothing of reticulate's own pandas conversion is used (it mangles
Arrow-backed frames). The CSV's columns, after a constant first one (so that no line is
blank):

=================================================  ===========  ==========================
Arrow type                                         R type       in the CSV
=================================================  ===========  ==========================
string, large string, dictionary of strings        character    quoted text; null empty
bool                                               logical      true / false
int8/16/32, uint8/16 (int64, uint32/64 that fit)   integer      digits
float, decimal (int64, uint32/64 that do not fit)  double       shortest round-trip digits
date32, date64                                     Date         days since 1970-01-01
timestamp                                          POSIXct      seconds since the epoch
null                                               logical      all NA
list (e.g. ``years`` of ``hdh.tables``)            character    the items, ", "-joined
time, duration, other                              character    Arrow's text, when it has one
=================================================  ===========  ==========================

A null is an empty field (NA in R); an empty string is ``""`` (an empty string in R).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hdh.errors import BadArgument, HDHError

INT32 = (-(2**31) + 1, 2**31 - 1)  # R's NA_integer_ is -2**31
_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def call(request: str, path: str) -> str:
    """Run one request from R and write its result to ``path``; returns JSON, never raises
    for an :class:`HDHError` (``{"error": message}``)."""
    try:
        req = json.loads(request)
        table = _result(req.get("fn"), req.get("args") or {})
        columns = _write(table, path)
    except HDHError as e:
        return json.dumps({"error": " ".join(str(e).split("\n"))})
    except Exception as e:  # e.g. DuckDB's own errors from hdh_sql: their first line
        first = (str(e).strip().splitlines() or [""])[0]
        return json.dumps({"error": f"{type(e).__name__}: {first}"})
    return json.dumps({"columns": columns, "rows": table.num_rows})


def _result(fn: Any, args: dict[str, Any]) -> Any:
    import pyarrow as pa

    import hdh

    if fn == "read":
        return hdh.read(
            args.get("name", ""),
            engine="arrow",
            columns=_as_list(args.get("columns")),
            filters=_filters(args.get("filters")),
            version=args.get("version"),
            years=_as_list(args.get("years")),
        )
    if fn == "sql":
        params = args.get("params")
        params = None if params is None else [_value(v) for v in _as_list(params) or []]
        out = hdh.sql(args.get("query", ""), versions=args.get("versions"), params=params).arrow()
        return out.read_all() if hasattr(out, "read_all") else out  # a reader in DuckDB 1.4
    if fn == "datasets":
        return pa.Table.from_pandas(hdh.datasets(), preserve_index=False)
    if fn == "tables":
        frame = hdh.tables(args.get("dataset", ""), version=args.get("version"))
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise BadArgument(f"unknown request from R: {fn!r}")


def _as_list(value: Any) -> Any:
    """R's length-1 vectors arrive as scalars (jsonlite's auto_unbox)."""
    if value is None or isinstance(value, list):
        return value
    return [value]


def _value(value: Any) -> Any:
    """A filter or SQL value: R's Date and POSIXct arrive as ``{"date": …}``, ``{"time": s}``."""
    if isinstance(value, dict) and set(value) == {"date"}:
        return dt.date.fromisoformat(value["date"])
    if isinstance(value, dict) and set(value) == {"time"}:
        return dt.datetime.fromtimestamp(value["time"], dt.UTC).replace(tzinfo=None)
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def _filters(filters: Any) -> Any:
    """R's ``list(list(column, op, value), ...)`` (or a list of such lists) as hdh takes it."""
    if filters is None:
        return None
    if not isinstance(filters, list):
        raise BadArgument(
            "filters is a list of list(column, op, value), e.g."
            ' list(list("PRS_NAT_REF", "in", c(1111, 1112)))'
        )
    if filters and all(isinstance(c, list) and c and isinstance(c[0], list) for c in filters):
        return [_filters(group) for group in filters]
    out = []
    for cond in filters:
        if isinstance(cond, list) and len(cond) == 3:
            col, op, value = cond
            value = _value(value)
            if op in ("in", "not in") and not isinstance(value, list):
                value = [value]
            out.append((col, op, value))
        else:
            out.append(cond)  # hdh says what is wrong with it
    return out


def _write(table: Any, path: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [str(n) for n in table.column_names]
    arrays: list[Any] = [pa.repeat(pa.scalar(1, pa.int8()), table.num_rows)]
    columns = []
    for name, col in zip(names, table.columns, strict=True):
        array, rtype, extra = _plain(name, col.combine_chunks() if col.num_chunks else col)
        arrays.append(array)
        columns.append({"name": name, "type": rtype, **extra})
    plain = pa.table(arrays, names=["_", *(f"c{i}" for i in range(len(names)))])
    pa_csv.write_csv(plain, path, pa_csv.WriteOptions(include_header=False))
    return columns


def _plain(name: str, col: Any) -> tuple[Any, str, dict[str, Any]]:
    """``col`` as an array the CSV writes as R reads it, and the R type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_dictionary(t):
        return _plain(name, col.cast(t.value_type))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_view(t, "string"):
        return col.cast(pa.string()), "character", {}
    if pa.types.is_boolean(t):
        return col, "logical", {}
    if pa.types.is_null(t):
        return col.cast(pa.bool_()), "logical", {}
    if pa.types.is_integer(t):
        lo, hi = pc.min_max(col).values()
        fits = lo.as_py() is None or (INT32[0] <= lo.as_py() and hi.as_py() <= INT32[1])
        return (
            (col.cast(pa.int32()), "integer", {})
            if fits
            else (col.cast(pa.float64()), "double", {})
        )
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return col.cast(pa.float64()), "double", {}
    if pa.types.is_date(t):
        return col.cast(pa.date32()).cast(pa.int32()), "Date", {}
    if pa.types.is_timestamp(t):
        seconds = pc.divide(col.cast(pa.int64()).cast(pa.float64()), float(_UNIT_SECONDS[t.unit]))
        return seconds, "POSIXct", {"tz": t.tz or "UTC"}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        text = [None if v is None else ", ".join(str(x) for x in v) for v in col.to_pylist()]
        return pa.array(text, pa.string()), "character", {}
    try:
        return col.cast(pa.string()), "character", {}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise BadArgument(
            f"column {name!r} ({t}) has no R equivalent: leave it out with columns ="
        ) from None


def _is_view(t: Any, kind: str) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, f"is_{kind}_view", None)
    return bool(check and check(t))
