"""``hdh.studies`` on a synthetic extract: for each study the same headline on every engine,
equal to the independent DuckDB SQL computation (``bench/<study>.sql``), and within sampling
error of the effects the generator planted (secondary prevention after an infarction,
breast-screening behaviour)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import narwhals as nw
import pytest

from bench.study_sql import connect as sql_connection
from bench.study_sql import headline as sql_headline
from bench.study_sql import run as run_sql
from hdh import BadArgument
from hdh.cohort._frames import collect
from hdh.studies import breast_screening, mi_pathway, parkinson_trajectories
from jupyterlab_hdh.data.synth.pathways import SECONDARY_PREVENTION

ENGINES = ["pandas", "polars", "duckdb", "arrow"]


@pytest.fixture(scope="module")
def by_sql(synth_root: Path) -> dict[str, int]:
    return sql_headline(sql_connection(synth_root / "synth" / "v1"))


@pytest.mark.parametrize("engine", ENGINES)
def test_mi_pathway_gives_the_numbers_of_independent_sql(
    synth_mounted: Path, by_sql: dict[str, int], engine: str
) -> None:
    got = mi_pathway.headline(mi_pathway.read_tables("synth", engine=engine))
    want = dict(by_sql)
    assert got["n"] == want.pop("n") > 100
    assert got["counts"] == want
    assert got["within_90d"] == {k: v / got["n"] for k, v in got["counts"].items()}


@pytest.mark.parametrize("engine", ["duckdb", "arrow"])
def test_mi_pathway_cleans_only_the_cohorts_lines_with_the_same_answer(
    synth_mounted: Path, by_sql: dict[str, int], engine: str
) -> None:
    # the study cleans the DCIR lines of the cohort's persons only (a regularisation
    # cancels a line of the same patient); cleaning every line first, as the reference SQL
    # does, must give the same numbers, on a lazy engine and an eager one
    tables = mi_pathway.read_tables("synth", engine=engine)
    cut, whole = (mi_pathway.headline(tables, whole_dcir=w) for w in (False, True))
    assert cut == whole
    assert {"n": cut["n"], **cut["counts"]} == by_sql
    # and the cut keeps every line of a cohort person, none of anyone else
    index = mi_pathway.index_stays(tables)
    lines = nw.from_native(mi_pathway.cohort_lines(tables, index))
    prs = nw.from_native(tables["ER_PRS_F"])
    persons = (
        nw.from_native(tables["IR_BEN_R"])
        .with_columns(nw.col("BEN_IDT_ANO").cast(nw.String))
        .join(
            nw.from_native(index).select(nw.col("BEN_IDT_ANO")),
            on="BEN_IDT_ANO",
            how="semi",
        )
    )
    keys = ["BEN_NIR_PSA", "BEN_RNG_GEM"]
    expected = prs.join(persons.select(keys).unique(), on=keys, how="inner")
    assert len(collect(lines)) == len(collect(expected)) < len(collect(prs)) / 10


def test_mi_pathway_finds_the_planted_secondary_prevention(synth_mounted: Path) -> None:
    # the generator (pathways.myocardial_infarction): 6 % die in hospital; 88 % of the
    # survivors start each drug of SECONDARY_PREVENTION with its share, 1 to 61 days after
    # discharge, the others later than 120 days or never
    h: dict[str, Any] = mi_pathway.headline(mi_pathway.read_tables("synth"))
    start = 0.94 * 0.88
    share = {role: p for role, p in SECONDARY_PREVENTION}
    planted = {
        "antiplatelet": start * share["mi_antiplatelet"],
        "statin": start * share["mi_statin"],
        "beta_blocker": start * share["mi_betablocker"],
        "acei_arb": start * share["mi_acei"],
        "all_four": start * math.prod(share.values()),
        "any": start * (1 - math.prod(1 - p for p in share.values())),
    }
    n = h["n"]
    for name, p in planted.items():
        error = 3 * math.sqrt(p * (1 - p) / n) + 0.02  # sampling, and deaths before treatment
        assert abs(h["within_90d"][name] - p) <= error, (name, h["within_90d"][name], p, n)
    # a larger window cannot count fewer persons
    assert h["counts"]["any"] >= max(h["counts"][c] for c in mi_pathway.CLASSES)


# --------------------------------------------------------------------------- breast-screening


@pytest.mark.parametrize("engine", ENGINES)
def test_breast_screening_gives_the_numbers_of_independent_sql(
    synth_mounted: Path, engine: str
) -> None:
    params = {"period_start": "2022-01-01", "period_end": "2023-12-31"}
    got = breast_screening.headline(breast_screening.read_tables("synth", engine=engine), **params)
    con = sql_connection(synth_mounted)
    want = run_sql(con, "breast_screening", **params, age_min=50, age_max=74)
    assert (got["n"], got["screened"]) == (want["n"], want["screened"]) and got["n"] > 1000
    assert got["organised_share"] == want["organised"] / want["screened"]
    for band, numbers in got["by_age_band"].items():
        lo = int(band)
        one = run_sql(con, "breast_screening", **params, age_min=lo, age_max=lo + 4)
        assert (numbers["n"], numbers["screened"]) == (one["n"], one["screened"]), band
    assert sorted(got["by_age_band"]) == ["50", "55", "60", "65", "70"]
    assert sum(b["n"] for b in got["by_age_band"].values()) == got["n"]


def test_breast_screening_finds_the_planted_behaviour(synth_mounted: Path) -> None:
    # the generator (pathways.breast_screening): 52 % of women take the organised programme
    # (QEQK004 every ~2 years), 12 % opportunistic screening (QEQK001), the first screen
    # within two years of the window's start; over the whole window, women already over 50
    h = breast_screening.headline(
        breast_screening.read_tables("synth"),
        period_start="2019-01-01",
        period_end="2023-12-31",
        age_min=51,
        age_max=70,
    )
    n = h["n"]
    for got, p, of in (
        (h["coverage"], 0.64, n),
        (h["organised_share"], 0.52 / 0.64, h["screened"]),
    ):
        error = 3 * math.sqrt(p * (1 - p) / of) + 0.02  # sampling, deaths before a first screen
        assert abs(got - p) <= error, (got, p, of)


def test_breast_screening_refuses_a_bad_period(synth_mounted: Path) -> None:
    tables = breast_screening.read_tables("synth", engine="arrow")
    with pytest.raises(BadArgument, match="period_end 2021-01-01 is before period_start"):
        breast_screening.headline(tables, period_start="2022-01-01", period_end="2021-01-01")
    with pytest.raises(BadArgument, match="period_start must be a date such as 2022-01-01"):
        breast_screening.headline(tables, period_start="last year")


# --------------------------------------------------------------------- parkinson-trajectories


@pytest.mark.parametrize("engine", ENGINES)
def test_parkinson_trajectories_gives_the_numbers_of_independent_sql(
    synth_mounted: Path, engine: str
) -> None:
    got = parkinson_trajectories.headline(
        parkinson_trajectories.read_tables("synth", engine=engine)
    )
    want = run_sql(
        sql_connection(synth_mounted), "parkinson_trajectories", washout_start="2019-01-01",
        washout_days=365,
    )  # fmt: skip
    assert got["n"] == want["n"] > 20
    for group, prefix in (("<70", "young"), ("70+", "old")):
        counts = got["by_age_group"][group]["counts"]
        assert counts == {line: want[f"{prefix}_{line}"] for line in counts}, group


def test_parkinson_trajectories_finds_the_planted_first_lines(synth_mounted: Path) -> None:
    # the generator (pathways.parkinson): onset before 70 starts on an agonist (60 %) or a
    # MAO-B inhibitor (40 %), levodopa one to four years later; from 70, levodopa first
    h = parkinson_trajectories.headline(parkinson_trajectories.read_tables("synth"))
    young, old = h["by_age_group"]["<70"], h["by_age_group"]["70+"]
    assert young["counts"]["levodopa"] == 0 and young["n"] > 0
    p, n = 0.6, young["n"]
    assert abs(young["first_line"]["agonist"] - p) <= 3 * math.sqrt(p * (1 - p) / n) + 0.05
    # an age counted by years puts a few young onsets (69.x) in 70+
    assert old["first_line"]["levodopa"] >= 0.85
