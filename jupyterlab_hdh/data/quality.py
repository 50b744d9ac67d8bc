"""Data-quality report of an SNDS-shaped extract, run at ingestion.

Owns: the check types (conformance / completeness / plausibility, after Kahn
et al. as used by OHDSI's DataQualityDashboard), reading and validating the
control file ``quality_checks.csv`` that lists each check and its threshold,
and computing the report with DuckDB over the extract's Parquet files.

Control file columns (UTF-8 CSV, comma-delimited, header required)::

    check_id,check,category,subcategory,table,field,param,description,threshold_pct

* ``check_id`` unique; ``check`` one of :data:`CHECK_TYPES`; ``category`` one of
  ``conformance``, ``completeness``, ``plausibility``;
* ``table`` a table name or a yearly PMSI template (``T_MCOaaB`` applies to
  every ``T_MCOyyB`` of the extract, one result per year);
* ``threshold_pct`` the largest acceptable share of violating rows, in percent
  (0–100): a check passes when ``pct <= threshold_pct``.

Check types (``violated`` / ``denominator``; nulls are not counted unless said):

``not_null``       rows where ``field`` is null / all rows.
``regex``          values not fully matching ``param`` / non-null values.
``like``           values matching the SQL LIKE pattern ``param`` / non-null values.
``range``          values outside ``param`` = ``lo..hi`` (bounds may be
                   ``{current_year}``) / non-null values.
``in_reference``   key ``field`` (``A+B``) absent from ``param`` = ``TABLE.X+Y`` /
                   rows with a complete key; not applicable if TABLE is absent.
``date_order``     rows where ``field`` > ``param`` (another column) / rows with both.
``return_codes``   rows where any column of ``param`` (space-separated) is not
                   its OK value (``'0'``, or for boolean columns the value the
                   schema reads ``'0'`` as: false by default, true for SEJ_RET
                   whose trueValues are ['0']; either where '0' is both, as in
                   upstream's PMS_RET) or is null / all rows.
``after_death``    rows where date ``field`` > the death date, found through
                   ``param`` = ``A+B=TABLE.X+Y`` (a person is deceased when all
                   their rows carry a death date ≥ 1900: SNDS writes 1600-01-01
                   for "alive") / rows of deceased persons with a date.
``male_code``      rows whose code ``field`` starts with ``param`` and whose
                   patient is a man / rows with that code and a known sex.
                   Sex comes from T_MCOaaB.COD_SEX (T_MCOaaB itself, or A/D via
                   ETA_NUM+RSA_NUM) or ER_PRS_F.BEN_SEX_COD (ER_CAM_F, ER_PHA_F
                   via the 9 DCIR keys).
``stay_length``    T_MCOaaB stays whose ``SEJ_NBJ`` differs from the exit minus
                   entry date of the same year's ``param`` table (T_MCOaaC) /
                   joined stays with all three values.

Status: ``not_applicable`` when the table (or a table the check needs) is absent
from the extract or the denominator is 0; ``error`` when a needed column is
missing or the query fails (the reason is in ``message``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from jupyterlab_hdh.data.snds_schemas import (
    DCIR_KEYS,
    PMSI_TABLE_RE,
    UnknownTableError,
    load_schema,
    resolve,
)
from jupyterlab_hdh.data.validate import _parse_text

__all__ = [
    "CATEGORIES",
    "CHECK_TYPES",
    "DEFAULT_CHECKS",
    "QualityCheck",
    "QualityControlError",
    "load_checks",
    "quality_report",
]

DEFAULT_CHECKS = Path(__file__).with_name("quality_checks.csv")
CATEGORIES = ("conformance", "completeness", "plausibility")
COLUMNS = (
    "check_id",
    "check",
    "category",
    "subcategory",
    "table",
    "field",
    "param",
    "description",
    "threshold_pct",
)
_TEMPLATE_RE = re.compile(r"^T_MCOaa[ABCD]$")


class QualityControlError(ValueError):
    """The control file is malformed (the message names the file and line)."""


class _NotApplicable(Exception):
    pass


class _CheckError(Exception):
    pass


@dataclass(frozen=True)
class QualityCheck:
    """One row of the control file."""

    check_id: str
    check: str
    category: str
    subcategory: str
    table: str
    field: str
    param: str
    description: str
    threshold_pct: Decimal
    line: int


# --------------------------------------------------------------------------- control file


def _template_of(name: str) -> str:
    return name if _TEMPLATE_RE.match(name) else resolve(name).template


def _schema_fields(table: str) -> set[str]:
    concrete = table.replace("aa", "00") if _TEMPLATE_RE.match(table) else table
    return {f["name"] for f in load_schema(concrete)["fields"]}


def _split_ref(text: str) -> tuple[str, list[str]]:
    table, _, cols = text.partition(".")
    if not table or not cols:
        raise ValueError(f"expected TABLE.COLUMN[+COLUMN...], got {text!r}")
    return table, cols.split("+")


def _parse_range(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition("..")
    if not sep:
        raise ValueError(f"expected LOW..HIGH, got {text!r}")
    year = str(dt.date.today().year)
    try:
        return (
            float(lo.replace("{current_year}", year)),
            float(hi.replace("{current_year}", year)),
        )
    except ValueError:
        raise ValueError(f"bounds of {text!r} are not numbers") from None


def _parse_person_link(text: str) -> tuple[list[str], str, list[str]]:
    left, sep, right = text.partition("=")
    if not sep:
        raise ValueError(f"expected COLUMN[+COLUMN]=TABLE.COLUMN[+COLUMN], got {text!r}")
    table, cols = _split_ref(right)
    src = left.split("+")
    if len(src) != len(cols):
        raise ValueError(f"{text!r} links {len(src)} column(s) to {len(cols)}")
    return src, table, cols


_MALE_SEX_SOURCES = ("T_MCOaaB", "T_MCOaaA", "T_MCOaaD", "ER_CAM_F", "ER_PHA_F", "ER_PRS_F")


def _validate_param(check: QualityCheck) -> None:
    kind, p = check.check, check.param
    if kind == "regex":
        re.compile(p)
        if not p:
            raise ValueError("a regular expression is required in param")
    elif kind == "like":
        if not p:
            raise ValueError("a LIKE pattern is required in param")
    elif kind == "range":
        _parse_range(p)
    elif kind == "in_reference":
        table, cols = _split_ref(p)
        _template_of(table)
        if len(cols) != len(check.field.split("+")):
            raise ValueError(f"field {check.field!r} and reference {p!r} differ in length")
    elif kind == "date_order":
        if not p:
            raise ValueError("param must name the column that must not be earlier")
    elif kind == "return_codes":
        if not p.split():
            raise ValueError("param must list the return-code columns")
    elif kind == "after_death":
        _, table, _ = _parse_person_link(p)
        _template_of(table)
    elif kind == "male_code":
        if not p:
            raise ValueError("param must give the code prefix")
        if check.table not in _MALE_SEX_SOURCES:
            raise ValueError(f"male_code supports tables {', '.join(_MALE_SEX_SOURCES)}")
    elif kind == "stay_length" and (
        not _TEMPLATE_RE.match(check.table) or not _TEMPLATE_RE.match(p)
    ):
        raise ValueError("stay_length needs T_MCOaaB as table and T_MCOaaC as param")


def load_checks(path: Path | str | None = None) -> list[QualityCheck]:
    """Read and validate a control file (default: the shipped ``quality_checks.csv``)."""
    path = Path(path) if path is not None else DEFAULT_CHECKS
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise QualityControlError(f"{path}: cannot read the control file ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise QualityControlError(f"{path}: the control file is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise QualityControlError(
            f"{path} line 1: header lacks column(s) {', '.join(missing)} "
            f"(expected {','.join(COLUMNS)})"
        )
    checks: list[QualityCheck] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise QualityControlError(
                f"{where}: {len(row)} cells, the header has {len(header)} "
                "(quote values containing commas)"
            )
        cells = {h: c.strip() for h, c in zip(header, row, strict=True)}
        check_id = cells["check_id"]
        if not check_id:
            raise QualityControlError(f"{where}: check_id is empty")
        if check_id in seen:
            raise QualityControlError(
                f"{where}: check_id {check_id!r} already used on line {seen[check_id]}"
            )
        seen[check_id] = line
        if cells["check"] not in CHECK_TYPES:
            raise QualityControlError(
                f"{where}: unknown check type {cells['check']!r} "
                f"(known: {', '.join(sorted(CHECK_TYPES))})"
            )
        if cells["category"] not in CATEGORIES:
            raise QualityControlError(
                f"{where}: unknown category {cells['category']!r} (known: {', '.join(CATEGORIES)})"
            )
        try:
            threshold = Decimal(cells["threshold_pct"])
        except InvalidOperation:
            raise QualityControlError(
                f"{where}: threshold_pct {cells['threshold_pct']!r} is not a number"
            ) from None
        if not threshold.is_finite() or not 0 <= threshold <= 100:
            raise QualityControlError(f"{where}: threshold_pct must be between 0 and 100")
        try:
            known = _schema_fields(_template_of(cells["table"]))
        except UnknownTableError:
            raise QualityControlError(f"{where}: unknown table {cells['table']!r}") from None
        if cells["check"] != "return_codes":
            for name in cells["field"].split("+"):
                if name not in known:
                    raise QualityControlError(
                        f"{where}: table {cells['table']} has no column {name!r}"
                    )
        check = QualityCheck(
            check_id=check_id,
            check=cells["check"],
            category=cells["category"],
            subcategory=cells["subcategory"],
            table=cells["table"],
            field=cells["field"],
            param=cells["param"],
            description=cells["description"],
            threshold_pct=threshold,
            line=line,
        )
        try:
            _validate_param(check)
        except (ValueError, re.error, UnknownTableError) as exc:
            raise QualityControlError(f"{where}: invalid param for {check.check}: {exc}") from None
        checks.append(check)
    return checks


# --------------------------------------------------------------------------- extract


class _Extract:
    """The extract's tables as DuckDB views, with their columns and types."""

    def __init__(self, tables: Mapping[str, Path | str]):
        self.con = duckdb.connect()
        self.columns: dict[str, dict[str, str]] = {}
        self.by_template: dict[str, list[str]] = {}
        for name in sorted(tables):
            try:
                template = resolve(name).template
            except UnknownTableError:
                template = name
            path = str(Path(tables[name])).replace("'", "''")
            self.con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")
            described = self.con.execute(f'DESCRIBE "{name}"').fetchall()
            self.columns[name] = {r[0]: str(r[1]) for r in described}
            self.by_template.setdefault(template, []).append(name)

    def instances(self, table: str) -> list[str]:
        return self.by_template.get(table, [])

    def sibling(self, name: str, table: str) -> str:
        """``table`` (possibly a template) as found next to ``name`` (same PMSI year)."""
        if _TEMPLATE_RE.match(table):
            m = PMSI_TABLE_RE.match(name)
            if not m:
                raise _CheckError(f"{table} is yearly but {name} is not")
            table = f"T_MCO{m['yy']}{table[-1]}"
        if table not in self.columns:
            raise _NotApplicable(f"table {table} is absent from the extract")
        return table

    def need(self, table: str, *cols: str) -> None:
        absent = [c for c in cols if c not in self.columns[table]]
        if absent:
            raise _CheckError(f"column(s) {', '.join(absent)} absent from {table}")

    def one(self, sql: str, params: list[Any] | None = None) -> tuple[int, int]:
        row = self.con.execute(sql, params or []).fetchone()
        assert row is not None
        return int(row[0] or 0), int(row[1] or 0)

    def key_eq(self, a: str, ta: str, ca: str, b: str, tb: str, cb: str) -> str:
        """SQL equality of ``a.ca`` (table ``ta``) and ``b.cb``, robust to differing types."""
        ya, yb = self.columns[ta][ca], self.columns[tb][cb]
        left, right = f"{a}.{_q(ca)}", f"{b}.{_q(cb)}"
        if ya == yb:
            return f"{left} = {right}"
        ints = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")
        if ya in ints or yb in ints:
            return f"TRY_CAST({left} AS BIGINT) = TRY_CAST({right} AS BIGINT)"
        return f"CAST({left} AS VARCHAR) = CAST({right} AS VARCHAR)"

    def close(self) -> None:
        self.con.close()


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


# --------------------------------------------------------------------------- check types


def _not_null(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    x.need(t, c.field)
    return x.one(f"SELECT count(*) FILTER (WHERE {_q(c.field)} IS NULL), count(*) FROM {_q(t)}")


def _regex(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    x.need(t, c.field)
    v = f"CAST({_q(c.field)} AS VARCHAR)"
    return x.one(
        f"SELECT count(*) FILTER (WHERE NOT regexp_full_match({v}, ?)), count({v}) FROM {_q(t)}",
        [c.param],
    )


def _like(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    x.need(t, c.field)
    v = f"CAST({_q(c.field)} AS VARCHAR)"
    return x.one(f"SELECT count(*) FILTER (WHERE {v} LIKE ?), count({v}) FROM {_q(t)}", [c.param])


def _range(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    x.need(t, c.field)
    lo, hi = _parse_range(c.param)
    v = f"CAST({_q(c.field)} AS DOUBLE)"
    return x.one(
        f"SELECT count(*) FILTER (WHERE {v} < ? OR {v} > ?), count({v}) FROM {_q(t)}", [lo, hi]
    )


def _in_reference(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    cols = c.field.split("+")
    ref_table, ref_cols = _split_ref(c.param)
    ref = x.sibling(t, ref_table)
    x.need(t, *cols)
    x.need(ref, *ref_cols)
    complete = " AND ".join(f"s.{_q(a)} IS NOT NULL" for a in cols)
    cond = " AND ".join(
        x.key_eq("s", t, a, "r", ref, b) for a, b in zip(cols, ref_cols, strict=True)
    )
    return x.one(
        f"SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {_q(ref)} r WHERE {cond})), "
        f"count(*) FROM {_q(t)} s WHERE {complete}"
    )


def _date_order(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    x.need(t, c.field, c.param)
    a, b = f"CAST({_q(c.field)} AS TIMESTAMP)", f"CAST({_q(c.param)} AS TIMESTAMP)"
    return x.one(
        f"SELECT count(*) FILTER (WHERE {a} > {b}), "
        f"count(*) FILTER (WHERE {a} IS NOT NULL AND {b} IS NOT NULL) FROM {_q(t)}"
    )


def _ok_values(table: str, column: str) -> list[Any]:
    """The values the schema reads the return code ``'0'`` as (``['0']`` for strings).

    For a boolean column the schema's ``trueValues``/``falseValues`` decide
    (``SEJ_RET`` reads ``'0'`` as true); where ``'0'`` is both (upstream's
    ``PMS_RET``) either value is accepted.
    """
    fields = {f["name"]: f for f in load_schema(table)["fields"]}
    fld = fields.get(column, {"name": column, "type": "string"})
    if (
        fld.get("type") == "boolean"
        and "0" in fld.get("trueValues", ())
        and "0" in fld.get("falseValues", ())
    ):
        return [True, False]
    value = _parse_text(pa.array(["0"], pa.string()), fld)[0].as_py()
    return [] if value is None else [value]


def _return_codes(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    present = [col for col in c.param.split() if col in x.columns[t]]
    if not present:
        raise _CheckError(f"none of the return-code columns {c.param} is in {t}")
    terms = []
    for col in present:
        ok = _ok_values(t, col)
        if not ok:
            raise _CheckError(f"schema of {t} cannot read '0' in {col}")
        if all(isinstance(v, bool) for v in ok):
            literals = ", ".join("TRUE" if v else "FALSE" for v in ok)
            terms.append(f"({_q(col)} IS NULL OR {_q(col)} NOT IN ({literals}))")
        else:
            literals = ", ".join(f"'{v}'" for v in ok)
            terms.append(f"({_q(col)} IS NULL OR CAST({_q(col)} AS VARCHAR) NOT IN ({literals}))")
    return x.one(f"SELECT count(*) FILTER (WHERE {' OR '.join(terms)}), count(*) FROM {_q(t)}")


def _after_death(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    src, ref_table, ref_cols = _parse_person_link(c.param)
    ref = x.sibling(t, ref_table)
    x.need(t, c.field, *src)
    x.need(ref, "BEN_DCD_DTE", *ref_cols)
    group = ", ".join(_q(r) for r in ref_cols)
    dead = (
        f"SELECT {group}, max(CAST(BEN_DCD_DTE AS DATE)) AS dcd FROM {_q(ref)} "
        f"GROUP BY {group} HAVING count(*) = count(*) FILTER "
        f"(WHERE CAST(BEN_DCD_DTE AS DATE) >= DATE '1900-01-01')"
    )
    x.con.execute(f"CREATE OR REPLACE TEMP TABLE _dead AS {dead}")
    x.columns["_dead"] = {r: x.columns[ref][r] for r in ref_cols}
    cond = " AND ".join(
        x.key_eq("s", t, a, "d", "_dead", b) for a, b in zip(src, ref_cols, strict=True)
    )
    care = f"CAST(s.{_q(c.field)} AS DATE)"
    return x.one(
        f"SELECT count(*) FILTER (WHERE {care} > d.dcd), count(*) "
        f"FROM {_q(t)} s JOIN _dead d ON {cond} WHERE {care} IS NOT NULL"
    )


def _male_code(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    template = _template_of(t)
    x.need(t, c.field)
    code = f"CAST(s.{_q(c.field)} AS VARCHAR) LIKE ? || '%'"
    if template == "T_MCOaaB":
        x.need(t, "COD_SEX")
        sql = (
            f"SELECT count(*) FILTER (WHERE CAST(s.COD_SEX AS VARCHAR) = '1'), count(*) "
            f"FROM {_q(t)} s WHERE {code} AND s.COD_SEX IS NOT NULL"
        )
    elif template in ("T_MCOaaA", "T_MCOaaD"):
        b = x.sibling(t, "T_MCOaaB")
        x.need(t, "ETA_NUM", "RSA_NUM")
        x.need(b, "ETA_NUM", "RSA_NUM", "COD_SEX")
        cond = " AND ".join(x.key_eq("s", t, k, "b", b, k) for k in ("ETA_NUM", "RSA_NUM"))
        sql = (
            f"SELECT count(*) FILTER (WHERE CAST(b.COD_SEX AS VARCHAR) = '1'), count(*) "
            f"FROM {_q(t)} s JOIN {_q(b)} b ON {cond} WHERE {code} AND b.COD_SEX IS NOT NULL"
        )
    elif template == "ER_PRS_F":
        x.need(t, "BEN_SEX_COD")
        sql = (
            f"SELECT count(*) FILTER (WHERE CAST(s.BEN_SEX_COD AS VARCHAR) = '1'), count(*) "
            f"FROM {_q(t)} s WHERE {code} AND s.BEN_SEX_COD IS NOT NULL"
        )
    else:
        p = x.sibling(t, "ER_PRS_F")
        x.need(t, *DCIR_KEYS)
        x.need(p, *DCIR_KEYS, "BEN_SEX_COD")
        cond = " AND ".join(x.key_eq("s", t, k, "p", p, k) for k in DCIR_KEYS)
        sql = (
            f"SELECT count(*) FILTER (WHERE CAST(p.BEN_SEX_COD AS VARCHAR) = '1'), count(*) "
            f"FROM {_q(t)} s JOIN {_q(p)} p ON {cond} "
            f"WHERE {code} AND p.BEN_SEX_COD IS NOT NULL"
        )
    return x.one(sql, [c.param])


def _stay_length(x: _Extract, c: QualityCheck, t: str) -> tuple[int, int]:
    dates = x.sibling(t, c.param)
    x.need(t, c.field, "ETA_NUM", "RSA_NUM")
    x.need(dates, "ETA_NUM", "RSA_NUM", "EXE_SOI_DTD", "EXE_SOI_DTF")
    cond = " AND ".join(x.key_eq("b", t, k, "d", dates, k) for k in ("ETA_NUM", "RSA_NUM"))
    days = "date_diff('day', CAST(d.EXE_SOI_DTD AS DATE), CAST(d.EXE_SOI_DTF AS DATE))"
    n = f"b.{_q(c.field)}"
    return x.one(
        f"SELECT count(*) FILTER (WHERE {n} <> {days}), count(*) "
        f"FROM {_q(t)} b JOIN {_q(dates)} d ON {cond} "
        f"WHERE {n} IS NOT NULL AND d.EXE_SOI_DTD IS NOT NULL AND d.EXE_SOI_DTF IS NOT NULL"
    )


CHECK_TYPES: dict[str, Callable[[_Extract, QualityCheck, str], tuple[int, int]]] = {
    "not_null": _not_null,
    "regex": _regex,
    "like": _like,
    "range": _range,
    "in_reference": _in_reference,
    "date_order": _date_order,
    "return_codes": _return_codes,
    "after_death": _after_death,
    "male_code": _male_code,
    "stay_length": _stay_length,
}


# --------------------------------------------------------------------------- report


def _result(check: QualityCheck, table: str) -> dict[str, Any]:
    return {
        "check_id": check.check_id,
        "category": check.category,
        "subcategory": check.subcategory,
        "table": table,
        "field": check.field,
        "description": check.description,
        "violated": None,
        "denominator": None,
        "pct": None,
        "threshold_pct": float(check.threshold_pct),
        "status": "not_applicable",
        "message": None,
    }


def _run(x: _Extract, check: QualityCheck, table: str) -> dict[str, Any]:
    out = _result(check, table)
    try:
        violated, denominator = CHECK_TYPES[check.check](x, check, table)
    except _NotApplicable as exc:
        out["message"] = str(exc)
        return out
    except _CheckError as exc:
        out["status"], out["message"] = "error", str(exc)
        return out
    except duckdb.Error as exc:
        out["status"] = "error"
        out["message"] = " ".join(str(exc).split())[:300]
        return out
    out["violated"], out["denominator"] = violated, denominator
    if denominator == 0:
        out["pct"] = 0.0
        out["message"] = "no rows to check"
        return out
    out["pct"] = round(100.0 * violated / denominator, 4)
    # exact comparison: pct == threshold passes
    passed = Decimal(violated) * 100 <= check.threshold_pct * Decimal(denominator)
    out["status"] = "passed" if passed else "failed"
    return out


def quality_report(
    tables: Mapping[str, Path | str], checks_csv: Path | str | None = None
) -> dict[str, Any]:
    """Run the control file's checks on an extract given as ``{table name: Parquet path}``.

    Returns a JSON-serialisable report, checks in control-file order (and by
    table name within a yearly template).
    """
    checks = load_checks(checks_csv)
    x = _Extract(tables)
    results: list[dict[str, Any]] = []
    try:
        for check in checks:
            template = _template_of(check.table)
            names = x.instances(template)
            if not names:
                res = _result(check, check.table)
                res["message"] = f"table {check.table} is absent from the extract"
                results.append(res)
                continue
            results.extend(_run(x, check, name) for name in names)
    finally:
        x.close()
    summary = {status: 0 for status in ("passed", "failed", "not_applicable", "error")}
    for res in results:
        summary[res["status"]] += 1
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "control_file": Path(checks_csv).name if checks_csv else DEFAULT_CHECKS.name,
        "tables": sorted(tables),
        "checks": results,
        "summary": summary,
    }
