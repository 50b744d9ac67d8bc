"""``parkinson-trajectories``: the first treatment line of new antiparkinsonian users.

New users are the persons (``BEN_IDT_ANO``) whose first clean dispensing of an
antiparkinsonian drug (ATC ``N04B``) comes after a wash-out: no such dispensing from
``washout_start`` for ``washout_days`` days. Their first line is the class dispensed on that
first day, levodopa first when several are (``N04BA`` levodopa, ``N04BC`` dopamine
agonist, ``N04BD`` MAO-B inhibitor, anything else of ``N04B`` ``other``). Age at the first
dispensing is its year minus ``BEN_NAI_ANN``; the guidelines start young patients (before
70) on an agonist or a MAO-B inhibitor and older ones on levodopa.

:func:`person_lines` gives one row per new user (``first_day``, ``line``, ``age``,
``age_group`` ``"<70"``/``"70+"``); :func:`summarise` the headline: ``n``, and overall and
for each age group ``n`` and the share of each first line; :func:`headline` both. Native
frames of one library, as :mod:`hdh.cohort` takes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import narwhals as nw

from hdh import cohort
from hdh.cohort._frames import collect, wrap
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

#: First lines in order of precedence (a first day with several classes counts the first).
LINES: dict[str, tuple[str, ...]] = {
    "levodopa": ("N04BA",),
    "agonist": ("N04BC",),
    "maob": ("N04BD",),
    "other": ("N04B",),
}
YOUNG_BEFORE = 70

COLUMNS: dict[str, tuple[str, ...]] = {
    "ER_PRS_F": PRS_COLUMNS,
    "ER_PHA_F": PHA_COLUMNS,
    "IR_PHA_R": DRUG_COLUMNS,
    "IR_BEN_R": (*LINK_COLUMNS, "BEN_NAI_ANN"),
}


def read_tables(dataset: str, engine: str | None = None, version: str | None = None) -> dict:
    """The study's tables of ``dataset`` as native frames of ``engine``."""
    return read(COLUMNS, dataset, engine, version)


def _line_rank() -> nw.Expr:
    """1 for the first class of :data:`LINES` the ATC code falls in, 2 for the next…"""
    names = list(LINES)
    expr: nw.Expr = nw.lit(len(names), nw.Int64)
    for rank in range(len(names) - 1, 0, -1):
        match = cohort.code_matches("group", LINES[names[rank - 1]])
        expr = nw.when(match).then(nw.lit(rank, nw.Int64)).otherwise(expr)
    return expr


def person_lines(
    tables: Mapping[str, Any], washout_start: Any = "2019-01-01", washout_days: int = 365
) -> Any:
    """One row per new user: ``BEN_IDT_ANO``, ``first_day``, ``line``, ``age``, ``age_group``."""
    start = parse_date(washout_start, "washout_start")
    if not isinstance(washout_days, int) or isinstance(washout_days, bool) or washout_days < 0:
        raise BadArgument(f"washout_days must be a whole number >= 0, got {washout_days!r}")
    incident_from = start + dt.timedelta(days=washout_days)
    drugs = wrap(cohort.match_codes(dispensings(tables), "group", ["N04B"])).select(
        nw.col("patient").alias(PERSON), "start", _line_rank().alias("rank")
    )
    first = drugs.group_by(PERSON).agg(nw.col("start").min().alias("first_day"))
    names = list(LINES)
    label: nw.Expr = nw.lit(names[-1], nw.String)
    for rank in range(len(names) - 1, 0, -1):
        label = nw.when(nw.col("rank") == rank).then(nw.lit(names[rank - 1])).otherwise(label)
    born = wrap(tables["IR_BEN_R"], "ir_ben_r").select(
        nw.col(PERSON).cast(nw.String), nw.col("BEN_NAI_ANN").cast(nw.Int64)
    )
    age = nw.col("first_day").dt.year().cast(nw.Int64) - nw.col("BEN_NAI_ANN")
    return (
        drugs.join(first, on=PERSON, how="inner")
        .filter(nw.col("start") == nw.col("first_day"))
        .group_by(PERSON, "first_day")
        .agg(nw.col("rank").min())
        .filter(nw.col("first_day") >= nw.lit(incident_from))
        .with_columns(nw.col(PERSON).cast(nw.String))
        .join(born.unique(), on=PERSON, how="inner")
        .select(
            PERSON,
            "first_day",
            label.alias("line"),
            age.alias("age"),
            nw.when(age < YOUNG_BEFORE)
            .then(nw.lit(f"<{YOUNG_BEFORE}"))
            .otherwise(nw.lit(f"{YOUNG_BEFORE}+"))
            .alias("age_group"),
        )
        .to_native()
    )


def summarise(persons: Any) -> dict[str, Any]:
    """``n``; overall and per age group, ``n`` and the share of each first line."""
    frame = wrap(persons)
    counts = collect(frame.group_by("age_group", "line").agg(nw.len().alias("n")))
    table: dict[str, dict[str, int]] = {}
    for row in counts.rows(named=True):
        table.setdefault(str(row["age_group"]), {})[str(row["line"])] = int(row["n"])

    def entry(by_line: dict[str, int]) -> dict[str, Any]:
        n = sum(by_line.values())
        return {
            "n": n,
            "first_line": {line: (by_line.get(line, 0) / n if n else None) for line in LINES},
            "counts": {line: by_line.get(line, 0) for line in LINES},
        }

    overall: dict[str, int] = {}
    for by_line in table.values():
        for line, n in by_line.items():
            overall[line] = overall.get(line, 0) + n
    groups = [f"<{YOUNG_BEFORE}", f"{YOUNG_BEFORE}+"]
    return {**entry(overall), "by_age_group": {g: entry(table.get(g, {})) for g in groups}}


def headline(
    tables: Mapping[str, Any], washout_start: Any = "2019-01-01", washout_days: int = 365
) -> dict[str, Any]:
    """:func:`summarise` of :func:`person_lines`, with the parameters."""
    out = summarise(person_lines(tables, washout_start, washout_days))
    out["parameters"] = {"washout_start": str(washout_start), "washout_days": washout_days}
    return out
