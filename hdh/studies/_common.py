"""What the studies share: the columns they read, reading them, dates as parameters, the
clean DCIR lines and the clean MCO stays of a diagnosis."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hdh import cohort
from hdh.errors import BadArgument

#: The engine the studies read on by default (a template's ``engine`` parameter too): its
#: relations stay lazy, so a whole study runs as one query plan.
STUDY_ENGINE = "duckdb"
#: The person the studies count (stable across a person's several ``BEN_NIR_PSA``).
PERSON = "BEN_IDT_ANO"
#: ``ER_PRS_F`` columns the cleaning needs (keys, patient, date, the sign columns).
PRS_COLUMNS = (
    *cohort.DCIR_KEYS,
    "BEN_NIR_PSA",
    "BEN_RNG_GEM",
    "EXE_SOI_DTD",
    "DPN_QLF",
    "BSE_REM_SGN",
    "PRS_ACT_QTE",
    "PRS_PAI_MNT",
    "PRS_NAT_REF",
)
PHA_COLUMNS = (*cohort.DCIR_KEYS, "PHA_PRS_C13", "PHA_ACT_QSN")
CAM_COLUMNS = (*cohort.DCIR_KEYS, "CAM_PRS_IDE")
DRUG_COLUMNS = ("PHA_CIP_C13", "PHA_ATC_C07")
LINK_COLUMNS = ("BEN_NIR_PSA", "BEN_RNG_GEM", PERSON)


def read(
    columns: Mapping[str, tuple[str, ...]],
    dataset: str,
    engine: str | None,
    version: str | None,
) -> dict[str, Any]:
    """``{table: frame}`` read with :func:`hdh.read` on ``engine`` (:data:`STUDY_ENGINE` by
    default), each projected on its ``columns``; ``T_MCOaaC`` also with the return codes
    its files have (for ``drop_failed_linkage``)."""
    import pyarrow.parquet as pq

    import hdh
    from hdh._mounts import resolve
    from hdh.cohort.cleaning import RETURN_CODES

    engine = engine or STUDY_ENGINE
    out = {}
    for table, cols in columns.items():
        wanted = list(cols)
        if table == "T_MCOaaC":
            files = resolve(f"{dataset}.{table}", version).files
            present = {n for f in files for n in pq.read_schema(f).names}
            wanted += [c for c in RETURN_CODES if c in present and c not in wanted]
        out[table] = hdh.read(f"{dataset}.{table}", engine=engine, columns=wanted, version=version)
    return out


def parse_date(value: Any, what: str) -> dt.date:
    """A date from a :class:`datetime.date` or ISO text, or a one-line :class:`BadArgument`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BadArgument(f"{what} must be a date such as 2022-01-01, not {value!r}") from None


def diagnosed_stays(tables: Mapping[str, Any], codes: tuple[str, ...]) -> Any:
    """Clean MCO stays (failed links, error GHMs, duplicates dropped) whose principal
    diagnosis starts with one of ``codes``, with their person ``BEN_IDT_ANO``."""
    c = cohort.drop_failed_linkage(tables["T_MCOaaC"])
    stays = cohort.drop_duplicate_stays(
        cohort.drop_error_stays(cohort.mco_stays(tables["T_MCOaaB"], c))
    )
    matched = cohort.match_codes(stays, "DGN_PAL", codes)
    return cohort.link_persons(matched, tables["IR_BEN_R"], psa="NIR_ANO_17")


def clean_lines(prs: Any, detail: Any) -> Any:
    """``ER_PRS_F`` ⋈ a detail table without information-only lines and regularisations."""
    return cohort.drop_regularisations(
        cohort.drop_information_lines(cohort.dcir_lines(prs, detail))
    )


def dispensings(tables: Mapping[str, Any]) -> Any:
    """Clean dispensing events of ``ER_PRS_F`` ⋈ ``ER_PHA_F``, ``patient`` = ``BEN_IDT_ANO``."""
    lines = cohort.link_persons(
        clean_lines(tables["ER_PRS_F"], tables["ER_PHA_F"]), tables["IR_BEN_R"]
    )
    return cohort.dispensing_events(lines, tables["IR_PHA_R"], patient=PERSON)
