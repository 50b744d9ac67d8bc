"""What the studies share: the DCIR columns they read, reading them, the clean DCIR lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hdh import cohort

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
    columns: Mapping[str, tuple[str, ...]], dataset: str, engine: str, version: str | None
) -> dict[str, Any]:
    """``{table: frame}`` read with :func:`hdh.read`, each projected on its ``columns``."""
    import hdh

    return {
        table: hdh.read(f"{dataset}.{table}", engine=engine, columns=list(cols), version=version)
        for table, cols in columns.items()
    }


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
