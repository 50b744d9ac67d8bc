"""``hdh.read``, ``hdh.sql``, ``hdh.datasets`` and ``hdh.tables`` over a sandbox-like ``/data``:
the same rows on every engine, the version and years chosen as documented, pushdown, and a
one-line error for each mistake a researcher makes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import hdh

ENGINES_HERE = [
    e for e in ("pandas", "arrow", "duckdb", "polars", "spark", "cudf")
    if importlib.util.find_spec(hdh.ENGINES[e][0]) is not None
]  # fmt: skip


def as_pandas(result: Any) -> pd.DataFrame:
    """Any engine's result as a plain pandas frame, rows sorted, for comparison."""
    if hasattr(result, "toPandas"):
        frame = result.toPandas()
    elif hasattr(result, "to_pandas") and not isinstance(result, pd.DataFrame):
        frame = result.to_pandas()
    elif hasattr(result, "df"):
        frame = result.df()
    else:
        frame = result

    def plain(v: Any) -> Any:  # DuckDB's .df() gives DATE columns as timestamps
        if isinstance(v, pd.Timestamp):
            return v.date()
        return None if v is None or (isinstance(v, float) and v != v) or v is pd.NA else v

    frame = pd.DataFrame({c: [plain(v) for v in frame[c].tolist()] for c in frame.columns})
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_every_engine_reads_the_same_rows(data_root: Path, engine: str) -> None:
    result = hdh.read(
        "demo-snds.ER_PRS_F",
        engine=engine,
        columns=["BEN_NIR_PSA", "EXE_SOI_DTD", "PRS_ACT_QTE"],
        filters=[
            ("PRS_NAT_REF", "==", 1111),
            ("EXE_SOI_DTD", ">=", dt.date(2021, 6, 1)),
            ("BEN_NIR_PSA", "in", ["a", "c"]),
        ],
    )
    got = as_pandas(result)
    assert list(got.columns) == ["BEN_NIR_PSA", "EXE_SOI_DTD", "PRS_ACT_QTE"]
    # the same computed by hand from the file
    full = pd.read_parquet(data_root / "demo-snds/v2/ER_PRS_F.parquet")
    want = full[
        (full.PRS_NAT_REF == 1111)
        & (dt.date(2021, 6, 1) <= full.EXE_SOI_DTD)
        & full.BEN_NIR_PSA.isin(["a", "c"])
    ][["BEN_NIR_PSA", "EXE_SOI_DTD", "PRS_ACT_QTE"]]
    assert len(got) == len(want) > 10
    assert got.equals(as_pandas(want))


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_or_of_and_filters_and_not_in(data_root: Path, engine: str) -> None:
    filters = [
        [("PRS_ACT_QTE", "<", 0), ("BEN_NIR_PSA", "not in", ["a", "b"])],
        [("PRS_PAI_MNT", ">", 99.0)],
    ]
    got = as_pandas(hdh.read("demo-snds.ER_PRS_F", engine=engine, filters=filters))
    full = pd.read_parquet(data_root / "demo-snds/v2/ER_PRS_F.parquet")
    want = full[
        ((full.PRS_ACT_QTE < 0) & ~full.BEN_NIR_PSA.isin(["a", "b"])) | (full.PRS_PAI_MNT > 99.0)
    ]
    assert len(got) == len(want) and got.equals(as_pandas(want))


def test_pandas_is_arrow_backed(data_root: Path) -> None:
    df = hdh.read("demo-snds.IR_BEN_R")
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes), df.dtypes


def test_duckdb_pushes_projection_and_filters_into_the_scan(data_root: Path) -> None:
    rel = hdh.read(
        "demo-snds.ER_PRS_F",
        engine="duckdb",
        columns=["BEN_NIR_PSA"],
        filters=[("EXE_SOI_DTD", "<", dt.date(2021, 2, 1))],
    )
    plan = rel.explain()
    scan = plan[
        plan.index("PARQUET_SCAN") if "PARQUET_SCAN" in plan else plan.index("READ_PARQUET") :
    ]
    assert "EXE_SOI_DTD" in scan and "Filters" in scan, plan
    assert "PRS_PAI_MNT" not in plan  # an unread column is not scanned
    assert len(rel.df()) == 31


def test_arrow_scan_prunes_row_groups(data_root: Path) -> None:
    """The file has 8 row groups by date; a one-month filter keeps one group's rows."""
    table = hdh.read(
        "demo-snds.ER_PRS_F", engine="arrow", filters=[("EXE_SOI_DTD", "<", dt.date(2021, 1, 11))]
    )
    assert table.num_rows == 10


def test_the_newest_mounted_version_unless_one_is_named(data_root: Path) -> None:
    assert len(hdh.read("demo-snds.IR_BEN_R")) == 4  # v2
    assert len(hdh.read("demo-snds.IR_BEN_R", version="v1")) == 2


def test_a_yearly_table_reads_as_one_over_its_years(data_root: Path) -> None:
    for engine in ENGINES_HERE:
        got = as_pandas(hdh.read("demo-snds.T_MCOaaB", engine=engine))
        assert sorted(got["year"].tolist()) == [2021, 2021, 2022, 2022, 2022], engine
        assert got["SEJ_NBJ"].isna().sum() == 2, engine  # the 2021 file lacks the column
        only = as_pandas(
            hdh.read(
                "demo-snds.T_MCOaaB",
                engine=engine,
                years=[2022],
                columns=["ETA_NUM", "RSA_NUM", "year"],
                filters=[("DGN_PAL", "in", ["I21", "I219"])],
            )
        )
        assert only.to_dict("records") == [
            {"ETA_NUM": "010", "RSA_NUM": "1", "year": 2022},
            {"ETA_NUM": "020", "RSA_NUM": "2", "year": 2022},
        ], engine
        by_year = as_pandas(
            hdh.read("demo-snds.T_MCOaaB", engine=engine, filters=[("year", "==", 2021)])
        )
        assert len(by_year) == 2, engine


def test_sql_over_every_mounted_table(data_root: Path) -> None:
    n = hdh.sql('SELECT count(*) AS n FROM "demo-snds".IR_BEN_R').fetchall()
    assert n == [(4,)]
    n1 = hdh.sql('SELECT count(*) FROM "demo-snds".IR_BEN_R', versions={"demo-snds": "v1"})
    assert n1.fetchall() == [(2,)]
    years = hdh.sql(
        'SELECT year, count(*) FROM "demo-snds".T_MCOaaB GROUP BY year ORDER BY year'
    ).fetchall()
    assert years == [(2021, 2), (2022, 3)]
    joined = hdh.sql(
        'SELECT b.BEN_SEX_COD, count(*) FROM "demo-snds".ER_PRS_F p'
        ' JOIN "demo-snds".IR_BEN_R b USING (BEN_NIR_PSA) WHERE p.PRS_NAT_REF = ?'
        " GROUP BY 1 ORDER BY 1",
        params=[1111],
    ).fetchall()
    assert sum(n for _, n in joined) == 134


def test_datasets_and_tables(data_root: Path) -> None:
    ds = hdh.datasets()
    assert ds[["dataset", "version", "mounted"]].values.tolist() == [
        ["demo-snds", "v1", True],
        ["demo-snds", "v2", True],
        ["other", "v1", True],
    ]
    assert ds["permitted"].isna().all()  # no bridge: not known, not guessed
    t = hdh.tables("demo-snds").set_index("table")
    assert t.loc["ER_PRS_F", "rows"] == 400 and t.loc["ER_PRS_F", "columns"] == 5
    assert t.loc["T_MCOaaB", "rows"] == 5 and t.loc["T_MCOaaB", "years"] == [2021, 2022]
    assert t.loc["T_MCOaaB", "columns"] == 6  # the union of the years' columns, and year
    assert list(hdh.tables("demo-snds", version="v1")["table"]) == ["IR_BEN_R"]


def test_datasets_show_what_the_permit_grants_through_the_bridge(
    data_root: Path, bridge: dict[str, Any]
) -> None:
    bridge["whoami"] = {
        "permitted": [
            {"dataset": "demo-snds", "version": "v2"},
            {"dataset": "demo-snds", "version": "v3"},
        ]
    }
    ds = hdh.datasets().set_index(["dataset", "version"])
    assert ds.loc[("demo-snds", "v3"), "mounted"] == False  # noqa: E712 - numpy bool
    assert ds.loc[("demo-snds", "v3"), "permitted"] == True  # noqa: E712
    assert ds.loc[("other", "v1"), "permitted"] == False  # noqa: E712
    with pytest.raises(hdh.DatasetNotMounted, match="not mounted.*Change mounted versions") as e:
        hdh.read("demo-snds.IR_BEN_R", version="v3")
    assert not isinstance(e.value, hdh.DatasetNotPermitted)
    with pytest.raises(hdh.DatasetNotPermitted, match="not granted by this project's permit"):
        hdh.read("cnam-full.IR_BEN_R")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: hdh.read("ER_PRS_F"), hdh.BadArgument, "dataset.TABLE"),
        (lambda: hdh.read("nope.X"), hdh.DatasetNotMounted, "not mounted.*demo-snds, other"),
        (lambda: hdh.read("demo-snds.X", version="v9"), hdh.DatasetNotMounted, "mounted: v1, v2"),
        (lambda: hdh.read("demo-snds.ER_PRSF"), hdh.UnknownTable, "tables: ER_PRS_F, IR_BEN_R"),
        (lambda: hdh.read("demo-snds.T_MCOaaC"), hdh.UnknownTable, "no yearly table"),
        (
            lambda: hdh.read("demo-snds.T_MCOaaB", years=[2020]),
            hdh.UnknownTable,
            "years present: 2021, 2022",
        ),
        (lambda: hdh.read("demo-snds.IR_BEN_R", years=[2021]), hdh.BadArgument, "yearly tables"),
        (
            lambda: hdh.read("demo-snds.IR_BEN_R", columns=["BEN_NIR"]),
            hdh.UnknownColumn,
            "'BEN_NIR'.*columns: BEN_NIR_PSA, BEN_SEX_COD",
        ),
        (lambda: hdh.read("demo-snds.IR_BEN_R", columns="BEN_NIR_PSA"), hdh.BadArgument, "list"),
        (
            lambda: hdh.read("demo-snds.IR_BEN_R", filters=[("BEN_SEX_COD", "~", 1)]),
            hdh.BadArgument,
            "unknown filter operator",
        ),
        (
            lambda: hdh.read("demo-snds.IR_BEN_R", filters=[("SEX", "==", 1)]),
            hdh.UnknownColumn,
            "filter on unknown column 'SEX'",
        ),
        (
            lambda: hdh.read("demo-snds.IR_BEN_R", filters=[("BEN_SEX_COD", "in", 1)]),
            hdh.BadArgument,
            "list of values",
        ),
        (lambda: hdh.read("demo-snds.IR_BEN_R", engine="excel"), hdh.BadArgument, "engines:"),
        (lambda: hdh.sql('SELECT * FROM "demo-snds".NOPE'), hdh.HDHError, "^SQL error: "),
        (lambda: hdh.tables("demo-snds.IR_BEN_R"), hdh.BadArgument, "dataset name"),
    ],
)
def test_each_mistake_gets_one_clear_line(
    data_root: Path, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as e:
        call()
    assert isinstance(e.value, hdh.HDHError)
    assert "\n" not in str(e.value)


def test_an_engine_that_is_not_installed_says_so(data_root: Path) -> None:
    missing = [e for e in ("cudf", "spark", "polars") if e not in ENGINES_HERE]
    if not missing:
        pytest.skip("every optional engine is installed here")
    with pytest.raises(hdh.EngineUnavailable, match=f"engine '{missing[0]}' is not available"):
        hdh.read("demo-snds.IR_BEN_R", engine=missing[0])


def test_import_hdh_loads_no_engine_and_nothing_of_the_host_side() -> None:
    code = (
        "import sys, hdh, hdh.errors\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('duckdb', 'polars', 'pyspark',"
        " 'cudf', 'jupyterlab_hdh', 'sqlalchemy', 'alembic', 'fastapi', 'jupyterhub')]\n"
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
