"""Validation of data files against HDH Table Schemas.

Owns: reading one Parquet or CSV file into an Arrow table conformed exactly to
``arrow_schema(descriptor)`` (column order and types), and the list of
violations that make a file unacceptable (:class:`Violation`,
:class:`ValidationError`), plus the optional foreign-key check across a file
set (:func:`check_foreign_keys`). Ingestion calls :func:`read_table` on every
file of an extract before anything is written to the store.

Everything is vectorised with ``pyarrow.compute`` on record batches, and the
whole-file checks (``unique``, ``primaryKey``, foreign keys) run in DuckDB over
the Arrow data, so a file of tens of millions of rows is checked without a
per-row Python loop. Python only formats the (capped) list of violations.

Row numbers: ``Violation.row`` is the 1-based *data* row number (the header of
a CSV file is not counted, so data row 1 is the second record of a CSV file;
a quoted value spanning several lines still counts as one row; blank lines
are skipped and not counted). A CSV row with more or fewer cells than the
header is an ``extra-cell`` / ``missing-cell`` violation and is not checked
further. ``row`` is
``None`` for violations about a whole column or the whole file.

Table Schema semantics implemented (the subset used by the SNDS schemas):

* types ``string``, ``integer``, ``number``, ``boolean`` (``trueValues`` /
  ``falseValues``), ``date`` (format ``default`` = ``YYYY-MM-DD``, or a
  ``strptime`` pattern such as ``%d%m%Y``; ``%m`` alone gives the first day of
  that month in 1900, as Python's ``strptime`` does), ``datetime`` (``default``
  = ``YYYY-MM-DDThh:mm:ss`` with an optional ``Z``, or a ``strptime`` pattern,
  e.g. SAS's ``%d%b%Y:%H:%M:%S``; whole seconds only), ``year`` (4 digits) and
  ``yearmonth`` (``YYYY-MM``, kept as a string);
* ``missingValues`` (default ``[""]``) are nulls, in CSV text and in Parquet
  string columns alike;
* constraints ``required``, ``minimum``, ``maximum``, ``minLength``,
  ``maxLength``, ``pattern`` (whole-value match), ``enum``, ``unique``, and the
  ``primaryKey`` (string or list; a row whose key cells are all empty, or a key
  that repeats an earlier row's, is a ``primary-key`` violation). Nulls satisfy
  every constraint but ``required``.

Parquet columns are cast safely: integer widths, integral floats to integers,
integers to numbers, dates and whole-second timestamps between date and
datetime; string columns are parsed like CSV text. Any other physical type
(e.g. an integer column where the schema says ``string``, which would lose
leading zeros) is a ``type`` violation for the whole column.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jupyterlab_hdh.data.snds_schemas import arrow_schema, arrow_type, primary_key

__all__ = [
    "MAX_VIOLATIONS",
    "RULES",
    "ValidationError",
    "Violation",
    "check_foreign_keys",
    "read_table",
    "text_format",
]

#: Violations kept (with details) per file; the total is always counted.
MAX_VIOLATIONS = 100

RULES = (
    "file-unreadable",
    "missing-column",
    "extra-column",
    "duplicate-column",
    "extra-cell",
    "missing-cell",
    "type",
    "required",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "unique",
    "primary-key",
    "foreign-key",
)

_BATCH_ROWS = 512 * 1024
_CSV_BLOCK = 4 << 20
#: A CSV file with more ragged rows than this is rejected outright (wrong delimiter or quoting).
_MAX_RAGGED = 10_000
_DEFAULT_TRUE = ("true", "True", "TRUE", "1")
_DEFAULT_FALSE = ("false", "False", "FALSE", "0")
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class Violation:
    """One reason a file does not conform to its Table Schema."""

    file: str
    row: int | None
    field: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"column {self.field}")
        return f"{', '.join(where)}: [{self.rule}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "field": self.field,
            "rule": self.rule,
            "message": self.message,
        }


class ValidationError(Exception):
    """A file does not conform to its Table Schema.

    ``violations`` holds at most :data:`MAX_VIOLATIONS` entries (first found
    first); ``total`` counts them all.
    """

    def __init__(self, file: str, violations: Sequence[Violation], total: int | None = None):
        self.file = file
        self.violations = list(violations)
        self.total = max(total if total is not None else 0, len(self.violations))
        super().__init__(file, self.violations, self.total)

    @property
    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}

    def __str__(self) -> str:
        shown = len(self.violations)
        head = f"{self.file} does not conform to its schema: {self.total} violation(s)"
        if shown < self.total:
            head += f", first {shown} listed"
        return "\n".join([head, *(f"  - {v}" for v in self.violations)])


# --------------------------------------------------------------------------- collector


@dataclass
class _Collector:
    file: str
    cap: int
    #: (row index among parsed rows, or a final row number, or None), field, rule, message
    items: list[tuple[int | None, bool, str | None, str, str]] = field(default_factory=list)
    total: int = 0

    @property
    def room(self) -> int:
        return max(self.cap - len(self.items), 0)

    def add(self, rule: str, message: str, *, field: str | None = None) -> None:
        """A violation about a column or the whole file (no row)."""
        self.total += 1
        if self.room:
            self.items.append((None, False, field, rule, message))

    def add_row(self, row_number: int, rule: str, message: str, *, field: str | None) -> None:
        """A violation at a known final (1-based data) row number."""
        self.total += 1
        if self.room:
            self.items.append((row_number, True, field, rule, message))

    def add_mask(
        self,
        mask: pa.Array,
        offset: int,
        rule: str,
        field: str,
        values: pa.Array,
        describe: Callable[[Any], str],
    ) -> None:
        """Violations at every true position of ``mask`` (parsed-row index ``offset + i``)."""
        mask = mask.fill_null(False) if mask.null_count else mask
        count = pc.sum(mask).as_py() or 0
        if not count:
            return
        self.total += count
        room = self.room
        if room:
            idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))[:room]
            for i, value in zip(idx, values.take(pa.array(idx)).to_pylist(), strict=True):
                self.items.append((offset + int(i), False, field, rule, describe(value)))

    def violations(self, row_of: Callable[[int], int]) -> list[Violation]:
        out = []
        for pos, final, fld, rule, message in self.items:
            row = pos if final or pos is None else row_of(pos)
            out.append(Violation(self.file, row, fld, rule, message))
        return out


class _Unreadable(Exception):
    def __init__(self, message: str, row_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.row_index = row_index


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --------------------------------------------------------------------------- parsing text


def _field_label(fld: dict[str, Any]) -> str:
    fmt = fld.get("format", "default")
    kind = fld.get("type", "string")
    return kind if fmt in (None, "default") else f"{kind} (format {fmt!r})"


def _null_where(arr: pa.Array, mask: pa.Array) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, arr.type), arr)


def _parse_temporal(text: pa.Array, fmt: str, target: pa.DataType) -> pa.Array:
    """Parse with ``strptime`` and keep only values that format back identically.

    The round trip rejects what glibc's ``strptime`` silently normalises
    (``2020-02-30`` → ``2020-03-01``); month names compare case-insensitively.
    """
    ts = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    back = pc.strftime(ts, format=fmt)
    same = pc.equal(pc.utf8_upper(back), pc.utf8_upper(text)).fill_null(False)
    ts = _null_where(ts, pc.invert(same))
    return ts.cast(target)


def _parse_text(text: pa.Array, fld: dict[str, Any]) -> pa.Array:
    """Text (nulls already applied) → values of the field's Arrow type; null where unparseable."""
    kind = fld.get("type", "string")
    fmt = fld.get("format", "default") or "default"
    target = arrow_type(fld)
    if kind in ("string", "any"):
        return text
    if kind == "integer":
        trimmed = pc.utf8_trim_whitespace(text)
        ok = pc.match_substring_regex(trimmed, r"^[+-]?\d{1,18}$")
        return _null_where(trimmed, pc.invert(ok)).cast(target)
    if kind == "number":
        trimmed = pc.utf8_trim_whitespace(text)
        ok = pc.match_substring_regex(
            trimmed,
            r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$",
        )
        return _null_where(trimmed, pc.invert(ok)).cast(target)
    if kind == "boolean":
        true_values = pa.array(fld.get("trueValues", _DEFAULT_TRUE), pa.string())
        false_values = pa.array(fld.get("falseValues", _DEFAULT_FALSE), pa.string())
        is_true = pc.is_in(text, value_set=true_values)
        is_false = pc.is_in(text, value_set=false_values)
        out = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        return _null_where(out, pc.is_null(text)) if text.null_count else out
    if kind == "year":
        ok = pc.match_substring_regex(text, r"^\d{4}$")
        return _null_where(text, pc.invert(ok)).cast(target)
    if kind == "yearmonth":
        ok = pc.match_substring_regex(text, r"^\d{4}-(0?[1-9]|1[0-2])$")
        return _null_where(text, pc.invert(ok))
    if kind == "date":
        if fmt == "default":
            ok = pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}$")
            return _parse_temporal(_null_where(text, pc.invert(ok)), "%Y-%m-%d", target)
        if fmt == "%m":
            ok = pc.match_substring_regex(text, r"^(0?[1-9]|1[0-2])$")
            month = _null_where(text, pc.invert(ok))
            iso = pc.binary_join_element_wise("1900", pc.utf8_lpad(month, 2, "0"), "01", "-")
            return _parse_temporal(iso, "%Y-%m-%d", target)
        return _parse_temporal(text, fmt, target)
    if kind == "datetime":
        if fmt == "default":
            ok = pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?$")
            core = pc.utf8_rtrim(_null_where(text, pc.invert(ok)), "Z")
            return _parse_temporal(core, "%Y-%m-%dT%H:%M:%S", target)
        return _parse_temporal(text, fmt, target)
    raise ValueError(f"unsupported Table Schema type {kind!r}")


#: strptime directives in the words of a data dictionary.
_DIRECTIVES = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%b": "MON", "%H": "hh"}
_DIRECTIVES |= {"%M": "mm", "%S": "ss", "%j": "DDD"}
_EXAMPLE = dt.datetime(2021, 3, 1)


def _pattern_words(fmt: str) -> str:
    return re.sub(r"%.", lambda m: _DIRECTIVES.get(m.group(0), m.group(0)), fmt)


def text_format(fld: dict[str, Any], missing_values: Sequence[str] = ("",)) -> str:
    """How a value of ``fld`` is written as text (a CSV cell), in words, as read_table parses it.

    E.g. ``DDMMYYYY (e.g. 01032021); empty = missing``. Parquet columns of the
    field's type need no format; Parquet string columns are parsed like CSV text.
    """
    kind = fld.get("type", "string")
    fmt = fld.get("format", "default") or "default"
    if kind == "integer":
        text = "whole number, optional sign (e.g. -12)"
    elif kind == "number":
        text = "decimal point, optional exponent (e.g. 3.25, 1e-3)"
    elif kind == "boolean":
        true = "/".join(fld.get("trueValues", _DEFAULT_TRUE))
        false = "/".join(fld.get("falseValues", _DEFAULT_FALSE))
        text = f"true: {true}; false: {false}"
    elif kind == "year":
        text = "YYYY (e.g. 2021)"
    elif kind == "yearmonth":
        text = "YYYY-MM (e.g. 2021-03)"
    elif kind == "date" and fmt == "default":
        text = "YYYY-MM-DD (e.g. 2021-03-01)"
    elif kind == "date" and fmt == "%m":
        text = "month number, 1-12 or 01-12 (read as that month of 1900)"
    elif kind == "datetime" and fmt == "default":
        text = "YYYY-MM-DDThh:mm:ss, optional Z (e.g. 2021-03-01T00:00:00)"
    elif kind in ("date", "datetime"):
        example = _EXAMPLE.strftime(fmt).upper()
        names = "; English month names, any case" if "%b" in fmt else ""
        text = f"{_pattern_words(fmt)} (e.g. {example}{names})"
    else:
        text = "text"
    missing = [repr(v) if v else "empty" for v in missing_values]
    return f"{text}; {' or '.join(missing)} = missing" if missing else text


# --------------------------------------------------------------------------- conforming


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    t = pa.types
    if source == target:
        return True
    if t.is_integer(target):
        return t.is_integer(source) or t.is_floating(source)
    if t.is_floating(target):
        return t.is_integer(source) or t.is_floating(source) or t.is_decimal(source)
    if t.is_date(target) or t.is_timestamp(target):
        return t.is_date(source) or t.is_timestamp(source)
    return False


def _safe_cast(arr: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """Cast, and return (values, mask of values that did not survive the cast)."""
    try:
        return arr.cast(target, safe=True), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        arr = arr.cast(pa.timestamp(arr.type.unit))
    unsafe = arr.cast(target, safe=False)
    back = unsafe.cast(arr.type, safe=False)
    bad = pc.not_equal(back, arr).fill_null(False)
    if pa.types.is_unsigned_integer(arr.type) and pa.types.is_integer(target):
        top = np.iinfo(target.to_pandas_dtype()).max
        if top < np.iinfo(arr.type.to_pandas_dtype()).max:
            bad = pc.or_(bad, pc.greater(arr, pa.scalar(top, arr.type)).fill_null(False))
    return _null_where(unsafe, bad), bad


def _conform(
    arr: pa.Array, fld: dict[str, Any], missing: pa.Array
) -> tuple[pa.Array, pa.Array | None, str | None]:
    """Conform one column chunk.

    Returns (values of the field's Arrow type, mask of values that failed the
    type, or None; a whole-column type problem, or None).
    """
    target = arrow_type(fld)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target), None, None
    if _is_text(arr.type):
        text = arr.cast(pa.string()) if arr.type != pa.string() else arr
        if len(missing):
            text = _null_where(text, pc.is_in(text, value_set=missing))
        out = _parse_text(text, fld)
        bad = pc.and_(pc.is_null(out), pc.is_valid(text))
        return out, bad, None
    if _castable(arr.type, target):
        out, bad = _safe_cast(arr, target)
        return out, bad, None
    problem = f"column has type {arr.type} in the file, expected {_field_label(fld)}"
    return pa.nulls(len(arr), target), None, problem


def _bound(fld: dict[str, Any], value: Any) -> pa.Scalar:
    target = arrow_type(fld)
    if pa.types.is_date(target) or pa.types.is_timestamp(target):
        parsed = _parse_text(pa.array([str(value)]), fld)
        if parsed[0].is_valid:
            return parsed[0]
        if pa.types.is_date(target):
            return pa.scalar(dt.date.fromisoformat(str(value)), target)
        return pa.scalar(dt.datetime.fromisoformat(str(value)), target)
    return pa.scalar(value, target)


def _enum_set(fld: dict[str, Any]) -> pa.Array:
    values = fld["constraints"]["enum"]
    target = arrow_type(fld)
    if pa.types.is_string(target):
        return pa.array([str(v) for v in values], pa.string())
    if pa.types.is_boolean(target) and all(isinstance(v, bool) for v in values):
        return pa.array(values, pa.bool_())
    return _parse_text(pa.array([str(v) for v in values], pa.string()), fld).drop_null()


def _show(value: Any) -> str:
    if isinstance(value, str | bytes):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _says(template: str, x: Any = None) -> Callable[[Any], str]:
    """A message for one bad value: ``{v}`` the value, ``{n}`` its length, ``{x}`` ``x``."""

    def describe(value: Any) -> str:
        n = len(value) if isinstance(value, str) else 0
        return template.format(v=_show(value), n=n, x=x)

    return describe


def _check_constraints(
    col: _Collector,
    fld: dict[str, Any],
    out: pa.Array,
    type_bad: pa.Array | None,
    offset: int,
    raw: pa.Array,
) -> None:
    name = fld["name"]
    cons = fld.get("constraints") or {}
    target = arrow_type(fld)
    if cons.get("required"):
        missing = pc.is_null(out)
        if type_bad is not None:
            missing = pc.and_(missing, pc.invert(type_bad))
        col.add_mask(missing, offset, "required", name, raw, _says("value is missing"))
    if "minimum" in cons and not pa.types.is_string(target):
        lo = _bound(fld, cons["minimum"])
        col.add_mask(
            pc.less(out, lo),
            offset,
            "minimum",
            name,
            out,
            _says("value {v} is below the minimum {x}", _show(lo.as_py())),
        )
    if "maximum" in cons and not pa.types.is_string(target):
        hi = _bound(fld, cons["maximum"])
        col.add_mask(
            pc.greater(out, hi),
            offset,
            "maximum",
            name,
            out,
            _says("value {v} is above the maximum {x}", _show(hi.as_py())),
        )
    if pa.types.is_string(target) and ("minLength" in cons or "maxLength" in cons):
        length = pc.utf8_length(out)
        if "minLength" in cons:
            n = int(cons["minLength"])
            col.add_mask(
                pc.less(length, n),
                offset,
                "minLength",
                name,
                out,
                _says("value {v} has {n} characters, at least {x} required", n),
            )
        if "maxLength" in cons:
            n = int(cons["maxLength"])
            col.add_mask(
                pc.greater(length, n),
                offset,
                "maxLength",
                name,
                out,
                _says("value {v} has {n} characters, at most {x} allowed", n),
            )
    if "pattern" in cons and pa.types.is_string(target):
        pattern = str(cons["pattern"])
        ok = pc.match_substring_regex(out, f"^(?:{pattern})$")
        col.add_mask(
            pc.invert(ok),
            offset,
            "pattern",
            name,
            out,
            _says("value {v} does not match the pattern {x}", repr(pattern)),
        )
    if "enum" in cons:
        allowed = _enum_set(fld)
        shown = ", ".join(_show(v) for v in allowed.to_pylist()[:20])
        bad = pc.and_(pc.invert(pc.is_in(out, value_set=allowed)), pc.is_valid(out))
        col.add_mask(
            bad,
            offset,
            "enum",
            name,
            out,
            _says("value {v} is not one of the allowed values: {x}", shown),
        )


# --------------------------------------------------------------------------- sources


@dataclass
class _Source:
    columns: list[str]
    batches: Iterator[pa.RecordBatch]
    #: sorted 1-based data row numbers of CSV rows skipped as ragged
    skipped: list[int] = field(default_factory=list)
    text: bool = False


def _open_parquet(path: Path) -> _Source:
    try:
        pf = pq.ParquetFile(path)
        columns = list(pf.schema_arrow.names)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "unreadable"
        raise _Unreadable(f"not a readable Parquet file ({_one_line(exc)})") from None

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        it = pf.iter_batches(batch_size=_BATCH_ROWS)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001
                raise _Unreadable(
                    f"Parquet data cannot be read after row {done} ({_one_line(exc)})"
                ) from None
            done += batch.num_rows
            yield batch

    return _Source(columns, batches())


def _detect_delimiter(header: str, names: set[str]) -> str:
    best, best_score = ",", (-1, -1)
    for delim in (",", ";"):
        cells = next(csv.reader([header], delimiter=delim), [])
        score = (sum(c.strip() in names for c in cells), len(cells))
        if score > best_score:
            best, best_score = delim, score
    return best


def _first_bad_utf8(arr: pa.Array) -> int:
    lo, hi = 0, len(arr)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            arr.slice(lo, mid - lo).cast(pa.string())
        except pa.ArrowInvalid:
            hi = mid
        else:
            lo = mid
    return lo


def _open_csv(path: Path, names: set[str], skipped_out: list[tuple[int, int, int, str]]) -> _Source:
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    try:
        header = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            f"header line is not valid UTF-8 at byte {exc.start} (the file must be UTF-8 encoded)"
        ) from None
    if not header.strip():
        raise _Unreadable("the first line (header) is empty")
    delim = _detect_delimiter(header, names)
    columns = next(csv.reader([header], delimiter=delim))

    too_ragged = (
        f"more than {_MAX_RAGGED} rows do not have the header's {len(columns)} cells"
        " (wrong delimiter or quoting?)"
    )

    def on_invalid(row: Any) -> str:
        if len(skipped_out) >= _MAX_RAGGED:
            return "error"
        text = row.text if len(row.text) <= 200 else row.text[:200]
        skipped_out.append((int(row.number) - 1, row.expected_columns, row.actual_columns, text))
        return "skip"

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(
                delimiter=delim, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.binary() for c in columns}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        if len(skipped_out) >= _MAX_RAGGED:
            raise _Unreadable(too_ragged) from None
        raise _Unreadable(f"not a readable CSV file ({_one_line(exc)})") from None
    columns = list(reader.schema.names)

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as exc:
                if len(skipped_out) >= _MAX_RAGGED:
                    raise _Unreadable(too_ragged) from None
                raise _Unreadable(
                    f"CSV cannot be parsed after data row {done} ({_one_line(exc)})"
                ) from None
            arrays = []
            for i, arr in enumerate(batch.columns):
                try:
                    arrays.append(arr.cast(pa.string()))
                except pa.ArrowInvalid:
                    bad = _first_bad_utf8(arr)
                    raise _Unreadable(
                        f"value {arr[bad].as_py()!r} in column {columns[i]} is not valid UTF-8 "
                        "(the file must be UTF-8 encoded)",
                        row_index=done + bad,
                    ) from None
            done += batch.num_rows
            yield pa.RecordBatch.from_arrays(arrays, names=columns)

    return _Source(columns, batches(), text=True)


def _row_mapper(skipped: Sequence[int]) -> Callable[[int], int]:
    """Parsed-row index (0-based, ragged rows removed) → 1-based data row number."""
    s = np.sort(np.asarray(skipped, dtype=np.int64))
    valid_before = s - np.arange(1, len(s) + 1)

    def row_of(k: int) -> int:
        return k + 1 + int(np.searchsorted(valid_before, k, side="right"))

    return row_of


# --------------------------------------------------------------------------- whole-table checks


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _duplicates(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    keys: Sequence[str],
    limit: int,
    skip_nulls: str,
) -> tuple[int, list[tuple[list[Any], list[int]]]]:
    """(number of rows repeating an earlier key, [(key values, first row indices)])."""
    cols = ", ".join(f'"{k}"' for k in keys)
    con.register("_t", table)
    try:
        total = _scalar(
            con,
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM _t "
            f"WHERE {skip_nulls} GROUP BY {cols} HAVING count(*) > 1)",
        )
        rows = con.execute(
            f"SELECT {cols}, list(__k ORDER BY __k)[1:6] AS ks FROM _t WHERE {skip_nulls} "
            f"GROUP BY {cols} HAVING count(*) > 1 ORDER BY min(__k) LIMIT {int(limit)}"
        ).fetchall()
    finally:
        con.unregister("_t")
    return int(total), [(list(r[:-1]), list(r[-1])) for r in rows]


def _check_keys(
    col: _Collector,
    descriptor: dict[str, Any],
    table: pa.Table,
    row_of: Callable[[int], int],
    skip: set[str],
) -> None:
    """``unique`` and ``primaryKey`` over the whole table (columns in ``skip`` are unusable)."""
    present = set(table.column_names) - skip
    unique_fields = [
        f["name"]
        for f in descriptor["fields"]
        if (f.get("constraints") or {}).get("unique") and f["name"] in present
    ]
    pk = list(primary_key(descriptor))
    if not unique_fields and not pk:
        return
    if pk and not set(pk) <= present - skip:
        pk = []
    needed = sorted(set(unique_fields) | set(pk))
    indexed = table.select(needed).append_column(
        "__k", pa.array(np.arange(table.num_rows, dtype=np.int64))
    )
    con = duckdb.connect()
    try:
        for name in unique_fields:
            total, groups = _duplicates(con, indexed, [name], col.room + 1, f'"{name}" IS NOT NULL')
            shown = 0
            for key, ks in groups:
                if shown >= col.room:
                    break
                rows = [row_of(k) for k in ks]
                col.add_row(
                    rows[1],
                    "unique",
                    f"value {_show(key[0])} must be unique but also appears in row {rows[0]}",
                    field=name,
                )
                shown += 1
            col.total += total - shown
        if pk:
            label = "+".join(pk)
            all_null = " AND ".join(f'"{k}" IS NULL' for k in pk)
            con.register("_t", indexed)
            try:
                n_null = _scalar(con, f"SELECT count(*) FROM _t WHERE {all_null}")
                first_null = con.execute(
                    f"SELECT __k FROM _t WHERE {all_null} ORDER BY __k LIMIT {col.room}"
                ).fetchall()
            finally:
                con.unregister("_t")
            for (k,) in first_null:
                col.add_row(row_of(k), "primary-key", f"primary key {label} is empty", field=label)
            col.total += n_null - len(first_null)
            total, groups = _duplicates(con, indexed, pk, col.room + 1, f"NOT ({all_null})")
            shown = 0
            for key, ks in groups:
                if shown >= col.room:
                    break
                rows = [row_of(k) for k in ks]
                values = ", ".join(f"{k}={_show(v)}" for k, v in zip(pk, key, strict=True))
                col.add_row(
                    rows[1],
                    "primary-key",
                    f"duplicate primary key ({values}), already in row {rows[0]}"
                    + (f"; also in rows {', '.join(map(str, rows[2:]))}" if len(rows) > 2 else ""),
                    field=label,
                )
                shown += 1
            col.total += total - shown
    finally:
        con.close()


# --------------------------------------------------------------------------- API


def _is_parquet(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".parq"):
        return True
    if suffix in (".csv", ".txt", ".tsv"):
        return False
    with path.open("rb") as fh:
        return fh.read(4) == _PARQUET_MAGIC


def read_table(
    path: Path | str, descriptor: dict[str, Any], *, max_violations: int = MAX_VIOLATIONS
) -> pa.Table:
    """Read a Parquet or CSV file conformed to ``arrow_schema(descriptor)``.

    CSV files must be UTF-8 (a BOM is allowed), with a header line and a comma
    or semicolon delimiter (detected from the header). Raises
    :class:`ValidationError` listing every violation found (at most
    ``max_violations`` with details, all counted).
    """
    path = Path(path)
    label = str(path)
    col = _Collector(label, max_violations)
    fields = descriptor["fields"]
    names = [f["name"] for f in fields]
    missing = pa.array([str(v) for v in descriptor.get("missingValues", [""])], pa.string())
    ragged: list[tuple[int, int, int, str]] = []

    def fail(exc: _Unreadable, row_of: Callable[[int], int] = lambda k: k + 1) -> ValidationError:
        row = None if exc.row_index is None else row_of(exc.row_index)
        violations = [Violation(label, row, None, "file-unreadable", exc.message)]
        violations += col.violations(row_of)
        return ValidationError(label, violations, col.total + 1)

    try:
        if not path.is_file():
            raise _Unreadable("file not found" if not path.exists() else "not a regular file")
        if path.stat().st_size == 0:
            raise _Unreadable("file is empty (0 bytes)")
        source = _open_parquet(path) if _is_parquet(path) else _open_csv(path, set(names), ragged)
    except _Unreadable as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(_Unreadable(f"cannot open file ({_one_line(exc)})")) from None

    # header
    seen: set[str] = set()
    for name in source.columns:
        if name in seen:
            col.add("duplicate-column", f"column {name} appears more than once", field=name)
        seen.add(name)
    known = set(names)
    for name in names:
        if name not in seen:
            col.add("missing-column", "column required by the schema is absent", field=name)
    for name in source.columns:
        if name not in known:
            hint = ""
            if source.text and len(source.columns) == 1 and re.search(r"[\t|]", name):
                hint = " (the delimiter must be a comma or a semicolon)"
            col.add("extra-column", f"column {name!r} is not in the schema{hint}", field=name)
    index = {name: source.columns.index(name) for name in names if name in seen}

    chunks: dict[str, list[pa.Array]] = {name: [] for name in index}
    whole_column_problem: set[str] = set()
    offset = 0
    try:
        for batch in source.batches:
            for fld in fields:
                name = fld["name"]
                if name not in index:
                    continue
                raw = batch.column(index[name])
                out, bad, problem = _conform(raw, fld, missing)
                if problem and name not in whole_column_problem:
                    whole_column_problem.add(name)
                    col.add("type", problem, field=name)
                if bad is not None:
                    expected = _field_label(fld)
                    col.add_mask(
                        bad,
                        offset,
                        "type",
                        name,
                        raw,
                        _says("value {v} is not a valid {x}", expected),
                    )
                if not problem:
                    _check_constraints(col, fld, out, bad, offset, raw)
                chunks[name].append(out)
            offset += batch.num_rows
    except _Unreadable as exc:
        raise fail(exc, _row_mapper([r[0] for r in ragged])) from None

    for data_row, n_header, n_cells, text in ragged:
        rule = "extra-cell" if n_cells > n_header else "missing-cell"
        snippet = text if len(text) <= 80 else text[:77] + "..."
        col.add_row(
            data_row,
            rule,
            f"row has {n_cells} cells, the header has {n_header}: {snippet!r}",
            field=None,
        )
    row_of = _row_mapper([r[0] for r in ragged])

    schema = arrow_schema(descriptor)
    arrays = {name: pa.chunked_array(chunks[name], schema.field(name).type) for name in chunks}
    table = pa.table(arrays) if arrays else pa.table({})
    if not col.total or not (set(names) - set(arrays)):
        _check_keys(col, descriptor, table, row_of, whole_column_problem)

    if col.total:
        # row-less violations first, then by row, keeping discovery order otherwise
        violations = col.violations(row_of)
        violations.sort(key=lambda v: (v.row is not None, v.row or 0))
        raise ValidationError(label, violations, col.total)
    return pa.table([arrays[n] for n in names], schema=schema)


def check_foreign_keys(
    tables: dict[str, pa.Table], descriptors: dict[str, dict[str, Any]], *, limit: int = 20
) -> list[Violation]:
    """Foreign keys between tables of one file set (both ends present), checked in DuckDB.

    ``tables`` and ``descriptors`` are keyed by concrete table name
    (``T_MCO23C``); a reference to a yearly template (``T_MCOaaB``) resolves to
    the same year's table. References to absent tables are skipped. Rows whose
    key cells are all null are not checked. ``row`` is the 1-based row of the
    referencing table.
    """
    from jupyterlab_hdh.data.snds_schemas import resolve

    out: list[Violation] = []
    con = duckdb.connect()
    try:
        for name in sorted(tables):
            descriptor = descriptors[name]
            year = resolve(name).year
            for fk in descriptor.get("foreignKeys", []):
                src = fk["fields"]
                src = [src] if isinstance(src, str) else list(src)
                ref = fk["reference"]
                ref_fields = ref["fields"]
                ref_fields = [ref_fields] if isinstance(ref_fields, str) else list(ref_fields)
                target = ref["resource"] or name
                if "aa" in target and year is not None:
                    target = target.replace("aa", f"{year % 100:02d}")
                if target not in tables:
                    continue
                child, parent = tables[name], tables[target]
                if not set(src) <= set(child.column_names):
                    continue
                if not set(ref_fields) <= set(parent.column_names):
                    continue
                con.register(
                    "_c",
                    child.select(src).append_column(
                        "__k", pa.array(np.arange(child.num_rows, dtype=np.int64))
                    ),
                )
                con.register("_p", parent.select(ref_fields))
                cond = " AND ".join(
                    f'c."{a}" = p."{b}"' for a, b in zip(src, ref_fields, strict=True)
                )
                not_all_null = " OR ".join(f'c."{a}" IS NOT NULL' for a in src)
                where = f"({not_all_null}) AND NOT EXISTS (SELECT 1 FROM _p p WHERE {cond})"
                n = _scalar(con, f"SELECT count(*) FROM _c c WHERE {where}")
                selected = ", ".join(f'c."{a}"' for a in src)
                rows = con.execute(
                    f"SELECT c.__k, {selected} FROM _c c "
                    f"WHERE {where} ORDER BY c.__k LIMIT {int(limit)}"
                ).fetchall()
                con.unregister("_c")
                con.unregister("_p")
                label = "+".join(src)
                for k, *vals in rows:
                    values = ", ".join(f"{a}={_show(v)}" for a, v in zip(src, vals, strict=True))
                    out.append(
                        Violation(
                            name,
                            int(k) + 1,
                            label,
                            "foreign-key",
                            f"({values}) has no match in {target}.{'+'.join(ref_fields)}"
                            + (f" ({n} rows in all)" if n > len(rows) else ""),
                        )
                    )
    finally:
        con.close()
    return out
