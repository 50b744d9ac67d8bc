"""mi-pathway's headline written by hand in tuned pandas, apart from :mod:`hdh.cohort`.

The ``pandas-tuned`` peer of ``bench/bench_cohort.py``: the numbers of ``bench/mi_pathway.sql``
(with ``clean_dcir.sql`` and ``clean_pmsi.sql``) as an analyst fluent in pandas would write
them for speed, over the Parquet files of an extract folder:

* only the needed columns are read (PyArrow, all threads), and rows are filtered in the
  read (``filters=``) wherever the rule allows it: the linked MCO stays, the non-error
  GHMs, the DCIR lines of the cohort's patients that are not information-only lines, the
  dispensings of the four classes' products;
* dates become day numbers (``int32``), text PyArrow strings, and the drug classes 0/1
  columns per product, so the per-person flags are integer group-bys with no Python loop;
* composite keys (the 9 DCIR keys, the netting's pairing key) are packed into one exact
  ``int64`` (a mixed radix over the columns' ranges or sorted codes) when they fit: the
  DCIR join is then a hash look-up, the feed order one integer to sort on;
* the DCIR lines are cut to each cohort person's 90-day window *before* the regularisation
  netting: every line a regularisation can cancel shares its patient and care date, so
  a filter on (patient, care date) keeps or drops a line together with its cancellations;
  likewise the product filter (the product is part of the pairing key);
* the netting ranks only the positive lines that a regularisation pairs with.

``early=False`` (``pandas-tuned/full-clean`` in the benchmark) skips the cuts of the DCIR
lines: the whole DCIR is cleaned first, then linked to the cohort, as the SQL and hdh's
cohort toolkit do.

The rules are the SQL's: ``ER_PRS_F`` ⋈ ``ER_PHA_F`` on the 9 DCIR keys without
``DPN_QLF = 71``; a line is a regularisation when ``BSE_REM_SGN``, ``PRS_ACT_QTE``,
``PHA_ACT_QSN`` or ``PRS_PAI_MNT`` is negative, and each cancels the earliest-fed positive
line of the same patient (``BEN_NIR_PSA`` + ``BEN_RNG_GEM``), care day, ``PRS_NAT_REF``,
product and absolute quantity; MCO stays ``T_MCOaaB`` ⋈ ``T_MCOaaC`` on ``ETA_NUM`` +
``RSA_NUM`` without failed patient links (placeholder ``NIR_ANO_17``, a return code not
OK), error GHMs ``90*`` and duplicate stays; the person (``BEN_IDT_ANO``) from
``IR_BEN_R``; the index stay a person's first I21/I22 stay (earliest admission, then
earliest discharge); a class counted when dispensed from the index discharge day to 90
days after, both included. Null join keys match nothing, as in SQL. Two liberties, with
the same answer: the I21/I22 filter comes before the duplicate stays are dropped (the rows
of one stay key are one stay; SQL keeps any one of them), and ``PHA_PRS_C13`` meets
``IR_PHA_R.PHA_CIP_C13`` as stored (integers on both sides in the synthetic extracts; the
SQL compares them as text).

:func:`headline` returns ``n``, the persons per class, ``any`` and ``all_four``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CLASSES = {
    "beta_blocker": ("C07",),
    "antiplatelet": ("B01AC",),
    "statin": ("C10AA",),
    "acei_arb": ("C09",),
}
MI_CODES = ("I21", "I22")
WINDOW_DAYS = 90
DCIR_KEYS = [
    "DCT_ORD_NUM",
    "FLX_DIS_DTD",
    "FLX_EMT_NUM",
    "FLX_EMT_ORD",
    "FLX_EMT_TYP",
    "FLX_TRT_DTD",
    "ORG_CLE_NUM",
    "PRS_ORD_NUM",
    "REM_TYP_AFF",
]
# the earliest-fed line first (the SQL's ORDER BY of the netting)
FEED_ORDER = ["FLX_DIS_DTD", *(k for k in DCIR_KEYS if k != "FLX_DIS_DTD")]
FAILED_NIR = ["xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXS"]
# T_MCOaaC's return codes as clean_pmsi.sql reads them: booleans OK when false (SEJ_RET
# when true), strings OK when '0'; a null is never OK
OK_WHEN_FALSE = ("NIR_RET", "SEX_RET", "FHO_RET", "PMS_RET", "COH_NAI_RET", "COH_SEX_RET")
OK_WHEN_TRUE = ("SEJ_RET",)
OK_WHEN_ZERO = ("NAI_RET", "DAT_RET")
PATIENT = ["BEN_NIR_PSA", "BEN_RNG_GEM"]
# negative in a regularisation (the line's sign, quantity or amount; the dispensed quantity)
PRS_SIGNS = ["BSE_REM_SGN", "PRS_ACT_QTE", "PRS_PAI_MNT"]
PERSON = "BEN_IDT_ANO"


def _read(paths: list[Path], columns: list[str], filters: pc.Expression | None = None) -> pa.Table:
    """``columns`` of the files (one table, by name), rows kept by ``filters``."""
    tables = [pq.read_table(p, columns=columns, filters=filters) for p in paths]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def _days(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Day numbers since 1970-01-01 (``int32``) of dates, timestamps or ISO text."""
    if pa.types.is_timestamp(column.type):
        column = pc.cast(pc.floor_temporal(column, unit="day"), pa.date32())
    elif not pa.types.is_date32(column.type):
        column = pc.cast(column, pa.date32())
    return pc.cast(column, pa.int32())


def _same_key_type(left: pa.ChunkedArray, right: pa.ChunkedArray) -> tuple:
    """Keys compared as the SQL compares them (as text), unless both are integers already."""
    if pa.types.is_integer(left.type) and pa.types.is_integer(right.type):
        return pc.cast(left, pa.int64()), pc.cast(right, pa.int64())
    return pc.cast(left, pa.string()), pc.cast(right, pa.string())


def _negative(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Whether any of ``columns`` is negative (a null is not)."""
    out = np.zeros(len(frame), dtype=bool)
    for column in columns:
        out |= (frame[column] < 0).fillna(False).to_numpy(dtype=bool)
    return out


def index_stays(folder: Path) -> pd.DataFrame:
    """One row per person of the cohort: ``BEN_IDT_ANO`` and ``index_end`` (day number)."""
    b_files = sorted(folder.glob("T_MCO??B.parquet"))
    c_files = sorted(folder.glob("T_MCO??C.parquet"))
    ghm = pc.field("GRG_GHM")
    b = _read(
        b_files,
        ["ETA_NUM", "RSA_NUM", "DGN_PAL", "GRG_GHM"],
        ~ghm.is_null() & ~pc.starts_with(ghm, "90"),
    )
    code = pc.replace_substring_regex(pc.utf8_upper(b["DGN_PAL"]), "[ .-]", "")
    is_mi = pc.starts_with(code, MI_CODES[0])
    for prefix in MI_CODES[1:]:
        is_mi = pc.or_(is_mi, pc.starts_with(code, prefix))
    b = b.filter(pc.fill_null(is_mi, False))

    nir = pc.field("NIR_ANO_17")
    linked = ~nir.is_null() & ~nir.isin(FAILED_NIR)
    for name in OK_WHEN_FALSE:
        linked &= pc.field(name) == False  # noqa: E712 - an expression, not a test
    for name in OK_WHEN_TRUE:
        linked &= pc.field(name) == True  # noqa: E712
    for name in OK_WHEN_ZERO:
        linked &= pc.field(name).cast(pa.string()) == "0"
    c = _read(
        c_files,
        ["ETA_NUM", "RSA_NUM", "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF"],
        linked,
    )
    b_keys = {}
    c_keys = {}
    for key in ("ETA_NUM", "RSA_NUM"):
        b_keys[key], c_keys[key] = _same_key_type(b[key], c[key])
    b_frame = pd.DataFrame(b_keys)
    c_frame = pd.DataFrame(
        {
            **c_keys,
            "psa": c["NIR_ANO_17"].to_pandas(),
            "adm": _days(c["EXE_SOI_DTD"]).to_pandas(),
            "dis": _days(c["EXE_SOI_DTF"]).to_pandas(),
        }
    )
    stays = (
        b_frame.dropna()
        .merge(c_frame.dropna(subset=["ETA_NUM", "RSA_NUM"]), on=["ETA_NUM", "RSA_NUM"])
        .drop_duplicates(["ETA_NUM", "RSA_NUM"])
    )
    ben = pq.read_table(
        folder / "IR_BEN_R.parquet",
        columns=["BEN_NIR_PSA", PERSON],
        filters=pc.field("BEN_NIR_PSA").isin(pa.array(stays["psa"].unique())),
    ).to_pandas()
    mi = stays.merge(ben.dropna().drop_duplicates(), left_on="psa", right_on="BEN_NIR_PSA")
    # earliest admission, then earliest discharge (a null discharge last, as min() skips it)
    first = (
        mi.dropna(subset=["adm"])
        .sort_values([PERSON, "adm", "dis"], na_position="last")
        .drop_duplicates(PERSON)
    )
    return first[[PERSON, "dis"]].rename(columns={"dis": "index_end"}).reset_index(drop=True)


def product_classes(folder: Path) -> pd.DataFrame:
    """``PHA_CIP_C13`` and a 0/1 column per class, for the products of at least one class."""
    drugs = pq.read_table(folder / "IR_PHA_R.parquet", columns=["PHA_CIP_C13", "PHA_ATC_C07"])
    atc = drugs["PHA_ATC_C07"]
    frame = pd.DataFrame({"PHA_CIP_C13": drugs["PHA_CIP_C13"].to_pandas()})
    for name, prefixes in CLASSES.items():
        hit = np.zeros(drugs.num_rows, dtype=bool)
        for prefix in prefixes:
            hit |= pc.fill_null(pc.starts_with(atc, prefix), False).to_numpy()
        frame[name] = hit.astype(np.int8)
    frame = frame[frame[list(CLASSES)].any(axis=1)].dropna(subset=["PHA_CIP_C13"])
    return frame.groupby("PHA_CIP_C13", as_index=False)[list(CLASSES)].max()


def _to_pandas(table: pa.Table, not_null: Sequence[str] = ()) -> pd.DataFrame:
    """NumPy columns, dates as day numbers (``int32``), text as PyArrow strings (hashed by
    Arrow in merges and group-bys); without the rows with a null in ``not_null`` (join
    keys: a null matches nothing in SQL, and everything in pandas)."""
    if any(table.column(name).null_count for name in not_null):
        valid = [pc.is_valid(table.column(name)) for name in not_null]
        table = table.filter(functools.reduce(pc.and_, valid))
    for i, field in enumerate(table.schema):
        if pa.types.is_date32(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.int32()))
    return table.to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)


def _in_window(frame: pd.DataFrame) -> pd.DataFrame:
    delay = frame["day"] - frame["index_end"]
    return frame[(delay >= 0) & (delay <= WINDOW_DAYS)]


def _pack(frames: list[pd.DataFrame], keys: list[str]) -> list[np.ndarray] | None:
    """One exact ``int64`` per row of each frame for its composite ``keys``, -1 where one is
    null, or None when the keys' space passes 63 bits: a mixed radix over the columns, an
    integer column by its range, any other (or a sparse one) by its sorted codes over all
    the frames, so that the numbers sort as the keys do. Merges, look-ups and sorts on one
    integer instead of each key column."""
    packed = [np.zeros(len(f), dtype=np.int64) for f in frames]
    null = [np.zeros(len(f), dtype=bool) for f in frames]
    span = 1
    for key in keys:
        columns = [f[key] for f in frames]
        total = sum(len(c) for c in columns)
        codes = None
        if total and all(c.dtype.kind in "iu" for c in columns):
            lo = min(int(c.min()) for c in columns if len(c))
            size = max(int(c.max()) for c in columns if len(c)) - lo + 1
            if size <= 2 * total:
                codes = [c.to_numpy(np.int64) - lo for c in columns]
        if codes is None:
            joint, uniques = pd.factorize(pd.concat(columns, ignore_index=True), sort=True)
            size = max(len(uniques), 1)
            bounds = np.cumsum([0, *(len(c) for c in columns)])
            codes = [joint[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)]
        span *= size
        if span >= 2**63:
            return None
        for i, code in enumerate(codes):
            null[i] |= code < 0
            packed[i] = packed[i] * size + code
    for values, missing in zip(packed, null, strict=True):
        values[missing] = -1
    return packed


def _join(left: pd.DataFrame, right: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``left`` ⋈ ``right`` on the 9 DCIR keys (not null), and the columns that give the
    lines' feed order: the keys packed in that order when they fit in one integer (the
    only one of them then carried), else the keys themselves."""
    packed = _pack([left, right], FEED_ORDER)
    if packed is None:
        return left.merge(right, on=DCIR_KEYS), FEED_ORDER
    right_keys = pd.Index(packed[1])
    if not right_keys.is_unique:
        left = left.drop(columns=DCIR_KEYS).assign(feed=packed[0])
        right = right.drop(columns=DCIR_KEYS).assign(feed=packed[1])
        return left.merge(right, on="feed"), ["feed"]
    # one detail line per key (the usual case): a hash look-up, no merge
    at = right_keys.get_indexer(packed[0])
    found = at >= 0
    out = left.drop(columns=DCIR_KEYS)[found].reset_index(drop=True)
    detail = right.drop(columns=DCIR_KEYS).iloc[at[found]].reset_index(drop=True)
    out[detail.columns] = detail
    out["feed"] = packed[0][found]
    return out, ["feed"]


def _net(lines: pd.DataFrame, key: list[str], order: list[str]) -> pd.DataFrame:
    """The positive lines less those the regularisations cancel: each ``negative`` line of a
    ``key`` cancels the earliest positive one by ``order`` (only paired keys are ranked)."""
    negative = lines["negative"].to_numpy()
    positive = lines.loc[~negative, [*key, *order]]
    # a null key pairs with nothing, as in the SQL's join (group-bys drop null keys)
    cancels = lines.loc[negative, key].groupby(key).size().rename("cancel").reset_index()
    if cancels.empty:
        return positive
    packed = _pack([positive, cancels], key)
    if packed is None:
        merged = positive.merge(cancels, on=key, how="left", indicator=True)
        keep = merged["_merge"].to_numpy() == "left_only"
    else:
        keep = ~pd.Series(packed[0]).isin(packed[1][packed[1] >= 0]).to_numpy()
        keep |= packed[0] < 0
    hit = positive[~keep].merge(cancels, on=key).sort_values([*key, *order])
    rank = hit.groupby(key, sort=False).cumcount() + 1
    return pd.concat([positive[keep], hit.loc[rank > hit["cancel"], positive.columns]])


def flags(folder: Path, early: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cohort (:func:`index_stays`) and, indexed by the persons with a dispensing of a
    class in the window, a 0/1 column per class.

    ``early``: the DCIR lines cut to the cohort's patients, their windows and the classes'
    products before the netting (same answer, see the module's doc); else the whole DCIR
    is cleaned first, as the SQL and hdh's cohort toolkit do."""
    index = index_stays(folder)
    products = product_classes(folder)

    # the patients (BEN_NIR_PSA + BEN_RNG_GEM) of the cohort's persons, with their windows
    ben = pq.read_table(
        folder / "IR_BEN_R.parquet",
        columns=[*PATIENT, PERSON],
        filters=pc.field(PERSON).isin(pa.array(index[PERSON])) if early else None,
    )
    pairs = _to_pandas(ben).dropna().drop_duplicates().merge(index.dropna(), on=PERSON)

    prs_columns = [
        *DCIR_KEYS,
        *PATIENT,
        "EXE_SOI_DTD",
        "PRS_NAT_REF",
        *PRS_SIGNS,
    ]
    dpn = pc.field("DPN_QLF")
    wanted = dpn.is_null() | (dpn != 71)
    if early:
        wanted &= pc.field("BEN_NIR_PSA").isin(pa.array(pairs["BEN_NIR_PSA"].unique()))
    prs_table = pq.read_table(folder / "ER_PRS_F.parquet", columns=prs_columns, filters=wanted)
    prs_table = prs_table.append_column("day", _days(prs_table["EXE_SOI_DTD"]))
    prs = _to_pandas(prs_table.drop_columns(["EXE_SOI_DTD"]), [*DCIR_KEYS, *PATIENT])
    del prs_table
    prs["negative"] = _negative(prs, PRS_SIGNS)
    prs = prs.drop(columns=PRS_SIGNS)
    pha_filter = None
    if early:
        prs = _in_window(prs.merge(pairs, on=PATIENT))
        pha_filter = pc.field("DCT_ORD_NUM").isin(pa.array(prs["DCT_ORD_NUM"].unique())) & (
            pc.field("PHA_PRS_C13").isin(pa.array(products["PHA_CIP_C13"]))
        )
    pha = pq.read_table(
        folder / "ER_PHA_F.parquet",
        columns=[*DCIR_KEYS, "PHA_PRS_C13", "PHA_ACT_QSN"],
        filters=pha_filter,
    )
    pha = _to_pandas(pha, DCIR_KEYS)
    pha["qty"] = pha.pop("PHA_ACT_QSN")
    pha["negative_pha"] = _negative(pha, ["qty"])
    pha["qty"] = pha["qty"].abs()
    lines, order = _join(prs, pha)
    del prs, pha
    lines["negative"] |= lines.pop("negative_pha")

    # a patient's lines are repeated for each of its persons when early: the person is part
    # of the key then
    key = [*PATIENT, "day", "PRS_NAT_REF", "PHA_PRS_C13", "qty"]
    kept = _net(lines, [PERSON, *key] if early else key, order)
    del lines
    columns = [*PATIENT, "day", "PHA_PRS_C13", *([PERSON] if early else [])]
    dispensed = kept[columns].merge(products, left_on="PHA_PRS_C13", right_on="PHA_CIP_C13")
    if not early:
        dispensed = _in_window(dispensed.merge(pairs, on=PATIENT))
    return index, dispensed.groupby(PERSON, sort=False)[list(CLASSES)].max()


def headline(folder: Path, early: bool = True) -> dict[str, int]:
    """``n`` and the persons per class, ``any`` and ``all_four`` (``bench_cohort``'s dict);
    ``early``: see :func:`flags`."""
    index, by_person = flags(Path(folder), early)
    n_classes = by_person.sum(axis=1)
    return {
        "n": len(index),
        **{name: int(by_person[name].sum()) for name in CLASSES},
        "any": int((n_classes > 0).sum()),
        "all_four": int((n_classes == len(CLASSES)).sum()),
    }
