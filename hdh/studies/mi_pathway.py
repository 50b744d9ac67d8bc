"""``mi-pathway``: secondary prevention in the 90 days after a myocardial infarction.

The cohort is every person (``BEN_IDT_ANO``) with an MCO stay whose principal diagnosis is
I21 or I22, after the SNDS cleaning (failed patient links, error GHMs ``90*``, duplicate
stays); the index stay is the person's first such stay (earliest admission, then earliest
discharge). A person is counted in a drug class when a dispensing of that class (ATC prefix,
DCIR lines without information-only lines or regularisations) falls between the index
stay's discharge day and 90 days after it, both included.

:func:`person_flags` gives one row per person with a 0/1 column per class, ``any`` and
``all_four``; :func:`headline` (:func:`summarise` of those) gives ``n`` and, for each, the
number of persons (``counts``) and their share of ``n`` (``within_90d``). It works on
native frames of one library (pandas, Polars, DuckDB, PyArrow, PySpark, cuDF: whatever
:mod:`hdh.cohort` takes); :func:`read_tables` reads them with :func:`hdh.read`, projected
on the columns the study uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import narwhals as nw

from hdh import cohort
from hdh.cohort._frames import (
    as_date,
    collect,
    computed_once,
    day_number,
    distinct,
    first_rows,
    wrap,
)
from hdh.errors import BadArgument

from ._common import (
    DRUG_COLUMNS,
    LINK_COLUMNS,
    PERSON,
    PHA_COLUMNS,
    PRS_COLUMNS,
    diagnosed_stays,
    dispensings,
    read,
)

#: The drug classes counted, as ATC prefixes.
CLASSES: dict[str, tuple[str, ...]] = {
    "beta_blocker": ("C07",),
    "antiplatelet": ("B01AC",),
    "statin": ("C10AA",),
    "acei_arb": ("C09",),
}
#: Principal diagnoses of a myocardial infarction (ICD-10 prefixes).
MI_CODES = ("I21", "I22")
#: Days after the index stay's discharge in which a dispensing counts.
WINDOW_DAYS = 90
#: The columns read from each table (``T_MCOaaC``'s return codes as far as present).
COLUMNS: dict[str, tuple[str, ...]] = {
    "T_MCOaaB": ("ETA_NUM", "RSA_NUM", "DGN_PAL", "GRG_GHM"),
    "T_MCOaaC": ("ETA_NUM", "RSA_NUM", "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF"),
    "ER_PRS_F": PRS_COLUMNS,
    "ER_PHA_F": PHA_COLUMNS,
    "IR_PHA_R": DRUG_COLUMNS,
    "IR_BEN_R": LINK_COLUMNS,
}


def read_tables(dataset: str, engine: str | None = None, version: str | None = None) -> dict:
    """The study's tables of ``dataset`` as native frames of ``engine`` (every MCO year)."""
    return read(COLUMNS, dataset, engine, version)


def index_stays(tables: Mapping[str, Any]) -> Any:
    """One row per person: ``BEN_IDT_ANO``, ``index_start`` and ``index_end`` (dates)."""
    mi = wrap(diagnosed_stays(tables, MI_CODES))
    mi = mi.select(
        nw.col(PERSON).cast(nw.String),
        as_date(nw.col("EXE_SOI_DTD"), mi).alias("index_start"),
        as_date(nw.col("EXE_SOI_DTF"), mi).alias("index_end"),
    )
    return first_rows(mi, [PERSON], ["index_start", "index_end"]).to_native()


def cohort_lines(tables: Mapping[str, Any], index: Any) -> Any:
    """``ER_PRS_F`` cut to the lines of the persons of ``index`` (a semi-join on their
    pseudonyms ``BEN_NIR_PSA`` + ``BEN_RNG_GEM`` in ``IR_BEN_R``).

    Cleaning these lines gives the cohort's clean lines exactly: a regularisation only
    cancels a line of the same patient, and the lines of a pseudonym with no person are
    dropped when persons are linked anyway.
    """
    ben, prs = wrap(tables["IR_BEN_R"], "IR_BEN_R"), wrap(tables["ER_PRS_F"], "ER_PRS_F")
    persons = wrap(index).select(PERSON)
    pseudonyms = ben.with_columns(nw.col(PERSON).cast(nw.String)).join(
        persons, on=PERSON, how="semi"
    )
    keys = ["BEN_NIR_PSA", "BEN_RNG_GEM"]
    return prs.join(distinct(pseudonyms.select(keys)), on=keys, how="semi").to_native()


def person_flags(
    tables: Mapping[str, Any], window_days: int = WINDOW_DAYS, *, whole_dcir: bool = False
) -> Any:
    """One row per person of the cohort: ``BEN_IDT_ANO``, ``index_start``, ``index_end`` and a
    0/1 column per class of :data:`CLASSES` (dispensed within ``window_days`` after the index
    discharge), ``any`` and ``all_four``; a native frame of the tables' library.

    Only the cohort's DCIR lines are cleaned (:func:`cohort_lines`); ``whole_dcir=True``
    cleans every line first, as the reference SQL does (the same answer, much slower).
    """
    if not isinstance(window_days, int) or isinstance(window_days, bool) or window_days < 0:
        raise BadArgument(f"window_days must be a whole number >= 0, got {window_days!r}")
    index = wrap(computed_once(index_stays(tables)))
    if not whole_dcir:
        tables = {**tables, "ER_PRS_F": cohort_lines(tables, index)}
    events = wrap(dispensings(tables)).select(nw.col("patient").alias(PERSON), "group", "start")
    delay = day_number(nw.col("start")) - day_number(nw.col("index_end"))
    within = ((delay >= 0) & (delay <= window_days)).fill_null(False)
    # one pass: every dispensing of the cohort's persons (none: one row of nulls), each
    # class flagged when it falls in the window, then the flags' maximum per person
    flagged = index.join(events, on=PERSON, how="left").with_columns(
        *(
            (within & cohort.code_matches("group", prefixes)).cast(nw.Int64).alias(name)
            for name, prefixes in CLASSES.items()
        )
    )
    n_classes = sum((nw.col(name) for name in CLASSES), nw.lit(0, nw.Int64))
    return (
        flagged.group_by(PERSON, "index_start", "index_end")
        .agg(*(nw.col(name).max() for name in CLASSES))
        .with_columns(*(nw.col(name).cast(nw.Int64) for name in CLASSES))
        .with_columns(
            (n_classes > 0).cast(nw.Int64).alias("any"),
            (n_classes == len(CLASSES)).cast(nw.Int64).alias("all_four"),
        )
        .to_native()
    )


def headline(
    tables: Mapping[str, Any], window_days: int = WINDOW_DAYS, *, whole_dcir: bool = False
) -> dict[str, Any]:
    """The study's headline numbers from the tables of :data:`COLUMNS` (native frames)."""
    return summarise(person_flags(tables, window_days, whole_dcir=whole_dcir), window_days)


def summarise(flags: Any, window_days: int = WINDOW_DAYS) -> dict[str, Any]:
    """``n``, ``counts`` and ``within_90d`` (shares) from :func:`person_flags`' frame."""
    frame = wrap(flags)
    names = [*CLASSES, "any", "all_four"]
    totals = collect(
        frame.select(nw.len().alias("n"), *(nw.col(name).sum().alias(name) for name in names))
    )
    n = int(totals.item(0, "n"))
    counts = {name: int(totals.item(0, name) or 0) for name in names}
    shares = {name: (count / n if n else None) for name, count in counts.items()}
    return {"n": n, "counts": counts, "within_90d": shares, "window_days": window_days}
