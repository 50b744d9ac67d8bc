"""The event table: one row per dated clinical event, the same shape for every source.

Columns (SCALPEL's flat event format): ``patient`` (string), ``category`` (``"stay"``,
``"act"``, ``"dispensing"``...), ``group`` (the code: principal diagnosis ICD-10, CCAM
act, ATC class), ``value`` (a count: 1 per stay or act unless a column is named, boxes
for a dispensing), ``weight`` (1.0, free for one's own weighting, e.g. defined daily
doses), ``start`` and ``end`` (dates). Build each part with :func:`stay_events`,
:func:`act_events` and :func:`dispensing_events`, then stack them with
:func:`event_table`; filter with :func:`hdh.cohort.match_codes` on ``group``.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw

from hdh.errors import BadArgument

from ._frames import as_date, require, same_library, wrap

EVENT_COLUMNS = ("patient", "category", "group", "value", "weight", "start", "end")


def _events(
    frame: Any,
    *,
    patient: str,
    category: str,
    group: nw.Expr,
    value: nw.Expr,
    start: nw.Expr,
    end: nw.Expr,
) -> Any:
    return frame.select(
        nw.col(patient).cast(nw.String).alias("patient"),
        nw.lit(category, nw.String).alias("category"),
        group.cast(nw.String).alias("group"),
        value.cast(nw.Float64).alias("value"),
        nw.lit(1.0, nw.Float64).alias("weight"),
        as_date(start, frame).alias("start"),
        as_date(end, frame).alias("end"),
    ).to_native()


def _value(column: str | None) -> nw.Expr:
    return nw.lit(1.0, nw.Float64) if column is None else nw.col(column)


def stay_events(
    stays: Any,
    *,
    patient: str = "NIR_ANO_17",
    start: str = "EXE_SOI_DTD",
    end: str = "EXE_SOI_DTF",
    diagnosis: str = "DGN_PAL",
    value: str | None = None,
    category: str = "stay",
) -> Any:
    """Events of stays (or of :func:`merge_episodes` output, with ``value="stays"``).

    ``group`` is the principal diagnosis (ICD-10), ``start``/``end`` admission/discharge.
    """
    nwf = wrap(stays, "stays")
    require(nwf, [patient, start, end, diagnosis, *([value] if value else [])], "stays")
    return _events(
        nwf,
        patient=patient,
        category=category,
        group=nw.col(diagnosis),
        value=_value(value),
        start=nw.col(start),
        end=nw.col(end),
    )


def act_events(
    acts: Any,
    *,
    patient: str = "BEN_NIR_PSA",
    code: str = "CAM_PRS_IDE",
    date: str = "EXE_SOI_DTD",
    value: str | None = None,
    category: str = "act",
) -> Any:
    """Events of CCAM acts: DCIR ``ER_PRS_F`` ⋈ ``ER_CAM_F`` by default; for PMSI acts
    (:func:`mco_acts`) pass ``patient="NIR_ANO_17", code="CDC_ACT"`` (dated at admission).
    """
    nwf = wrap(acts, "acts")
    require(nwf, [patient, code, date, *([value] if value else [])], "acts")
    return _events(
        nwf,
        patient=patient,
        category=category,
        group=nw.col(code),
        value=_value(value),
        start=nw.col(date),
        end=nw.col(date),
    )


def dispensing_events(
    dispensings: Any,
    drugs: Any,
    *,
    patient: str = "BEN_NIR_PSA",
    cip13: str = "PHA_PRS_C13",
    date: str = "EXE_SOI_DTD",
    boxes: str = "PHA_ACT_QSN",
    duration_days: int = 30,
    category: str = "dispensing",
) -> Any:
    """Events of drug dispensings: ``ER_PRS_F`` ⋈ ``ER_PHA_F`` with ``IR_PHA_R`` as ``drugs``.

    ``group`` is the ATC code (``PHA_ATC_C07`` of the CIP13 in ``IR_PHA_R``; lines whose
    CIP13 is not in the reference are dropped), ``value`` the number of boxes, ``start``
    the dispensing date and ``end`` ``duration_days`` days later.
    """
    nwf, ref = wrap(dispensings, "dispensings"), wrap(drugs, "drugs")
    same_library([nwf, ref])
    if not isinstance(duration_days, int) or isinstance(duration_days, bool) or duration_days < 0:
        raise BadArgument(f"duration_days must be a whole number >= 0, got {duration_days!r}")
    require(nwf, [patient, cip13, date, boxes], "dispensings")
    require(ref, ["PHA_CIP_C13", "PHA_ATC_C07"], "drugs")
    atc = "__hdh_atc"
    ref = ref.select(nw.col("PHA_CIP_C13").cast(nw.String), nw.col("PHA_ATC_C07").alias(atc))
    joined = nwf.with_columns(nw.col(cip13).cast(nw.String).alias("PHA_CIP_C13")).join(
        ref, on="PHA_CIP_C13", how="inner"
    )
    day = as_date(nw.col(date), joined)
    return _events(
        joined,
        patient=patient,
        category=category,
        group=nw.col(atc),
        value=nw.col(boxes),
        start=day,
        end=day.dt.offset_by(f"{duration_days}d"),
    )


def event_table(*parts: Any) -> Any:
    """Stack event frames (of one library) into one event table."""
    if not parts:
        raise BadArgument("event_table needs at least one frame of events")
    frames = [wrap(p, "events") for p in parts]
    same_library(frames)
    for f in frames:
        require(f, EVENT_COLUMNS, "events")
    selected = [f.select(list(EVENT_COLUMNS)) for f in frames]
    return nw.concat(selected, how="vertical").to_native()  # type: ignore[type-var]
