"""``hdh.cohort`` on small hand-built frames with known answers, on every engine.

Each case builds a PyArrow table, converts it to each engine's native frame (pandas with
Arrow dtypes, Polars eager and lazy, DuckDB, PyArrow, PySpark when installed), runs the
function and compares the result, as sorted rows, with the answer worked out by hand.
The synthetic-extract checks are in ``test_cohort_synth.py``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import narwhals as nw
import pyarrow as pa
import pytest

from hdh import BadArgument, UnknownColumn, cohort

ENGINES = [
    "pandas",
    "polars",
    "polars-lazy",
    "duckdb",
    "pyarrow",
    "pyspark",
    pytest.param("cudf", marks=pytest.mark.gpu),
]


def _spark() -> Any:
    pytest.importorskip("pyspark", reason="pyspark is not installed in this environment")
    import hdh

    return hdh.spark()  # the sandbox's session: local, UTC, Arrow transfers


def native(table: pa.Table, engine: str) -> Any:
    """``table`` as a native frame of ``engine``."""
    if engine == "pandas":
        import pandas as pd

        return table.to_pandas(types_mapper=pd.ArrowDtype)
    if engine in ("polars", "polars-lazy"):
        import polars as pl

        frame = pl.from_arrow(table)
        return frame.lazy() if engine == "polars-lazy" else frame
    if engine == "duckdb":
        import duckdb

        return duckdb.from_arrow(table)
    if engine == "pyarrow":
        return table
    if engine == "cudf":
        from .gpu import cudf_or_skip

        return cudf_or_skip().DataFrame.from_arrow(table)
    return _spark().createDataFrame(table)  # from Arrow: integer columns keep their nulls


def library(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def expected_library(engine: str) -> str:
    return {"polars-lazy": "polars", "pyspark": "pyspark"}.get(engine, engine)


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:  # Spark's timestamps
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def rows(frame: Any, columns: list[str] | None = None) -> list[tuple[Any, ...]]:
    """The rows of a native frame, sorted (nulls first), as plain Python tuples."""
    if library(frame) == "pandas":
        frame = frame.reset_index(drop=True)
    nwf = nw.from_native(frame)
    if isinstance(nwf, nw.LazyFrame):
        nwf = nwf.collect()
    if columns is not None:
        nwf = nwf.select(columns)
    out = [tuple(_plain(v) for v in row.values()) for row in nwf.to_arrow().to_pylist()]
    return sorted(out, key=lambda r: tuple((v is not None, str(v)) for v in r))


def check(engine: str, table: pa.Table, func: Callable[[Any], Any], expected: list) -> Any:
    """Run ``func`` on ``table`` in ``engine``; the result is of the same library, as expected."""
    result = func(native(table, engine))
    assert library(result) == expected_library(engine)
    expected = expect(engine, expected)
    assert rows(result) == sorted(expected, key=lambda r: tuple((v is not None, str(v)) for v in r))
    return result


def expect(engine: str, expected: list) -> list:
    """``expected`` rows as ``engine`` gives them: on cuDF, which has no date type, dates are
    datetimes at midnight."""
    if engine != "cudf":
        return expected
    return [tuple(_midnight(v) for v in row) for row in expected]


def _midnight(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def D(day: str) -> dt.date:  # noqa: N802 - reads as a literal
    return dt.date.fromisoformat(day)


def T(day: str) -> dt.datetime:  # noqa: N802
    return dt.datetime.fromisoformat(day)


engines = pytest.mark.parametrize("engine", ENGINES)


# --------------------------------------------------------------------------- DCIR filters


@engines
def test_information_lines_are_dropped(engine: str) -> None:
    table = pa.table({"id": [1, 2, 3, 4], "DPN_QLF": pa.array([0, 71, None, 71], pa.int64())})
    check(engine, table, cohort.drop_information_lines, [(1, 0), (3, None)])


DCIR = pa.table(
    {
        "line": ["A", "B", "C", "D", "E", "F"],
        "BEN_NIR_PSA": ["p1", "p1", "p1", "p1", "p2", "p2"],
        "BEN_RNG_GEM": [1, 1, 1, 1, 1, 1],
        "EXE_SOI_DTD": [D("2021-01-05")] * 4 + [D("2021-01-05"), D("2021-02-01")],
        "PRS_NAT_REF": [3317] * 6,
        "PHA_PRS_C13": [3400930000001, 3400930000001, 3400930000002, 3400930000001]
        + [3400930000001] * 2,
        "PHA_ACT_QSN": [1, -1, 1, 1, 2, 2],
        "BSE_REM_SGN": [1, -1, 1, 1, 1, 1],
        "FLX_DIS_DTD": [D("2021-02-01"), D("2021-04-01"), D("2021-02-01"), D("2021-03-01")]
        + [D("2021-02-01"), D("2021-03-01")],
        "DCT_ORD_NUM": [1, 5, 2, 3, 4, 6],
    }
)


@engines
def test_regularisations_cancel_the_line_they_regularise(engine: str) -> None:
    # B (negative) cancels A, the earliest-fed identical line of p1; D (fed later) stays,
    # C (another drug) and E, F (another patient) are untouched
    check(
        engine,
        DCIR,
        lambda f: cohort.drop_regularisations(f),
        [tuple(r.values()) for r in DCIR.to_pylist() if r["line"] in "CDEF"],
    )
    check(
        engine,
        DCIR,
        lambda f: cohort.drop_regularisations(f, net=False),
        [tuple(r.values()) for r in DCIR.to_pylist() if r["line"] != "B"],
    )


@engines
def test_regularisations_are_found_by_amount_alone(engine: str) -> None:
    table = pa.table({"id": [1, 2], "PRS_PAI_MNT": [12.5, -12.5]})
    check(engine, table, lambda f: cohort.drop_regularisations(f, net=False), [(1, 12.5)])


# --------------------------------------------------------------------------- PMSI filters


@engines
def test_error_stays_are_dropped(engine: str) -> None:
    table = pa.table(
        {"RSA_NUM": [1, 2, 3, 4, 5], "GRG_GHM": ["05M041", "90Z00Z", "90Z03Z", None, "28Z04Z"]}
    )
    check(engine, table, cohort.drop_error_stays, [(1, "05M041"), (5, "28Z04Z")])


@engines
def test_duplicate_stays_are_dropped(engine: str) -> None:
    table = pa.table(
        {
            "ETA_NUM": [100, 100, 100, 200],
            "RSA_NUM": [1, 1, 2, 1],
            "GRG_GHM": ["05M041", "05M041", "05M042", "05M041"],
        }
    )
    expected = [(100, 1, "05M041"), (100, 2, "05M042"), (200, 1, "05M041")]
    check(engine, table, cohort.drop_duplicate_stays, expected)
    ordered = pa.table({"ETA_NUM": [1, 1, 1], "RSA_NUM": [7, 7, 8], "SOR_ANN": [2022, 2021, 2021]})
    check(
        engine,
        ordered,
        lambda f: cohort.drop_duplicate_stays(f, order_by=["SOR_ANN"]),
        [(1, 7, 2021), (1, 8, 2021)],
    )


@engines
def test_failed_linkage_is_dropped(engine: str) -> None:
    # the generator's types: booleans read as the schema reads '0' (SEJ_RET: true is OK)
    table = pa.table(
        {
            "RSA_NUM": [1, 2, 3, 4, 5, 6],
            "NIR_ANO_17": ["a" * 17, "xxxxxxxxxxxxxxxxx", "b" * 17, "c" * 17, "d" * 17, "e" * 17],
            "NIR_RET": [False, True, False, False, False, False],
            "NAI_RET": ["0", "0", "9", "0", "0", "0"],
            "SEX_RET": [False, False, False, True, False, False],
            "SEJ_RET": [True, True, True, True, False, True],
        }
    )
    result = check(
        engine,
        table,
        cohort.drop_failed_linkage,
        [
            tuple(table.slice(0, 1).to_pylist()[0].values()),
            tuple(table.slice(5, 1).to_pylist()[0].values()),
        ],
    )
    assert len(rows(result)) == 2


# --------------------------------------------------------------------------- codes

CODES = pa.table(
    {
        "id": [1, 2, 3, 4, 5, 6, 7],
        "DGN_PAL": ["I21.0", "i210", "I2200", "I25", None, "C07AB02", " I21 "],
    }
)


@engines
def test_match_codes_filters_by_prefix_case_and_dot_insensitive(engine: str) -> None:
    check(
        engine,
        CODES,
        lambda f: cohort.match_codes(f, "DGN_PAL", ["I21", "i22"]),
        [(1, "I21.0"), (2, "i210"), (3, "I2200"), (7, " I21 ")],
    )
    # a dotted prefix is the same prefix; a longer prefix is narrower
    check(
        engine,
        CODES,
        lambda f: cohort.match_codes(f, "DGN_PAL", "I21.0"),
        [(1, "I21.0"), (2, "i210")],
    )
    check(engine, CODES, lambda f: cohort.match_codes(f, "DGN_PAL", ["C07"]), [(6, "C07AB02")])


@engines
def test_match_codes_as_a_boolean_column(engine: str) -> None:
    flags = [True, True, True, False, False, False, True]
    check(
        engine,
        CODES,
        lambda f: cohort.match_codes(f, "DGN_PAL", ["I21", "I22"], flag="mi"),
        [(*r.values(), m) for r, m in zip(CODES.to_pylist(), flags, strict=True)],
    )


def test_match_codes_rejects_empty_prefixes() -> None:
    with pytest.raises(BadArgument, match="at least one"):
        cohort.match_codes(CODES, "DGN_PAL", [])
    with pytest.raises(BadArgument, match="empty code prefix"):
        cohort.match_codes(CODES, "DGN_PAL", ["."])
    with pytest.raises(UnknownColumn, match="no column 'DGN_REL'"):
        cohort.match_codes(CODES, "DGN_REL", ["I21"])


# --------------------------------------------------------------------------- episodes

STAYS = pa.table(
    {
        "NIR_ANO_17": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "ETA_NUM": [1, 2, 2, 1, 1, 1, 1, 3],
        "RSA_NUM": [1, 2, 3, 4, 5, 6, 7, 8],
        # a: transfer on the discharge day, then readmitted the day after, then 10 days later
        # b: a stay nested in a longer one, then 2 days after the discharge; c: one stay
        "EXE_SOI_DTD": [T("2021-01-01"), T("2021-01-03"), T("2021-01-09"), T("2021-01-20")]
        + [T("2021-01-01"), T("2021-01-02"), T("2021-01-12"), T("2021-05-05")],
        "EXE_SOI_DTF": [T("2021-01-03"), T("2021-01-08"), T("2021-01-10"), T("2021-01-22")]
        + [T("2021-01-10"), T("2021-01-04"), T("2021-01-13"), T("2021-05-05")],
        "DGN_PAL": ["I210", "I214", "I200", "I509", "I500", "J18", "I501", "C509"],
        "ENT_MOD": ["8", "7", "8", "8", "8", "6", "8", "8"],
        "SOR_MOD": ["7", "8", "8", "9", "8", "8", "8", "8"],
    }
)


@engines
def test_stays_chained_by_transfers_merge_into_episodes(engine: str) -> None:
    expected = [
        ("a", 1, T("2021-01-01"), T("2021-01-10"), "I210", 3),
        ("a", 2, T("2021-01-20"), T("2021-01-22"), "I509", 1),
        ("b", 1, T("2021-01-01"), T("2021-01-10"), "I500", 2),
        ("b", 2, T("2021-01-12"), T("2021-01-13"), "I501", 1),
        ("c", 1, T("2021-05-05"), T("2021-05-05"), "C509", 1),
    ]
    check(engine, STAYS, cohort.merge_episodes, expected)


@engines
def test_episode_gap_entry_modes_and_last_stay_columns(engine: str) -> None:
    # gap 0: only a same-day admission continues; a's readmission the day after does not
    result = cohort.merge_episodes(native(STAYS, engine), gap_days=0)
    assert [r[5] for r in rows(result)] == [2, 1, 1, 2, 1, 1]
    # gap 2 merges b's last stay; only transfers (ENT_MOD 6/7) continue an episode
    result = cohort.merge_episodes(native(STAYS, engine), gap_days=2)
    assert [(r[0], r[5]) for r in rows(result)] == [("a", 3), ("a", 1), ("b", 3), ("c", 1)]
    check(
        engine,
        STAYS,
        lambda f: cohort.merge_episodes(
            f, entry_modes=["6", "7"], first=["ETA_NUM"], last=["SOR_MOD", "RSA_NUM"]
        ),
        [
            ("a", 1, T("2021-01-01"), T("2021-01-08"), "I210", 1, "8", 2, 2),
            ("a", 2, T("2021-01-09"), T("2021-01-10"), "I200", 2, "8", 3, 1),
            ("a", 3, T("2021-01-20"), T("2021-01-22"), "I509", 1, "9", 4, 1),
            ("b", 1, T("2021-01-01"), T("2021-01-10"), "I500", 1, "8", 6, 2),
            ("b", 2, T("2021-01-12"), T("2021-01-13"), "I501", 1, "8", 7, 1),
            ("c", 1, T("2021-05-05"), T("2021-05-05"), "C509", 3, "8", 8, 1),
        ],
    )


def test_episode_gap_must_be_a_whole_number() -> None:
    with pytest.raises(BadArgument, match="gap_days"):
        cohort.merge_episodes(STAYS, gap_days=-1)


# --------------------------------------------------------------------------- events

IR_PHA_R = pa.table(
    {"PHA_CIP_C13": [3400930000001, 3400930000002], "PHA_ATC_C07": ["C07AB02", "B01AC06"]}
)


@engines
def test_event_table_from_stays_acts_and_dispensings(engine: str) -> None:
    stays = STAYS.slice(0, 2)
    acts = pa.table(
        {
            "BEN_NIR_PSA": ["a", "b"],
            "CAM_PRS_IDE": ["QEQK004", "DDAF006"],
            "EXE_SOI_DTD": [D("2021-03-01"), D("2021-03-02")],
        }
    )
    lines = pa.table(
        {
            "BEN_NIR_PSA": ["a", "a", "b"],
            "PHA_PRS_C13": [3400930000001, 3400930000002, 3400939999999],  # the last: unknown
            "EXE_SOI_DTD": [D("2021-01-15"), D("2021-01-16"), D("2021-01-17")],
            "PHA_ACT_QSN": [3, 1, 1],
        }
    )

    def build(engine_frames: dict[str, Any]) -> Any:
        return cohort.event_table(
            cohort.stay_events(engine_frames["stays"]),
            cohort.act_events(engine_frames["acts"]),
            cohort.dispensing_events(
                engine_frames["lines"], engine_frames["drugs"], duration_days=28
            ),
        )

    frames = {"stays": stays, "acts": acts, "lines": lines, "drugs": IR_PHA_R}
    result = build({k: native(v, engine) for k, v in frames.items()})
    assert library(result) == expected_library(engine)
    assert rows(result) == [
        ("a", "act", "QEQK004", 1.0, 1.0, D("2021-03-01"), D("2021-03-01")),
        ("a", "dispensing", "B01AC06", 1.0, 1.0, D("2021-01-16"), D("2021-02-13")),
        ("a", "dispensing", "C07AB02", 3.0, 1.0, D("2021-01-15"), D("2021-02-12")),
        ("a", "stay", "I210", 1.0, 1.0, D("2021-01-01"), D("2021-01-03")),
        ("a", "stay", "I214", 1.0, 1.0, D("2021-01-03"), D("2021-01-08")),
        ("b", "act", "DDAF006", 1.0, 1.0, D("2021-03-02"), D("2021-03-02")),
    ]
    assert nw.from_native(result).collect_schema().names() == list(cohort.EVENT_COLUMNS)
    # episodes as events: value = the number of stays merged
    episodes = cohort.merge_episodes(native(STAYS, engine))
    ev = cohort.match_codes(cohort.stay_events(episodes, value="stays"), "group", ["I21"])
    assert rows(ev) == [("a", "stay", "I210", 3.0, 1.0, D("2021-01-01"), D("2021-01-10"))]


def test_frames_of_different_libraries_are_refused() -> None:
    import polars as pl

    with pytest.raises(BadArgument, match="same library"):
        cohort.dispensing_events(pl.from_arrow(DCIR), IR_PHA_R)
    with pytest.raises(BadArgument, match="must be a data frame"):
        cohort.drop_error_stays([1, 2, 3])


# --------------------------------------------------------------------------- attrition


@engines
def test_attrition_counts_persons_and_marks_small_counts(engine: str) -> None:
    people = pa.table(
        {"BEN_IDT_ANO": [f"p{i}" for i in range(40)] + ["p0"], "age": list(range(40)) + [0]}
    )
    flow = cohort.Attrition()
    frame = flow.step("all persons", native(people, engine))
    nwf = nw.from_native(frame)
    flow.step("aged 5 or more", nwf.filter(nw.col("age") >= 5).to_native())
    flow.step("aged 8 or more", nwf.filter(nw.col("age") >= 8).to_native())
    flow.step("aged 35 or more", nwf.filter(nw.col("age") >= 35).to_native())
    assert [(s.remaining, s.excluded) for s in flow.steps] == [
        (40, None),
        (35, 5),
        (32, 3),
        (5, 27),
    ]
    table = flow.to_native()
    assert library(table) == expected_library(engine)
    assert rows(table) == [
        (1, "all persons", 40, None, False, False),
        (2, "aged 5 or more", None, None, False, True),  # 35 = 40 - 5 would give the 5 away
        (3, "aged 8 or more", 32, None, False, True),
        (4, "aged 35 or more", None, None, True, False),  # 27 = 32 - 5 too
    ]
    text = str(flow).splitlines()
    assert [line.split()[-2:] for line in text[1:5]] == [
        ["40", "-"],
        ["hidden", "<10"],
        ["32", "<10"],
        ["<10", "hidden"],
    ]
    assert text[5] == "<10: fewer than 10 persons (disclosive; not for export)"
    assert text[6].startswith("hidden: suppressed so that no small count can be recovered")
    shown = cohort.Attrition(threshold=4, suppress=False)
    shown.add("start", 40)
    shown.add("end", 3)
    assert rows(shown.to_native(backend="pyarrow")) == [
        (1, "start", 40, None, False, False),
        (2, "end", 3, 37, True, False),
    ]
    assert "3*" in str(shown)


@pytest.mark.parametrize(
    "counts",
    [[100, 95, 90, 3], [8, 5, 2], [50, 45, 40, 35, 30], [100, 50, 41, 40, 12, 3], [20, 20, 11]],
)
def test_attrition_never_lets_a_small_count_be_recovered_by_subtraction(counts: list) -> None:
    flow = cohort.Attrition()
    for i, n in enumerate(counts):
        flow.add(f"step {i}", n)
    table = rows(flow.to_native(backend="pyarrow"))
    remaining = [r[2] for r in table]
    excluded = [r[3] for r in table]
    for i, n in enumerate(counts):
        if 0 < n < 10:
            assert remaining[i] is None
        if i and 0 < counts[i - 1] - n < 10:
            assert excluded[i] is None
        if i:  # remaining[i-1] = remaining[i] + excluded[i]: never exactly one unknown
            assert [remaining[i - 1], remaining[i], excluded[i]].count(None) != 1
    assert remaining[0] == (counts[0] if counts[0] >= 10 else None)


def test_attrition_default_threshold_is_the_airlocks() -> None:
    from hdh.disclosure.config import CheckConfig

    assert CheckConfig().safe_threshold == cohort.DISCLOSURE_THRESHOLD


def test_attrition_needs_the_person_column() -> None:
    with pytest.raises(BadArgument, match="no person column 'BEN_IDT_ANO'"):
        cohort.Attrition().step("x", CODES)
    flow = cohort.Attrition(person=None)
    flow.step("rows", CODES)
    assert flow.steps[0].remaining == 7


# --------------------------------------------------------------------------- joins


@engines
def test_joins_dcir_keys_mco_keys_and_persons(engine: str) -> None:
    keys = {k: [1, 2] for k in cohort.DCIR_KEYS}
    prs = pa.table({**keys, "BEN_NIR_PSA": ["s1", "s2"], "BEN_RNG_GEM": [1, 1]})
    cam = pa.table({**{k: [2] for k in cohort.DCIR_KEYS}, "CAM_PRS_IDE": ["QEQK004"]})
    lines = cohort.dcir_lines(native(prs, engine), native(cam, engine))
    assert rows(lines, ["BEN_NIR_PSA", "CAM_PRS_IDE"]) == [("s2", "QEQK004")]
    # one person, two pseudonyms (s1, s2): both lines get the same BEN_IDT_ANO
    ben = pa.table(
        {
            "BEN_NIR_PSA": ["s1", "s2", "s3"],
            "BEN_RNG_GEM": [1, 1, 1],
            "BEN_IDT_ANO": ["P", "P", "Q"],
        }
    )
    linked = cohort.link_persons(native(prs, engine), native(ben, engine))
    assert rows(linked, ["BEN_NIR_PSA", "BEN_IDT_ANO"]) == [("s1", "P"), ("s2", "P")]
    # PMSI: keys are integers in C and strings in A; the link has no twin rank
    c = pa.table(
        {
            "ETA_NUM": [10, 10],
            "RSA_NUM": [1, 2],
            "NIR_ANO_17": ["s1", "s3"],
            "EXE_SOI_DTD": [T("2021-01-01"), T("2021-02-01")],
            "EXE_SOI_DTF": [T("2021-01-03"), T("2021-02-02")],
        }
    )
    a = pa.table(
        {"ETA_NUM": ["10", "10"], "RSA_NUM": ["2", "2"], "CDC_ACT": ["DDAF006", "DDQH009"]}
    )
    acts = cohort.act_events(
        cohort.link_persons(
            cohort.mco_acts(native(a, engine), native(c, engine)),
            native(ben, engine),
            psa="NIR_ANO_17",
        ),
        patient="BEN_IDT_ANO",
        code="CDC_ACT",
    )
    assert rows(acts) == expect(
        engine,
        [
            ("Q", "act", "DDAF006", 1.0, 1.0, D("2021-02-01"), D("2021-02-01")),
            ("Q", "act", "DDQH009", 1.0, 1.0, D("2021-02-01"), D("2021-02-01")),
        ],
    )


@pytest.mark.parametrize("engine", ["pandas", "polars", "duckdb", "pyarrow"])
def test_first_row_per_stay_holds_on_tables_larger_than_arrow_join_batches(engine: str) -> None:
    # narwhals' partitioned windows join groups back by position, which PyArrow's hash join
    # does not keep past 64k rows: the toolkit joins group values on their keys instead
    import numpy as np

    rng = np.random.default_rng(3)
    n = 150_000
    eta = rng.integers(0, 20_000, n)
    rsa = rng.integers(0, 5, n)
    day = rng.permutation(n)  # distinct, so the first row of each stay is unambiguous
    table = pa.table({"ETA_NUM": eta, "RSA_NUM": rsa, "day": day})
    first: dict[tuple[int, int], int] = {}
    for e, r, d in zip(eta.tolist(), rsa.tolist(), day.tolist(), strict=True):
        first[(e, r)] = min(d, first.get((e, r), d))
    kept = cohort.drop_duplicate_stays(native(table, engine), order_by=["day"])
    assert rows(kept) == sorted(
        ((e, r, d) for (e, r), d in first.items()),
        key=lambda row: tuple((v is not None, str(v)) for v in row),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_group_sums_total_and_run_per_group_and_leave_null_keys_out(engine: str) -> None:
    # the window every engine shares (one pass where the library has partitioned windows,
    # sorted running sums less each group's start on PyArrow and cuDF): rows of a group
    # interleaved with other groups, zeros that must not advance the run, null keys
    from hdh.cohort._frames import group_sums, wrap

    table = pa.table(
        {
            "k": ["a", "b", "a", "a", None, "b", "a", None],
            "o": [4, 1, 1, 3, 1, 2, 2, 2],
            "v": pa.array([1, 1, 0, 1, 1, 1, 1, 1], pa.int64()),
        }
    )

    def sums(frame: Any) -> Any:
        out = group_sums(wrap(frame), ["k"], totals={"t": "v"}, running={"r": "v"}, order_by=["o"])
        return out.with_columns(nw.col("t").cast(nw.Int64)).select("k", "o", "t", "r").to_native()

    result = sums(native(table, engine))
    got = {(k, o): (t, r) for k, o, t, r in rows(result)}
    # totals: a = 3, b = 2, null keys none (nor a run); runs in the order of ``o`` within the group
    assert {key: got[key] for key in got if key[0] is not None} == {
        ("a", 1): (3, 0),
        ("a", 2): (3, 1),
        ("a", 3): (3, 2),
        ("a", 4): (3, 3),
        ("b", 1): (2, 1),
        ("b", 2): (2, 2),
    }
    assert [got[(None, 1)], got[(None, 2)]] == [(None, None), (None, None)]


def test_computed_once_holds_the_rows_so_plans_built_on_it_do_not_repeat_them(
    tmp_path: Any,
) -> None:
    # a lazy DuckDB relation over a file, once computed, no longer reads the file (a plan
    # that uses it twice would otherwise scan and compute it twice); Polars likewise
    import duckdb
    import polars as pl
    import pyarrow.parquet as pq

    from hdh.cohort._frames import computed_once

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    rel = duckdb.connect().sql(f"SELECT a * 2 AS b FROM read_parquet('{path}')")
    held = computed_once(rel)
    path.unlink()  # what was computed survives its source
    assert sorted(held.fetchall()) == [(2,), (4,), (6,)]
    assert sorted(held.join(held.set_alias("o"), "b").fetchall()) == [(2,), (4,), (6,)]
    lazy = pl.LazyFrame({"a": [1, 2]}).with_columns(b=pl.col("a") * 2)
    assert computed_once(lazy).explain().startswith("DF ")  # a frame in memory, no plan
    eager = pl.DataFrame({"a": [1]})
    assert computed_once(eager) is eager
