"""``hf-readmission``: heart-failure rehospitalisation within 30 days of a discharge.

The heart-failure stays are the MCO stays whose principal diagnosis is I50, after the SNDS
cleaning (failed patient links, error GHMs ``90*``, duplicate stays), linked to the person
(``BEN_IDT_ANO``). Every such stay discharged alive (``SOR_MOD`` other than ``9``) at least
``window_days`` before ``followup_end`` is an index stay; it is *readmitted* when another
heart-failure stay of the same person is admitted between its discharge day and
``window_days`` days after it, both included. A person has as many index stays as
discharges alive: a model trained on them must be split by person.

:func:`index_stays` gives one row per index stay with the model's features (``age`` and
``sex`` of the stay, ``los`` in days, ``device``: a device implant act, CCAM DELF013,
DELF014 or DELF016, on a stay of the person admitted on or before this one, and
``previous``: the person's heart-failure stays admitted before this one) and the 0/1
outcome ``readmitted``; :func:`headline` (:func:`summarise` of those) gives ``n_stays``,
``n_persons``, ``readmitted`` and ``rate``. It works on native frames of one library
(pandas, Polars, DuckDB, PyArrow, PySpark, cuDF: whatever :mod:`hdh.cohort` takes);
:func:`read_tables` reads them with :func:`hdh.read`, projected on the columns it uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import narwhals as nw

from hdh import cohort
from hdh.cohort._frames import as_date, collect, day_number, wrap
from hdh.errors import BadArgument

from ._common import LINK_COLUMNS, PERSON, diagnosed_stays, parse_date, read

#: Principal diagnoses of heart failure (ICD-10 prefixes).
HF_CODES = ("I50",)
#: CCAM acts implanting a cardiac device (defibrillator, resynchronisation).
DEVICE_ACTS = ("DELF013", "DELF014", "DELF016")
#: Days after a discharge in which a heart-failure admission is a readmission.
WINDOW_DAYS = 30
#: The last day of follow-up of the synthetic extracts (their window ends 2023-12-31).
FOLLOWUP_END = "2023-12-31"
#: The model's features, columns of :func:`index_stays`.
FEATURES = ("age", "sex", "los", "device", "previous")

#: The columns read from each table (``T_MCOaaC``'s return codes as far as present).
COLUMNS: dict[str, tuple[str, ...]] = {
    "T_MCOaaA": ("ETA_NUM", "RSA_NUM", "CDC_ACT"),
    "T_MCOaaB": ("ETA_NUM", "RSA_NUM", "DGN_PAL", "GRG_GHM", "AGE_ANN", "COD_SEX", "SOR_MOD"),
    "T_MCOaaC": ("ETA_NUM", "RSA_NUM", "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF"),
    "IR_BEN_R": LINK_COLUMNS,
}


def read_tables(dataset: str, engine: str | None = None, version: str | None = None) -> dict:
    """The study's tables of ``dataset`` as native frames of ``engine`` (every MCO year)."""
    return read(COLUMNS, dataset, engine, version)


def hf_stays(tables: Mapping[str, Any]) -> Any:
    """Every clean heart-failure stay: ``BEN_IDT_ANO``, ``ETA_NUM``, ``RSA_NUM``, ``adm`` and
    ``dis`` (dates), ``age``, ``sex``, ``dead`` (0/1: discharged dead)."""
    hf = wrap(diagnosed_stays(tables, HF_CODES))
    return hf.select(
        nw.col(PERSON).cast(nw.String),
        nw.col("ETA_NUM").cast(nw.String),
        nw.col("RSA_NUM").cast(nw.String),
        as_date(nw.col("EXE_SOI_DTD"), hf).alias("adm"),
        as_date(nw.col("EXE_SOI_DTF"), hf).alias("dis"),
        nw.col("AGE_ANN").cast(nw.Int64).alias("age"),
        nw.col("COD_SEX").cast(nw.String).alias("sex"),
        (nw.col("SOR_MOD").cast(nw.String) == "9").fill_null(False).cast(nw.Int64).alias("dead"),
    ).to_native()


def device_acts(a: Any, c: Any, ir_ben_r: Any) -> Any:
    """Device implant acts: ``BEN_IDT_ANO`` and ``act_adm`` (the stay's admission date)."""
    acts = cohort.mco_acts(a, cohort.drop_failed_linkage(c))
    acts = wrap(cohort.match_codes(acts, "CDC_ACT", DEVICE_ACTS))
    acts = wrap(cohort.link_persons(acts.to_native(), ir_ben_r, psa="NIR_ANO_17"))
    return acts.select(
        nw.col(PERSON).cast(nw.String), as_date(nw.col("EXE_SOI_DTD"), acts).alias("act_adm")
    ).to_native()


def index_stays(
    tables: Mapping[str, Any],
    window_days: int = WINDOW_DAYS,
    followup_end: Any = FOLLOWUP_END,
) -> Any:
    """One row per index stay: ``BEN_IDT_ANO``, ``ETA_NUM``, ``RSA_NUM``, ``adm``, ``dis``,
    the :data:`FEATURES` and ``readmitted`` (0/1); a native frame of the tables' library."""
    if not isinstance(window_days, int) or isinstance(window_days, bool) or window_days < 1:
        raise BadArgument(f"window_days must be a whole number >= 1, got {window_days!r}")
    end = parse_date(followup_end, "followup_end")
    last_discharge = end - dt.timedelta(days=window_days)
    stays = wrap(hf_stays(tables))
    keys = [PERSON, "ETA_NUM", "RSA_NUM"]
    index = stays.filter((nw.col("dead") == 0) & (nw.col("dis") <= nw.lit(last_discharge)))
    others = stays.select(
        nw.col(PERSON),
        nw.col("ETA_NUM").alias("o_eta"),
        nw.col("RSA_NUM").alias("o_rsa"),
        nw.col("adm").alias("o_adm"),
    )
    other = (
        (nw.col("o_eta") != nw.col("ETA_NUM")) | (nw.col("o_rsa") != nw.col("RSA_NUM"))
    ).fill_null(True)
    gap = day_number(nw.col("o_adm")) - day_number(nw.col("dis"))
    pairs = (
        index.select(*keys, "adm", "dis")
        .join(others, on=PERSON, how="inner")
        .filter(other)
        .with_columns(
            (nw.col("o_adm") < nw.col("adm")).fill_null(False).cast(nw.Int64).alias("before"),
            ((gap >= 0).fill_null(False) & (gap <= window_days).fill_null(False))
            .cast(nw.Int64)
            .alias("within"),
        )
        .group_by(keys)
        .agg(nw.col("before").sum().alias("previous"), nw.col("within").max().alias("readmitted"))
    )
    devices = (
        index.select(*keys, "adm")
        .join(
            wrap(device_acts(tables["T_MCOaaA"], tables["T_MCOaaC"], tables["IR_BEN_R"])),
            on=PERSON,
            how="inner",
        )
        .filter(nw.col("act_adm") <= nw.col("adm"))
        .group_by(keys)
        .agg(nw.len().alias("n_device"))
    )
    return (
        index.join(pairs, on=keys, how="left")
        .join(devices, on=keys, how="left")
        .select(
            *keys,
            "adm",
            "dis",
            "age",
            "sex",
            (day_number(nw.col("dis")) - day_number(nw.col("adm"))).alias("los"),
            (nw.col("n_device").fill_null(0) > 0).cast(nw.Int64).alias("device"),
            nw.col("previous").fill_null(0).cast(nw.Int64),
            nw.col("readmitted").fill_null(0).cast(nw.Int64),
        )
        .to_native()
    )


def headline(
    tables: Mapping[str, Any],
    window_days: int = WINDOW_DAYS,
    followup_end: Any = FOLLOWUP_END,
) -> dict[str, Any]:
    """The study's headline numbers from the tables of :data:`COLUMNS` (native frames)."""
    return summarise(index_stays(tables, window_days, followup_end), window_days, followup_end)


def summarise(
    stays: Any, window_days: int = WINDOW_DAYS, followup_end: Any = FOLLOWUP_END
) -> dict[str, Any]:
    """``n_stays``, ``n_persons``, ``readmitted`` and ``rate`` from :func:`index_stays`."""
    frame = wrap(stays)
    totals = collect(
        frame.select(
            nw.len().alias("n_stays"),
            nw.col(PERSON).n_unique().alias("n_persons"),
            nw.col("readmitted").sum().alias("readmitted"),
            (nw.col("previous") == 0).cast(nw.Int64).sum().alias("first_stays"),
        )
    )
    n = int(totals.item(0, "n_stays"))
    readmitted = int(totals.item(0, "readmitted") or 0)
    return {
        "n_stays": n,
        "n_persons": int(totals.item(0, "n_persons")),
        "first_stays": int(totals.item(0, "first_stays") or 0),
        "readmitted": readmitted,
        "rate": readmitted / n if n else None,
        "window_days": window_days,
        "followup_end": parse_date(followup_end, "followup_end").isoformat(),
    }
