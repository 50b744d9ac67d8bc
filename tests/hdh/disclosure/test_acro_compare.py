"""Our vectorised cell rules give ACRO's verdict on every cell ACRO checks, on the same frames.

ACRO (``acro.ACRO(suppress=False)``) and ``aggregate.crosstab`` run on the same frame with the
same risk appetite; ACRO's per-cell outcome (its check names) is mapped to our rule names.
Frames: a seeded random frame built to hit every rule (small cells, empty cells, dominant
contributors, all-zero cells, missing values), a frame with negative values (dominance becomes
review), and synthetic SNDS tables (``jupyterlab_hdh.data.synth``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdh.disclosure import CheckConfig, crosstab

acro = pytest.importorskip("acro")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

ACRO_TO_OURS = {
    "MinimumThresholdCheck": "threshold",
    "NKCheck": "nk-rule",
    "PPercentCheck": "p-ratio",
    "PresenceOfZeroCheck": "zeros",
}


@pytest.fixture(autouse=True)
def _quiet_acro(tmp_path: Path) -> Iterator[None]:
    cwd = os.getcwd()
    os.chdir(tmp_path)  # ACRO may write its outputs into the working folder
    logging.getLogger("acro").setLevel(logging.ERROR)
    try:
        yield
    finally:
        os.chdir(cwd)


def random_frame(seed: int, n: int = 3000, negatives: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(list("ABCDEFG"), n, p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.02, 0.01])
    b = rng.choice(["p", "q", "r", "s"], n, p=[0.5, 0.3, 0.15, 0.05])
    c = rng.choice(["u", "v"], n)
    v = rng.lognormal(3, 1, n)
    dom = rng.random(n) < 0.01
    v[dom] *= 1e4  # dominant contributors
    v[rng.random(n) < 0.02] = np.nan
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "v": v})
    frame.loc[(frame.a == "G") & (frame.b == "q"), "v"] = 0.0  # all-zero cell
    frame = frame[~((frame.a == "F") & (frame.b == "s"))].reset_index(drop=True)  # empty cell
    if negatives:
        frame.loc[frame.index[:5], "v"] = -frame.loc[frame.index[:5], "v"].fillna(1)
    return frame


def synth_frame(tmp_path: Path) -> pd.DataFrame:
    from jupyterlab_hdh.data.synth import generate

    out = tmp_path / "synth"
    generate(out, 600, 17, progress=False)
    prs = pd.read_parquet(
        out / "ER_PRS_F.parquet",
        columns=["BEN_SEX_COD", "BEN_RES_DPT", "BEN_NAI_ANN", "PRS_PAI_MNT"],
    )
    prs["decade"] = (prs["BEN_NAI_ANN"] // 10 * 10).astype(str)
    prs["sex"] = prs["BEN_SEX_COD"].astype(str)
    return prs


def acro_cells(
    session: object,
    index: list[str],
    columns: list[str],
    df: pd.DataFrame,
    values: str | None,
    aggfunc: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = [df[k] for k in index] if len(index) > 1 else df[index[0]]
    col = [df[k] for k in columns] if len(columns) > 1 else df[columns[0]]
    if values is None:
        table = session.crosstab(idx, col)  # type: ignore[attr-defined]
    else:
        table = session.crosstab(idx, col, values=df[values], aggfunc=aggfunc)  # type: ignore[attr-defined]
    results = session.results.results  # type: ignore[attr-defined]
    outcome = results[list(results)[-1]].outcome
    return table, outcome


def compare(
    df: pd.DataFrame,
    index: list[str],
    columns: list[str],
    values: str | None,
    aggfunc: str,
    config: CheckConfig,
) -> set[str]:
    """Assert the same verdicts on every cell; return the rules ACRO fired."""
    session = acro.ACRO(suppress=False)
    session.sdc_checks.risk_appetite.update(
        safe_threshold=config.safe_threshold,
        safe_nk_n=config.safe_nk_n,
        safe_nk_k=config.safe_nk_k,
        safe_pratio_p=config.safe_pratio_p,
        zeros_are_disclosive=config.zeros_are_disclosive,
    )
    acro_table, outcome = acro_cells(
        session, index, columns, df, values, None if aggfunc == "count" else aggfunc
    )
    ours = crosstab(df, index, columns, values=values, aggfunc=aggfunc, config=config)
    assert list(ours.table.index) == list(acro_table.index)
    assert list(ours.table.columns) == list(acro_table.columns)
    np.testing.assert_allclose(
        ours.table.to_numpy(dtype=float),
        acro_table.to_numpy(dtype=float),
        rtol=1e-9,
        equal_nan=True,
    )
    verdicts = ours.evidence.verdicts(config)
    checked = 0
    fired: set[str] = set()
    for i in range(outcome.shape[0]):
        for j in range(outcome.shape[1]):
            text = str(outcome.iat[i, j])
            theirs = {ACRO_TO_OURS[t.strip()] for t in text.split(";") if t.strip() in ACRO_TO_OURS}
            mine = {k.removeprefix("review:") for k, m in verdicts.items() if m[i, j]}
            assert mine == theirs, (aggfunc, outcome.index[i], outcome.columns[j], mine, theirs)
            checked += 1
            fired |= theirs
    assert checked == outcome.size
    return fired


@pytest.mark.parametrize("aggfunc", ["count", "sum", "mean", "median", "max", "min"])
@pytest.mark.parametrize("seed", [1, 2])
def test_same_verdict_as_acro_on_random_frames(aggfunc: str, seed: int) -> None:
    df = random_frame(seed)
    values = None if aggfunc == "count" else "v"
    fired = compare(df, ["a"], ["b"], values, aggfunc, CheckConfig())
    # the frame is built to trip every rule that applies
    expected = (
        {"threshold", "nk-rule", "p-ratio"}
        if aggfunc in ("sum", "mean")
        else {"threshold", "zeros"}
    )
    assert fired == expected
    compare(df, ["a", "c"], ["b"], values, aggfunc, CheckConfig())


@pytest.mark.parametrize("aggfunc", ["sum", "mean"])
def test_same_verdict_as_acro_with_other_thresholds(aggfunc: str) -> None:
    config = CheckConfig(safe_threshold=5, safe_nk_n=3, safe_nk_k=0.75, safe_pratio_p=0.2)
    assert compare(random_frame(3), ["a"], ["b", "c"], "v", aggfunc, config) == {
        "threshold",
        "nk-rule",
        "p-ratio",
    }


def test_negative_values_make_dominance_review_like_acro() -> None:
    df = random_frame(4, negatives=True)
    compare(df, ["a"], ["b"], "v", "sum", CheckConfig())
    ours = crosstab(df, "a", "b", values="v", aggfunc="sum")
    verdicts = ours.evidence.verdicts(CheckConfig())
    assert verdicts["review:nk-rule"].any() and "nk-rule" not in verdicts


@pytest.mark.parametrize("aggfunc", ["count", "sum", "mean"])
def test_same_verdict_as_acro_on_synthetic_snds(tmp_path: Path, aggfunc: str) -> None:
    df = synth_frame(tmp_path)
    values = None if aggfunc == "count" else "PRS_PAI_MNT"
    assert "threshold" in compare(
        df, ["BEN_RES_DPT"], ["decade", "sex"], values, aggfunc, CheckConfig()
    )


@pytest.mark.parametrize("nk_n", [2, 3])
def test_tied_contributors_match_acro(nk_n: int) -> None:
    # integer amounts in a small range: many cells hold ties among their largest values
    rng = np.random.default_rng(6)
    n = 1500
    df = pd.DataFrame(
        {
            "a": rng.choice(list("ABCDE"), n, p=[0.4, 0.3, 0.2, 0.08, 0.02]),
            "b": rng.choice(list("pq"), n),
            "v": rng.integers(0, 4, n).astype(float),
        }
    )
    config = CheckConfig(safe_nk_n=nk_n, safe_nk_k=0.6, safe_pratio_p=0.5, safe_threshold=3)
    assert "nk-rule" in compare(df, ["a"], ["b"], "v", "sum", config)


def test_zeros_not_disclosive_matches_acro() -> None:
    compare(random_frame(5), ["a"], ["b"], None, "count", CheckConfig(zeros_are_disclosive=False))
