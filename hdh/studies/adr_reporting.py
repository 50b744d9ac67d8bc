"""``adr-reporting``: adverse-drug-reaction reporting rates among new users of each drug class.

A *new use* is a person (``BEN_IDT_ANO``) and a drug class of :data:`DRUGS` (ATC prefixes)
whose first clean dispensing of the class (DCIR ``ER_PRS_F`` ⋈ ``ER_PHA_F`` without
information-only lines or regularisations, ATC from ``IR_PHA_R``; the first in the whole
extract) falls in the period ``start`` to ``end``, both included. The period should begin
at least a year after the extract does, so that this year serves as the washout that makes
a first dispensing a new use. A *report* counts for a new use when it is a pharmacovigilance
case (``HDH_PV_CAS``) of the same person whose suspected drug (``PHA_ATC_C07``) is in the
class and whose reaction began (``PV_EFF_DTD``) between the first dispensing and
``window_days`` days after it, both included; a new use can have several reports.

:func:`new_uses` gives one row per new use: ``BEN_IDT_ANO``, ``drug``, ``first_day``,
``reports``, ``serious`` (reports with ``PV_GRA_TOP``) and one count per reporter type of
:data:`REPORTERS` (``PV_DCL_TYP``). :func:`headline` (:func:`summarise` of those) gives
``n_new_users`` (persons with at least one new use), per drug class and ``overall`` (every
new use of every class: a person counts once per class) ``new_users``, ``reports``,
``serious`` and ``rate_per_1000`` (reports per 1 000 new users), the reports per reporter
type (``reporters``), and the parameters. It works on native frames of one library
(pandas, Polars, DuckDB, PyArrow, PySpark, cuDF: whatever :mod:`hdh.cohort` takes);
:func:`read_tables` reads them with :func:`hdh.read`, projected on the columns used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import narwhals as nw

from hdh import cohort
from hdh.cohort._frames import as_date, collect, day_number, wrap
from hdh.errors import BadArgument

from ._common import (
    DRUG_COLUMNS,
    LINK_COLUMNS,
    PERSON,
    PHA_COLUMNS,
    PRS_COLUMNS,
    dispensings,
    parse_date,
    read,
)

#: The drug classes, as ATC prefixes (a code counts in the first class it matches).
DRUGS: dict[str, tuple[str, ...]] = {
    "antiplatelet": ("B01AC",),
    "anticoagulant": ("B01AF",),
    "statin": ("C10AA",),
    "raas_agent": ("C09",),
    "beta_blocker": ("C07",),
    "diuretic": ("C03",),
    "antiparkinsonian": ("N04B",),
    "antibacterial": ("J01",),
    "nsaid": ("M01",),
    "tramadol": ("N02AX",),
    "paracetamol": ("N02BE",),
    "proton_pump_inhibitor": ("A02BC",),
}
#: Reporter types of ``PV_DCL_TYP`` counted one by one.
REPORTERS = ("physician", "pharmacist", "other_hcp", "patient")
#: The default period of first dispensings (the extract's first year is the washout).
START = "2020-01-01"
END = "2022-12-31"
#: Days after the first dispensing in which a reaction's onset counts.
WINDOW_DAYS = 365
#: The columns read from each table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "ER_PRS_F": PRS_COLUMNS,
    "ER_PHA_F": PHA_COLUMNS,
    "IR_PHA_R": DRUG_COLUMNS,
    "IR_BEN_R": LINK_COLUMNS,
    "HDH_PV_CAS": (PERSON, "PHA_ATC_C07", "PV_EFF_DTD", "PV_GRA_TOP", "PV_DCL_TYP"),
}
_COUNTS = ("reports", "serious", *REPORTERS)


def read_tables(dataset: str, engine: str | None = None, version: str | None = None) -> dict:
    """The study's tables of ``dataset`` as native frames of ``engine``."""
    return read(COLUMNS, dataset, engine, version)


def _day(value: Any, name: str) -> int:
    """Days since 1970-01-01 of an ISO date (text or :class:`datetime.date`)."""
    return (parse_date(value, name) - dt.date(1970, 1, 1)).days


def _drug(atc: str) -> nw.Expr:
    """The class of :data:`DRUGS` that ``atc`` falls in (the first that matches), or null."""
    drug: nw.Expr = nw.lit(None, nw.String)
    for name, prefixes in reversed(DRUGS.items()):
        drug = nw.when(cohort.code_matches(atc, prefixes)).then(nw.lit(name)).otherwise(drug)
    return drug


def _classified(frame: Any, atc: str) -> Any:
    """``frame``'s rows whose ``atc`` is in a class of :data:`DRUGS`, with its name as ``drug``."""
    return frame.with_columns(_drug(atc).alias("drug")).filter(~nw.col("drug").is_null())


def new_uses(
    tables: Mapping[str, Any],
    start: str | dt.date = START,
    end: str | dt.date = END,
    window_days: int = WINDOW_DAYS,
) -> Any:
    """One row per new use (see the module docstring): ``BEN_IDT_ANO``, ``drug``,
    ``first_day`` (a date), ``reports``, ``serious`` and a count per reporter of
    :data:`REPORTERS`; a native frame of the tables' library."""
    if not isinstance(window_days, int) or isinstance(window_days, bool) or window_days < 0:
        raise BadArgument(f"window_days must be a whole number >= 0, got {window_days!r}")
    first_day, last_day = _day(start, "start"), _day(end, "end")
    if last_day < first_day:
        raise BadArgument(f"the period ends ({end}) before it starts ({start})")
    events = wrap(dispensings(tables))
    events = events.select(
        nw.col("patient").cast(nw.String).alias(PERSON), "group", as_date(nw.col("start"), events)
    )
    first = (
        _classified(events, "group")
        .group_by(PERSON, "drug")
        .agg(nw.col("start").min().alias("first_day"))
    )
    day = day_number(nw.col("first_day"))
    users = first.filter((day >= first_day) & (day <= last_day))

    cases = wrap(tables["HDH_PV_CAS"], "HDH_PV_CAS")
    cases = cases.select(
        nw.col(PERSON).cast(nw.String),
        "PHA_ATC_C07",
        as_date(nw.col("PV_EFF_DTD"), cases).alias("onset"),
        nw.col("PV_GRA_TOP").fill_null(False).cast(nw.Int64).alias("serious"),
        *(
            (nw.col("PV_DCL_TYP") == reporter).fill_null(False).cast(nw.Int64).alias(reporter)
            for reporter in REPORTERS
        ),
    )
    delay = day_number(nw.col("onset")) - day_number(nw.col("first_day"))
    reported = (
        _classified(cases, "PHA_ATC_C07")
        .join(users.select(PERSON, "drug", "first_day"), on=[PERSON, "drug"], how="inner")
        .filter((delay >= 0).fill_null(False) & (delay <= window_days).fill_null(False))
        .group_by(PERSON, "drug")
        .agg(
            nw.len().alias("reports"),
            *(nw.col(name).sum() for name in ("serious", *REPORTERS)),
        )
    )
    return (
        users.join(reported, on=[PERSON, "drug"], how="left")
        .with_columns(*(nw.col(name).fill_null(0).cast(nw.Int64) for name in _COUNTS))
        .select(PERSON, "drug", "first_day", *_COUNTS)
        .to_native()
    )


def headline(
    tables: Mapping[str, Any],
    start: str | dt.date = START,
    end: str | dt.date = END,
    window_days: int = WINDOW_DAYS,
) -> dict[str, Any]:
    """The study's headline numbers from the tables of :data:`COLUMNS` (native frames)."""
    return summarise(new_uses(tables, start, end, window_days), start, end, window_days)


def _rate(reports: int, users: int) -> float | None:
    return 1000 * reports / users if users else None


def summarise(
    uses: Any,
    start: str | dt.date = START,
    end: str | dt.date = END,
    window_days: int = WINDOW_DAYS,
) -> dict[str, Any]:
    """``n_new_users``, ``drugs``, ``overall``, ``reporters`` and the parameters from
    :func:`new_uses`' frame."""
    frame = wrap(uses)
    per_drug = collect(
        frame.group_by("drug").agg(
            nw.len().alias("new_users"),
            *(nw.col(name).sum() for name in _COUNTS),
        )
    ).rows(named=True)
    found = {row["drug"]: row for row in per_drug}
    drugs: dict[str, dict[str, Any]] = {}
    for name in DRUGS:
        row = found.get(name, {})
        users, reports = int(row.get("new_users") or 0), int(row.get("reports") or 0)
        drugs[name] = {
            "new_users": users,
            "reports": reports,
            "serious": int(row.get("serious") or 0),
            "rate_per_1000": _rate(reports, users),
        }
    users = sum(d["new_users"] for d in drugs.values())
    reports = sum(d["reports"] for d in drugs.values())
    persons = collect(frame.select(nw.col(PERSON).n_unique().alias("n"))).item(0, "n")
    return {
        "n_new_users": int(persons or 0),
        "drugs": drugs,
        "overall": {
            "new_users": users,
            "reports": reports,
            "serious": sum(d["serious"] for d in drugs.values()),
            "rate_per_1000": _rate(reports, users),
        },
        "reporters": _reporters(found),
        "start": str(start),
        "end": str(end),
        "window_days": window_days,
    }


def _reporters(found: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {r: sum(int(row.get(r) or 0) for row in found.values()) for r in REPORTERS}
