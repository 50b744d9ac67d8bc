"""``hf-readmission`` on a synthetic extract: the same headline on every engine, equal to the
independent DuckDB SQL computation (``bench/hf_readmission.sql``), the readmission rate the
generator's gap distribution implies within sampling error, and ``hdh template run`` writing
the model, its metrics, the checked calibration tables and SACRO-ML's report."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import narwhals as nw
import pytest
from click.testing import CliRunner

from bench.study_sql import connect as sql_connection
from bench.study_sql import run as run_sql
from hdh import BadArgument
from hdh.cohort._frames import collect, wrap
from hdh.studies import hf_readmission
from jupyterlab_hdh.cli import main

ENGINES = ["pandas", "polars", "duckdb", "arrow"]
#: pathways.heart_failure: gaps between a discharge and the next admission
MEAN_GAP, MIN_GAP, SPACER = 420, 15, 7


@pytest.mark.parametrize("engine", ENGINES)
def test_hf_readmission_gives_the_numbers_of_independent_sql(
    synth_mounted: Path, engine: str
) -> None:
    stays = hf_readmission.index_stays(hf_readmission.read_tables("synth", engine=engine))
    got = hf_readmission.summarise(stays)
    want = run_sql(
        sql_connection(synth_mounted), "hf_readmission", window_days=30, followup_end="2023-12-31"
    )
    for key in ("n_stays", "n_persons", "first_stays", "readmitted"):
        assert got[key] == want[key], key
    assert got["n_stays"] > 200 and got["rate"] == want["readmitted"] / want["n_stays"]
    sums = collect(wrap(stays).select(nw.col("device").sum(), nw.col("previous").sum()))
    assert (int(sums.item(0, "device")), int(sums.item(0, "previous"))) == (
        want["device"],
        want["previous"],
    )


def test_hf_readmission_finds_the_planted_rate(synth_mounted: Path) -> None:
    # the generator (pathways.heart_failure): the k-th rehospitalisation is admitted
    # floor(Exp(420)) + 15 + 7 days after the previous admission (k = 1: after the first
    # discharge); so the first stay is readmitted within 30 days when Exp(420) < 9, a later
    # stay of length los when Exp(420) < 9 + los. Age, sex and device play no part.
    frame = collect(
        wrap(hf_readmission.index_stays(hf_readmission.read_tables("synth", engine="polars")))
    )
    rows = frame.select("previous", "los", "readmitted").rows()
    slack = 30 - (MIN_GAP + SPACER) + 1
    planted = [
        1 - math.exp(-(slack + (los if previous else 0)) / MEAN_GAP) for previous, los, _ in rows
    ]
    n = len(rows)
    expected = sum(planted) / n
    observed = sum(r[2] for r in rows) / n
    error = 3 * math.sqrt(sum(p * (1 - p) for p in planted)) / n + 0.005  # sampling, deaths
    assert 0.02 < expected < 0.04
    assert abs(observed - expected) <= error, (observed, expected, n)


def test_hf_readmission_refuses_bad_parameters(synth_mounted: Path) -> None:
    tables = hf_readmission.read_tables("synth", engine="arrow")
    with pytest.raises(BadArgument, match="window_days must be a whole number >= 1"):
        hf_readmission.headline(tables, window_days=0)
    with pytest.raises(BadArgument, match="followup_end must be a date such as"):
        hf_readmission.headline(tables, followup_end="soon")


def test_template_run_writes_the_model_metrics_tables_and_sacroml_report(
    synth_mounted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hf"
    done = CliRunner().invoke(
        main,
        ["template", "run", "hf-readmission", "--output", str(out), "-p", "dataset", "synth"],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    names = {p.name for p in out.iterdir()}
    sacroml_here = all(importlib.util.find_spec(m) is not None for m in ("sacroml", "torch"))
    assert {
        "headline.json", "hf-readmission.ipynb", "report.html", "model.pkl", "calibration.csv",
        "calibration.csv.sdc.json", "calibration_predicted.csv",
        "calibration_predicted.csv.sdc.json", *(["sacroml"] if sacroml_here else []),
    } <= names  # fmt: skip
    headline = json.loads((out / "headline.json").read_text())
    want = run_sql(
        sql_connection(synth_mounted), "hf_readmission", window_days=30, followup_end="2023-12-31"
    )
    assert (headline["n_stays"], headline["readmitted"]) == (want["n_stays"], want["readmitted"])
    model = headline["model"]
    assert model["train_stays"] + model["test_stays"] == headline["n_stays"]
    assert model["train_persons"] + model["test_persons"] == headline["n_persons"]  # by person
    assert 0 <= model["brier"] < 0.1
    # readmission hardly depends on the features (only on previous stays and their length):
    # the AUC on the few held-out readmissions is near 0.5 within its large sampling error
    assert model["auc"] is None or abs(model["auc"] - 0.5) < 0.35
    rows = (out / "calibration.csv").read_text().splitlines()
    assert rows[0] == "decile,no,yes" and len(rows) == 11
    assert sum(int(r.split(",")[1]) + int(r.split(",")[2]) for r in rows[1:]) == model["test_stays"]
    sidecar = json.loads((out / "calibration.csv.sdc.json").read_text())
    assert sidecar["table"] == "calibration.csv" and sidecar["format"] == "hdh-sdc/1"
    if importlib.util.find_spec("sacroml") is None or importlib.util.find_spec("torch") is None:
        assert headline["sacroml"]["status"].startswith("not run: ")  # optional: it needs torch
        return
    assert headline["sacroml"]["status"] == "run", headline["sacroml"]
    report = json.loads((out / "sacroml" / "report.json").read_text())
    assert report  # SACRO-ML's worst-case membership-inference attack on the saved model
