"""Stay → episode merging: stays chained by transfers become one care episode.

A patient moved from one hospital (or unit) to another appears as two PMSI stays, the
second admitted on the day the first ends (or the day after). Counting them as two
stays inflates admissions and readmissions, so they are merged: a stay whose admission
is at most ``gap_days`` days after the latest discharge so far of the same patient
continues that patient's current episode (overlapping and nested stays too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw

from hdh.errors import BadArgument

from ._frames import day_number, names, require, with_group_value, wrap

_TMP = "__hdh_"
_SCALE = 10_000_000  # more days than any date has since 1970


def merge_episodes(
    stays: Any,
    *,
    patient: str = "NIR_ANO_17",
    start: str = "EXE_SOI_DTD",
    end: str = "EXE_SOI_DTF",
    diagnosis: str = "DGN_PAL",
    gap_days: int = 1,
    entry_modes: Sequence[str] | None = None,
    entry_mode: str = "ENT_MOD",
    first: Sequence[str] = (),
    last: Sequence[str] = (),
    order_by: Sequence[str] = ("ETA_NUM", "RSA_NUM"),
) -> Any:
    """One row per episode: ``patient``, ``episode`` (1, 2... per patient in time order),
    ``start`` (first admission), ``end`` (last discharge), ``diagnosis`` (the first stay's),
    the columns named in ``first`` (taken from the first stay) and ``last`` (from the
    last, e.g. ``SOR_MOD`` to know whether the patient left alive), and ``stays`` (count).

    Stays are ordered by admission, discharge, then ``order_by`` (when the frame has those
    columns). ``gap_days=1`` merges a stay admitted on the discharge day or the day after;
    ``0`` only on the same day. With ``entry_modes`` (e.g. ``["6", "7"]``: transfer and
    mutation), a stay continues an episode only if its ``entry_mode`` is one of them.
    """
    nwf = wrap(stays, "stays")
    if not isinstance(gap_days, int) or isinstance(gap_days, bool) or gap_days < 0:
        raise BadArgument(f"gap_days must be a whole number of days >= 0, got {gap_days!r}")
    have = names(nwf)
    require(nwf, [patient, start, end, diagnosis, *first, *last], "stays")
    if entry_modes is not None:
        require(nwf, [entry_mode], "stays")
    p, s, e, k, top, prev, new, ep, row = (
        f"{_TMP}{x}" for x in ("p", "s", "e", "k", "top", "prev", "new", "ep", "row")
    )
    order = list(dict.fromkeys([patient, s, e, *(c for c in order_by if c in have)]))
    framed = nwf.with_columns(day_number(nw.col(start)).alias(s), day_number(nw.col(end)).alias(e))
    # p numbers the patients 1, 2... in sort order (a dense rank without ``rank``, which
    # PyArrow only offers through a deprecated option)
    other = nw.col(patient).shift(1).over(order_by=order) != nw.col(patient)
    framed = framed.with_columns(other.fill_null(True).cast(nw.Int64).alias(p)).with_columns(
        nw.col(p).cum_sum().over(order_by=order).cast(nw.Int64)
    )
    # the patient is folded into the value (p * SCALE + day), so a running maximum over
    # rows sorted by patient never carries one patient's discharge into the next patient
    framed = framed.with_columns(
        (nw.col(p) * _SCALE + nw.col(s)).alias(k),
        (nw.col(p) * _SCALE + nw.col(e)).alias(top),
    ).with_columns(nw.col(top).cum_max().over(order_by=order))
    framed = framed.with_columns(nw.col(top).shift(1).over(order_by=order).alias(prev))
    starts_new = nw.col(prev).is_null() | (nw.col(k) > nw.col(prev) + gap_days).fill_null(False)
    if entry_modes is not None:
        modes = [str(m) for m in entry_modes]
        starts_new = starts_new | ~nw.col(entry_mode).cast(nw.String).is_in(modes).fill_null(False)
    framed = framed.with_columns(
        starts_new.cast(nw.Int64).alias(new), nw.lit(1).alias(row)
    ).with_columns(
        nw.col(new).cum_sum().over(order_by=order).cast(nw.Int64).alias(ep),
        nw.col(row).cum_sum().over(order_by=order).cast(nw.Int64),
    )
    first_ep = f"{_TMP}first_ep"
    framed = with_group_value(framed, nw.col(ep).min(), [patient], first_ep).with_columns(
        (nw.col(ep) - nw.col(first_ep) + 1).alias("episode")
    )
    spans = (
        framed.group_by(ep)
        .agg(nw.col(start).min(), nw.col(end).max(), nw.len().alias("stays"))
        .with_columns(nw.col("stays").cast(nw.Int64))
    )
    heads = framed.filter(nw.col(new) == 1).select(
        ep, patient, "episode", *dict.fromkeys([diagnosis, *first])
    )
    out = heads.join(spans, on=ep, how="inner")
    if last:
        last_row = f"{_TMP}last_row"
        tails = with_group_value(framed, nw.col(row).max(), [ep], last_row)
        tails = tails.filter(nw.col(row) == nw.col(last_row)).select(
            ep, *(c for c in last if c not in names(out))
        )
        out = out.join(tails, on=ep, how="inner")
    columns = [patient, "episode", start, end, *dict.fromkeys([diagnosis, *first, *last])]
    return out.select(*dict.fromkeys([*columns, "stays"])).to_native()
