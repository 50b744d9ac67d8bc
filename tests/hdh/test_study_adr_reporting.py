"""``hdh.studies.adr_reporting`` on a synthetic extract: the same headline on every engine,
equal to the independent DuckDB SQL computation (``bench/adr_reporting.sql``), within
sampling error of the reporting the generator planted, and ``hdh template run
adr-reporting`` writing that headline and a checked table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.study_sql import connect as sql_connection
from hdh.errors import BadArgument
from hdh.studies import adr_reporting
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.data.synth.reference import PV_PROFILES

ENGINES = ["pandas", "polars", "duckdb", "arrow"]
SQL = (Path(__file__).resolve().parents[2] / "bench" / "adr_reporting.sql").read_text()
#: The generator's last day (``generate``'s default years, 2019 to 2023).
DATA_END = "2023-12-31"


def sql_headline(
    con: Any,
    start: str = adr_reporting.START,
    end: str = adr_reporting.END,
    window_days: int = adr_reporting.WINDOW_DAYS,
) -> dict[str, Any]:
    """The SQL's rows in the shape of :func:`adr_reporting.headline`."""
    cur = con.execute(SQL, {"start": start, "end": end, "window_days": window_days})  # rows
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def rate(reports: int, users: int) -> float | None:
        return 1000 * reports / users if users else None

    drugs = {
        r["drug"]: {
            "new_users": int(r["new_users"]),
            "reports": int(r["reports"]),
            "serious": int(r["serious"]),
            "rate_per_1000": rate(int(r["reports"]), int(r["new_users"])),
        }
        for r in rows
    }
    total = {k: sum(d[k] for d in drugs.values()) for k in ("new_users", "reports", "serious")}
    return {
        "n_new_users": int(rows[0]["n_new_users"]),
        "drugs": drugs,
        "overall": {**total, "rate_per_1000": rate(total["reports"], total["new_users"])},
        "reporters": {r: sum(int(row[r]) for row in rows) for r in adr_reporting.REPORTERS},
        "start": start,
        "end": end,
        "window_days": window_days,
    }


@pytest.fixture(scope="module")
def by_sql(synth_root: Path) -> dict[str, Any]:
    return sql_headline(sql_connection(synth_root / "synth" / "v1"))


@pytest.mark.parametrize("engine", ENGINES)
def test_adr_reporting_gives_the_numbers_of_independent_sql(
    synth_mounted: Path, by_sql: dict[str, Any], engine: str
) -> None:
    got = adr_reporting.headline(adr_reporting.read_tables("synth", engine=engine))
    assert got == by_sql
    assert got["n_new_users"] > 10_000 and got["overall"]["reports"] > 150
    assert list(got["drugs"]) == list(adr_reporting.DRUGS)


def planted_rate(prefix: str) -> float:
    """The generator's reporting probability for a first dispensing of a drug of ``prefix``."""
    return next(rate for start, rate, _ in PV_PROFILES if prefix.startswith(start))


def expected_reports(con: Any, window_days: int) -> dict[str, float]:
    """Per class, the reports the generator's mechanism gives the study's new uses.

    The generator (``pathways.pharmacovigilance``) draws a case at each person's first
    dispensing of each pack (CIP13) with the probability of its ATC (``PV_PROFILES``); the
    reaction begins 1 + floor(min(Exp(mean 35), 300)) days later and is kept when that is
    by the extract's end (and before death). So a pack first dispensed on day d, for a new
    use whose window ends on L (the first dispensing of the class + ``window_days``, at
    most the extract's end), is counted with probability rate x P(min(E, 300) < L - d).
    Dispensings here: plain positive DCIR lines, not the study's cleaning.
    """
    rows = con.execute(
        """
        WITH d AS (
            SELECT b.BEN_IDT_ANO AS person, CAST(h.PHA_PRS_C13 AS VARCHAR) AS cip,
                   upper(r.PHA_ATC_C07) AS atc, CAST(p.EXE_SOI_DTD AS DATE) AS day
            FROM ER_PRS_F p
            JOIN ER_PHA_F h USING (DCT_ORD_NUM, FLX_DIS_DTD, FLX_EMT_NUM, FLX_EMT_ORD,
                                   FLX_EMT_TYP, FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM,
                                   REM_TYP_AFF)
            JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) b
              USING (BEN_NIR_PSA, BEN_RNG_GEM)
            JOIN IR_PHA_R r ON CAST(r.PHA_CIP_C13 AS VARCHAR) = CAST(h.PHA_PRS_C13 AS VARCHAR)
            WHERE coalesce(p.DPN_QLF, 0) <> 71 AND p.BSE_REM_SGN > 0
        )
        SELECT person, cip, atc, min(day) AS day FROM d GROUP BY ALL
        """
    ).fetchall()
    start = adr_reporting._day(adr_reporting.START, "start")
    end = adr_reporting._day(adr_reporting.END, "end")
    data_end = adr_reporting._day(DATA_END, "end")
    packs: dict[tuple[str, str], list[int]] = {}
    for person, _cip, atc, day in rows:
        drug = next((n for n, (p,) in adr_reporting.DRUGS.items() if atc.startswith(p)), None)
        if drug is not None:
            packs.setdefault((person, drug), []).append(adr_reporting._day(day, "day"))
    expected = dict.fromkeys(adr_reporting.DRUGS, 0.0)
    for (_person, drug), days in packs.items():
        first = min(days)
        if not start <= first <= end:
            continue
        last = min(first + window_days, data_end)
        (prefix,) = adr_reporting.DRUGS[drug]
        for d in days:
            x = last - d
            p = 0.0 if x <= 0 else 1.0 if x > 300 else 1 - math.exp(-x / 35)
            expected[drug] += planted_rate(prefix) * p
    return expected


def test_adr_reporting_finds_the_planted_reporting(
    synth_mounted: Path, by_sql: dict[str, Any]
) -> None:
    h: dict[str, Any] = adr_reporting.headline(adr_reporting.read_tables("synth", engine="polars"))
    expected = expected_reports(sql_connection(synth_mounted), h["window_days"])
    for drug, want in expected.items():
        got = h["drugs"][drug]["reports"]
        # sampling (Poisson), and the persons who die before their reaction begins
        assert want * 0.95 - 3 * math.sqrt(want) - 1 <= got <= want + 3 * math.sqrt(want) + 1, (
            drug,
            got,
            want,
        )
    total = sum(expected.values())
    got_total = h["overall"]["reports"]
    assert total * 0.95 - 3 * math.sqrt(total) <= got_total <= total + 3 * math.sqrt(total)
    # the rates differ by drug as planted: anticoagulants (3 %) above antibacterials (1 %)
    # above the 0.2 % of the everyday drugs without a profile (paracetamol, PPIs)
    rate = {d: h["drugs"][d]["rate_per_1000"] for d in h["drugs"]}
    assert rate["anticoagulant"] > rate["antibacterial"] > rate["paracetamol"]
    assert rate["antibacterial"] > rate["proton_pump_inhibitor"]
    # 30 % of the cases are serious; reporters 55 % physicians, 25 % pharmacists, 10 % other
    # health professionals, 10 % patients
    n = got_total
    planted = {
        "serious": (h["overall"]["serious"], 0.30),
        "physician": (h["reporters"]["physician"], 0.55),
        "pharmacist": (h["reporters"]["pharmacist"], 0.25),
        "other_hcp": (h["reporters"]["other_hcp"], 0.10),
        "patient": (h["reporters"]["patient"], 0.10),
    }
    for name, (count, p) in planted.items():
        assert abs(count / n - p) <= 3 * math.sqrt(p * (1 - p) / n), (name, count / n, p, n)
    assert sum(h["reporters"].values()) == n


def test_a_longer_window_counts_more_reports(synth_mounted: Path) -> None:
    tables = adr_reporting.read_tables("synth", engine="polars")
    short = adr_reporting.headline(tables, window_days=30)
    long = adr_reporting.headline(tables, window_days=365)
    assert short["n_new_users"] == long["n_new_users"]
    assert short["overall"]["reports"] < long["overall"]["reports"]
    with pytest.raises(BadArgument, match="ends"):
        adr_reporting.headline(tables, start="2021-01-01", end="2020-01-01")


def test_template_run_writes_the_headline_and_a_checked_table(
    synth_mounted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "adr"
    done = CliRunner().invoke(
        main,
        ["template", "run", "adr-reporting", "--output", str(out), "-p", "dataset", "synth",
         "-p", "engine", "polars"],
        catch_exceptions=False,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [
        "adr-reporting.ipynb",
        "headline.json",
        "new_users.csv",
        "new_users.csv.sdc.json",
        "report.html",
    ]
    headline = json.loads((out / "headline.json").read_text())
    assert json.loads(done.stdout) == headline
    assert headline == adr_reporting.headline(adr_reporting.read_tables("synth", engine="polars"))
    rows = (out / "new_users.csv").read_text().splitlines()
    assert rows[0] == "drug,no,yes"
    for row in rows[1:]:
        drug, no, yes = row.split(",")
        assert int(no) + int(yes) == headline["drugs"][drug]["new_users"]
    sidecar = json.loads((out / "new_users.csv.sdc.json").read_text())
    assert sidecar["table"] == "new_users.csv" and sidecar["format"] == "hdh-sdc/1"
    html = (out / "report.html").read_text()
    assert "persons with a new use of a drug class" in html
    assert "<script" not in html.lower() and "data:image/png;base64," in html
