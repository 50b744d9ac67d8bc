"""``breast-screening``: mammography coverage of women 50-74, by age band and area.

The population is every woman (``BEN_SEX_COD = 2``, one row per ``BEN_IDT_ANO``) aged
``age_min`` to ``age_max`` at the start of the period (age = the period's first year minus
``BEN_NAI_ANN``) and not dead before it. A woman is covered when a clean DCIR line
(``ER_PRS_F`` ⋈ ``ER_CAM_F``, without information-only lines or regularisations) bills a
mammography (CCAM ``QEQK004``, screening in the organised programme, or ``QEQK001``,
bilateral mammography: opportunistic screening) with a care date in the period, both
ends included; ``organised`` when one of them is a ``QEQK004``.

:func:`person_flags` gives one row per woman (``age``, ``age_band`` as its lower bound 50,
55…, ``area`` = ``BEN_RES_DPT``, ``screened``, ``organised``); :func:`summarise` the
headline: ``n``, ``screened``, ``coverage``, ``organised_share`` (of the screened), and the
same by age band; :func:`headline` both. Native frames of one library, as
:mod:`hdh.cohort` takes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import narwhals as nw

from hdh import cohort
from hdh.cohort._frames import as_date, collect, wrap
from hdh.errors import BadArgument

from ._common import (
    CAM_COLUMNS,
    LINK_COLUMNS,
    PERSON,
    PRS_COLUMNS,
    clean_lines,
    parse_date,
    read,
)

#: CCAM codes of a mammography: screening (organised programme), bilateral (opportunistic).
SCREENING, BILATERAL = "QEQK004", "QEQK001"
BAND_YEARS = 5

COLUMNS: dict[str, tuple[str, ...]] = {
    "ER_PRS_F": PRS_COLUMNS,
    "ER_CAM_F": CAM_COLUMNS,
    "IR_BEN_R": (*LINK_COLUMNS, "BEN_SEX_COD", "BEN_NAI_ANN", "BEN_RES_DPT", "BEN_DCD_DTE"),
}


def read_tables(dataset: str, engine: str | None = None, version: str | None = None) -> dict:
    """The study's tables of ``dataset`` as native frames of ``engine``."""
    return read(COLUMNS, dataset, engine, version)


def women(ir_ben_r: Any, start: dt.date, age_min: int, age_max: int) -> Any:
    """The population: one row per woman with ``age``, ``age_band`` and ``area``."""
    ben = wrap(ir_ben_r, "ir_ben_r")
    age = nw.lit(start.year, nw.Int64) - nw.col("BEN_NAI_ANN").cast(nw.Int64)
    alive = nw.col("BEN_DCD_DTE").is_null() | (
        as_date(nw.col("BEN_DCD_DTE"), ben) >= nw.lit(start)
    ).fill_null(False)
    return (
        ben.filter((nw.col("BEN_SEX_COD").cast(nw.Int64) == 2).fill_null(False) & alive)
        .select(
            nw.col(PERSON).cast(nw.String),
            age.alias("age"),
            nw.col("BEN_RES_DPT").cast(nw.String).alias("area"),
        )
        .unique()
        .filter(((nw.col("age") >= age_min) & (nw.col("age") <= age_max)).fill_null(False))
        .with_columns(
            (age_min + (nw.col("age") - age_min) // BAND_YEARS * BAND_YEARS).alias("age_band")
        )
        .to_native()
    )


def person_flags(
    tables: Mapping[str, Any],
    period_start: Any = "2022-01-01",
    period_end: Any = "2023-12-31",
    age_min: int = 50,
    age_max: int = 74,
) -> Any:
    """One row per woman of the population with ``screened`` and ``organised`` (0/1)."""
    start, end = parse_date(period_start, "period_start"), parse_date(period_end, "period_end")
    if end < start:
        raise BadArgument(f"period_end {end} is before period_start {start}")
    for name, value in (("age_min", age_min), ("age_max", age_max)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 120:
            raise BadArgument(f"{name} must be an age in years, not {value!r}")
    if age_max < age_min:
        raise BadArgument(f"age_max {age_max} is below age_min {age_min}")
    population = wrap(women(tables["IR_BEN_R"], start, age_min, age_max))
    lines = clean_lines(tables["ER_PRS_F"], tables["ER_CAM_F"])
    acts = wrap(cohort.link_persons(lines, tables["IR_BEN_R"]))
    day = as_date(nw.col("EXE_SOI_DTD"), acts)
    code = nw.col("CAM_PRS_IDE").cast(nw.String)
    mammograms = (
        acts.filter(
            (
                code.is_in([SCREENING, BILATERAL]) & (day >= nw.lit(start)) & (day <= nw.lit(end))
            ).fill_null(False)
        )
        .select(nw.col(PERSON).cast(nw.String), (code == SCREENING).cast(nw.Int64).alias("org"))
        .group_by(PERSON)
        .agg(nw.col("org").max().alias("organised"), nw.len().alias("mammograms"))
    )
    return (
        population.join(mammograms, on=PERSON, how="left")
        .with_columns(
            nw.col("mammograms").is_null().__invert__().cast(nw.Int64).alias("screened"),
            nw.col("organised").fill_null(0).cast(nw.Int64),
        )
        .drop("mammograms")
        .to_native()
    )


def summarise(flags: Any) -> dict[str, Any]:
    """``n``, ``screened``, ``coverage``, ``organised_share`` overall and by age band."""
    frame = wrap(flags)
    sums = (
        nw.len().alias("n"),
        nw.col("screened").sum().alias("screened"),
        nw.col("organised").sum().alias("organised"),
    )

    def entry(row: Mapping[str, Any]) -> dict[str, Any]:
        n, screened, organised = (int(row[k] or 0) for k in ("n", "screened", "organised"))
        return {
            "n": n,
            "screened": screened,
            "coverage": screened / n if n else None,
            "organised_share": organised / screened if screened else None,
        }

    overall = collect(frame.select(*sums)).rows(named=True)[0]
    bands = collect(frame.group_by("age_band").agg(*sums).sort("age_band")).rows(named=True)
    areas = int(collect(frame.select(nw.col("area").n_unique())).item(0, 0))
    return {
        **entry(overall),
        "by_age_band": {str(int(r["age_band"])): entry(r) for r in bands},
        "areas": areas,
    }


def headline(tables: Mapping[str, Any], **parameters: Any) -> dict[str, Any]:
    """:func:`summarise` of :func:`person_flags` (same parameters), with the parameters."""
    out = summarise(person_flags(tables, **parameters))
    defaults = {"period_start": "2022-01-01", "period_end": "2023-12-31"}
    chosen = {**defaults, "age_min": 50, "age_max": 74, **parameters}
    out["parameters"] = {
        k: str(parse_date(v, k)) if k.startswith("period") else v for k, v in chosen.items()
    }
    return out
