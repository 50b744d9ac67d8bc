"""The hand-written peers of ``bench/bench_cohort.py`` give the numbers of the independent
DuckDB SQL (``bench/mi_pathway.sql``) on the shared synthetic extract: ``pandas-tuned``
(``bench/mi_pathway_pandas.py``), with the DCIR cut early and cleaned whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import mi_pathway_pandas
from bench.study_sql import connect as sql_connection
from bench.study_sql import headline as sql_headline


@pytest.fixture(scope="module")
def by_sql(synth_root: Path) -> dict[str, int]:
    return sql_headline(sql_connection(synth_root / "synth" / "v1"))


@pytest.mark.parametrize("early", [True, False], ids=["early", "full-clean"])
def test_tuned_pandas_gives_the_numbers_of_independent_sql(
    synth_root: Path, by_sql: dict[str, int], early: bool
) -> None:
    got = mi_pathway_pandas.headline(synth_root / "synth" / "v1", early=early)
    assert got == by_sql
    assert list(got) == ["n", *mi_pathway_pandas.CLASSES, "any", "all_four"]
    assert got["n"] > 100 and 0 < got["all_four"] < got["any"] <= got["n"]


def test_netting_cancels_the_earliest_fed_positive_line_of_the_same_key() -> None:
    key = ["BEN_NIR_PSA", "day", "PHA_PRS_C13", "qty"]

    def line(psa: str | None, fed: int, qty: int, negative: bool = False) -> dict:
        return {
            "BEN_NIR_PSA": psa,
            "day": 10,
            "PHA_PRS_C13": 7,
            "qty": qty,
            "negative": negative,
            **{k: fed for k in mi_pathway_pandas.FEED_ORDER},
        }

    lines = pd.DataFrame(
        [
            line("a", fed=3, qty=2),
            line("a", fed=1, qty=2),  # the earliest fed: cancelled
            line("a", fed=0, qty=1),  # another quantity: kept
            line("a", fed=5, qty=2, negative=True),
            line(None, fed=1, qty=2),  # a null key pairs with nothing
            line(None, fed=5, qty=2, negative=True),
            line("b", fed=2, qty=2),
            line("b", fed=4, qty=2, negative=True),
            line("c", fed=1, qty=3),  # no regularisation of its key
        ]
    )
    kept = mi_pathway_pandas._net(lines, key)
    got = sorted((r.BEN_NIR_PSA or "-", r.FLX_DIS_DTD) for r in kept.itertuples())
    assert got == [("-", 1), ("a", 0), ("a", 3), ("c", 1)]


def test_a_regularisation_is_any_negative_sign_quantity_or_amount() -> None:
    frame = pd.DataFrame(
        {
            "BSE_REM_SGN": [1, -1, 1, None, 1],
            "PRS_ACT_QTE": [1.0, 1.0, -1.0, None, 1.0],
            "PRS_PAI_MNT": [2.0, 2.0, 2.0, None, -2.0],
        }
    )
    got = mi_pathway_pandas._negative(frame, mi_pathway_pandas.PRS_SIGNS)
    assert got.tolist() == [False, True, True, False, True]
