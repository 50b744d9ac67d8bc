"""``hdh.studies.mi_pathway`` on a synthetic extract: the same headline on every engine, equal
to the independent DuckDB SQL computation (``bench/mi_pathway.sql``), and within sampling
error of the secondary prevention the generator planted."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench.mi_pathway_sql import connect as sql_connection
from bench.mi_pathway_sql import headline as sql_headline
from hdh.studies import mi_pathway
from jupyterlab_hdh.data.synth import generate
from jupyterlab_hdh.data.synth.pathways import SECONDARY_PREVENTION

ENGINES = ["pandas", "polars", "duckdb", "arrow"]


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 000 patients (a few hundred infarctions) under ``<root>/synth/v1``."""
    root = tmp_path_factory.mktemp("studies") / "data"
    generate(root / "synth" / "v1", 20_000, 11, progress=False)
    return root


@pytest.fixture
def mounted(extract: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HDH_DATA_ROOT", str(extract))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    return extract / "synth" / "v1"


@pytest.fixture(scope="module")
def by_sql(extract: Path) -> dict[str, int]:
    return sql_headline(sql_connection(extract / "synth" / "v1"))


@pytest.mark.parametrize("engine", ENGINES)
def test_mi_pathway_gives_the_numbers_of_independent_sql(
    mounted: Path, by_sql: dict[str, int], engine: str
) -> None:
    got = mi_pathway.headline(mi_pathway.read_tables("synth", engine=engine))
    want = dict(by_sql)
    assert got["n"] == want.pop("n") > 100
    assert got["counts"] == want
    assert got["within_90d"] == {k: v / got["n"] for k, v in got["counts"].items()}


def test_mi_pathway_finds_the_planted_secondary_prevention(mounted: Path) -> None:
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
