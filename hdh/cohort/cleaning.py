"""The standard SNDS cleaning filters, and the joins they are applied around.

Each filter implements one rule of the SNDS documentation (``Documentation-SNDS``,
``sndsTools``, SCALPEL) and is the one the synthetic extracts of ``hdh data synth`` need:

* :func:`drop_information_lines`: DCIR lines with ``DPN_QLF = 71`` are copies sent "for
  information" (care already paid elsewhere, e.g. in a hospital budget); counting them
  counts the care twice.
* :func:`drop_regularisations`: a DCIR regularisation (return, refund, cancellation) is a
  line with a negative sign (``BSE_REM_SGN = -1``) and negative quantities and amounts
  (``PRS_ACT_QTE``, ``PHA_ACT_QSN``, ``PRS_PAI_MNT``), fed later than the line it cancels.
  Dropping the negative lines alone would keep the cancelled care, so by default the
  original line each one cancels is dropped too (``net=True``).
* :func:`drop_error_stays`: PMSI MCO stays grouped in the error GHMs ``90*`` (also the
  fictitious ``TYP_GEN_RSA <> 0`` ones), i.e. SQL ``GRG_GHM NOT LIKE '90%'``.
* :func:`drop_duplicate_stays`: one row per stay key ``ETA_NUM`` + ``RSA_NUM`` (a stay
  read twice, e.g. from two yearly tables, or a row duplicated by a join).
* :func:`drop_failed_linkage`: ``T_MCOaaC`` rows whose patient link failed: the
  placeholder ``NIR_ANO_17`` values and any return code (``*_RET``) other than OK.

:func:`dcir_lines` joins ``ER_PRS_F`` to a detail table on the 9 DCIR keys,
:func:`mco_stays` joins ``T_MCOaaB`` to ``T_MCOaaC`` (the dates and the patient live in C),
:func:`mco_acts` joins ``T_MCOaaA`` to ``T_MCOaaC``, and :func:`link_persons` adds the
stable person id ``BEN_IDT_ANO`` from ``IR_BEN_R`` (one person can have several
``BEN_NIR_PSA``). Every function takes and returns native frames of one library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw

from hdh.errors import BadArgument

from ._frames import distinct, first_rows, group_sums, names, require, same_library, wrap

#: The 9 keys that join ``ER_PRS_F`` to its detail tables (``ER_PHA_F``, ``ER_CAM_F``...).
DCIR_KEYS = (
    "DCT_ORD_NUM",
    "FLX_DIS_DTD",
    "FLX_EMT_NUM",
    "FLX_EMT_ORD",
    "FLX_EMT_TYP",
    "FLX_TRT_DTD",
    "ORG_CLE_NUM",
    "PRS_ORD_NUM",
    "REM_TYP_AFF",
)
#: The key of a PMSI MCO stay in every ``T_MCOaa*`` table.
MCO_STAY_KEY = ("ETA_NUM", "RSA_NUM")
#: ``DPN_QLF`` of the lines sent for information only.
INFORMATION_ONLY = 71
#: Columns whose negative value marks a regularisation line, in the order they are looked for.
SIGN_COLUMNS = ("BSE_REM_SGN", "PRS_ACT_QTE", "PHA_ACT_QSN", "PRS_PAI_MNT")
#: Columns that say what a DCIR line is, used to pair a regularisation with its original.
LINE_IDENTITY = ("PRS_NAT_REF", "PHA_PRS_C13", "CAM_PRS_IDE", "UCD_UCD_COD")
#: ``NIR_ANO_17`` written when the patient link of a stay failed.
FAILED_NIR_ANO_17 = ("xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXS")
#: Return codes of ``T_MCOaaC`` that must all be OK for the patient link to be trusted.
RETURN_CODES = (
    "NIR_RET",
    "NAI_RET",
    "SEX_RET",
    "SEJ_RET",
    "FHO_RET",
    "PMS_RET",
    "DAT_RET",
    "COH_NAI_RET",
    "COH_SEX_RET",
)
#: Boolean return codes whose schema reads the code ``'0'`` (OK) as ``true`` (``trueValues:
#: ['0']`` in ``schema-snds``); every other boolean code is OK when false (as the synthetic
#: extracts write them; ``PMS_RET``'s schema lists ``'0'`` as both true and false).
TRUE_IS_OK = frozenset({"SEJ_RET"})

_TMP = "__hdh_"


def drop_information_lines(frame: Any, column: str = "DPN_QLF") -> Any:
    """Drop the DCIR lines sent for information only (``DPN_QLF = 71``); keeps null ``DPN_QLF``."""
    nwf = wrap(frame)
    require(nwf, [column])
    value = nw.col(column).cast(nw.String)
    keep = value.is_null() | (value != str(INFORMATION_ONLY)).fill_null(False)
    return nwf.filter(keep).to_native()


def drop_regularisations(
    frame: Any,
    *,
    net: bool = True,
    patient: Sequence[str] = ("BEN_NIR_PSA", "BEN_RNG_GEM"),
    date: str = "EXE_SOI_DTD",
) -> Any:
    """Drop DCIR regularisation lines (negative sign, quantity or amount).

    With ``net=True`` (the default) each regularisation also cancels one original line:
    the earliest-fed positive line of the same patient, care date, kind of care
    (``PRS_NAT_REF``), product (``PHA_PRS_C13``/``CAM_PRS_IDE``/``UCD_UCD_COD`` when the
    frame has them: apply it to ``ER_PRS_F`` joined with its detail table for exact pairing)
    and absolute quantity. ``net=False`` drops the negative lines only.
    """
    nwf = wrap(frame)
    have = names(nwf)
    signs = [c for c in SIGN_COLUMNS if c in have]
    if not signs:
        raise BadArgument(
            "drop_regularisations needs one of the columns " + ", ".join(SIGN_COLUMNS)
        )
    negative = nw.col(signs[0]).fill_null(0) < 0
    for column in signs[1:]:
        negative = negative | (nw.col(column).fill_null(0) < 0)
    if not net:
        return nwf.filter(~negative).to_native()

    require(nwf, [*patient, date])
    key = [*patient, date, *(c for c in LINE_IDENTITY if c in have)]
    extra = {}
    quantity = next((c for c in ("PHA_ACT_QSN", "PRS_ACT_QTE") if c in have), None)
    if quantity is not None:
        extra[f"{_TMP}qty"] = nw.col(quantity).abs()
    neg, pos, cancel, rank = (f"{_TMP}{x}" for x in ("neg", "pos", "cancel", "rank"))
    marked = nwf.with_columns(
        negative.cast(nw.Int64).alias(neg), (~negative).cast(nw.Int64).alias(pos), **extra
    )
    key += list(extra)
    # cancel: how many regularisations the line's group has; rank: the positive lines of
    # the group numbered earliest-fed first. The first ``cancel`` of them are dropped.
    feed = [c for c in ("FLX_DIS_DTD", *DCIR_KEYS) if c in have]
    counted = group_sums(marked, key, totals={cancel: neg}, running={rank: pos}, order_by=feed)
    kept = counted.filter(
        (nw.col(pos) == 1)
        & (nw.col(cancel).is_null() | (nw.col(rank) > nw.col(cancel)).fill_null(False))
    )
    return kept.select(have).to_native()


def drop_error_stays(frame: Any, column: str = "GRG_GHM") -> Any:
    """Drop PMSI stays in the error GHMs ``90*`` (and, as SQL ``NOT LIKE '90%'``, no GHM)."""
    nwf = wrap(frame)
    require(nwf, [column])
    ghm = nw.col(column).cast(nw.String)
    return nwf.filter(~ghm.is_null() & (~ghm.str.starts_with("90")).fill_null(False)).to_native()


def drop_duplicate_stays(
    frame: Any, key: Sequence[str] = MCO_STAY_KEY, order_by: Sequence[str] = ()
) -> Any:
    """Keep one row per stay ``key``: the first by ``order_by`` if given, else any one."""
    nwf = wrap(frame)
    require(nwf, [*key, *order_by])
    if not order_by:
        return nwf.unique(subset=list(key), keep="any").to_native()
    out = first_rows(nwf, key, order_by)
    return out.select(names(nwf)).to_native()


def drop_failed_linkage(frame: Any, patient: str = "NIR_ANO_17") -> Any:
    """Drop ``T_MCOaaC`` rows with a placeholder ``NIR_ANO_17`` or a return code not OK.

    A string return code is OK when it is ``'0'``; a boolean one as its schema reads
    ``'0'`` (see :data:`TRUE_IS_OK`). Codes missing from the frame are not checked.
    """
    nwf = wrap(frame)
    require(nwf, [patient])
    schema = nwf.collect_schema()
    ok = ~nw.col(patient).is_null() & (~nw.col(patient).is_in(list(FAILED_NIR_ANO_17))).fill_null(
        False
    )
    for column in RETURN_CODES:
        if column not in schema:
            continue
        if schema[column] == nw.Boolean:
            good = nw.col(column) if column in TRUE_IS_OK else ~nw.col(column)
        else:
            good = nw.col(column).cast(nw.String) == "0"
        ok = ok & good.fill_null(False)
    return nwf.filter(ok).to_native()


def dcir_lines(prs: Any, detail: Any, how: str = "inner") -> Any:
    """``ER_PRS_F`` joined to a detail table (``ER_PHA_F``, ``ER_CAM_F``...) on the 9 keys.

    A column in both frames other than the keys comes from ``ER_PRS_F``, the detail's copy
    gets the suffix ``_right``. Compute amounts on ``ER_PRS_F`` alone: the join can repeat
    a line.
    """
    left, right = wrap(prs, "prs"), wrap(detail, "detail")
    same_library([left, right])
    require(left, DCIR_KEYS, "prs")
    require(right, DCIR_KEYS, "detail")
    if how not in ("inner", "left"):
        raise BadArgument(f"how must be 'inner' or 'left', got {how!r}")
    return left.join(right, on=list(DCIR_KEYS), how=how).to_native()  # type: ignore[arg-type]


def _string_keys(frame: Any) -> Any:
    return frame.with_columns(*(nw.col(c).cast(nw.String) for c in MCO_STAY_KEY))


_C_COLUMNS = ("NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF")


def mco_stays(b: Any, c: Any, c_columns: Sequence[str] = _C_COLUMNS) -> Any:
    """``T_MCOaaB`` joined to ``T_MCOaaC`` on ``ETA_NUM``+``RSA_NUM`` (keys as strings).

    Brings the patient (``NIR_ANO_17``) and the admission and discharge dates
    (``EXE_SOI_DTD``/``EXE_SOI_DTF``), which live in C, next to B's diagnoses and GHM.
    Apply :func:`drop_failed_linkage` to C first.
    """
    left, right = wrap(b, "b"), wrap(c, "c")
    same_library([left, right])
    require(left, MCO_STAY_KEY, "b")
    require(right, [*MCO_STAY_KEY, *c_columns], "c")
    right = right.select([*MCO_STAY_KEY, *(x for x in c_columns if x not in MCO_STAY_KEY)])
    joined = _string_keys(left).join(_string_keys(right), on=list(MCO_STAY_KEY), how="inner")
    return joined.to_native()


def mco_acts(a: Any, c: Any, c_columns: Sequence[str] = _C_COLUMNS) -> Any:
    """``T_MCOaaA`` (CCAM acts of stays) joined to ``T_MCOaaC`` for the patient and the dates.

    The keys are strings in A and integers in C: both are compared as strings.
    """
    return mco_stays(a, c, c_columns)


def link_persons(
    frame: Any,
    ir_ben_r: Any,
    *,
    psa: str = "BEN_NIR_PSA",
    rank: str | None = "BEN_RNG_GEM",
    person: str = "BEN_IDT_ANO",
) -> Any:
    """Add the stable person id ``BEN_IDT_ANO`` from ``IR_BEN_R`` (an inner join).

    Joins on ``BEN_NIR_PSA`` + ``BEN_RNG_GEM`` when ``rank`` is given and in the frame,
    else on the pseudonym alone (PMSI: pass ``psa="NIR_ANO_17"``). Rows whose pseudonym is
    not in ``IR_BEN_R`` are dropped.
    """
    left, ref = wrap(frame), wrap(ir_ben_r, "ir_ben_r")
    same_library([left, ref])
    require(left, [psa])
    use_rank = rank is not None and rank in names(left)
    ref_keys = ["BEN_NIR_PSA", *([rank] if use_rank and rank else [])]
    require(ref, [*ref_keys, person], "ir_ben_r")
    pairs = distinct(ref.select([*ref_keys, person]))
    if psa != "BEN_NIR_PSA":
        pairs = pairs.rename({"BEN_NIR_PSA": psa})
    on = [psa, *([rank] if use_rank and rank else [])]
    if person in names(left):
        left = left.drop(person)
    return left.join(pairs, on=on, how="inner").to_native()
