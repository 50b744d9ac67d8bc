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
    kept = mi_pathway_pandas._net(lines, key, mi_pathway_pandas.FEED_ORDER)
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


def _dcir(rows: list[tuple], **more: list) -> pd.DataFrame:
    """Lines with the 9 DCIR keys from (DCT_ORD_NUM, FLX_DIS_DTD, ORG_CLE_NUM) triples."""
    frame = pd.DataFrame(rows, columns=["DCT_ORD_NUM", "FLX_DIS_DTD", "ORG_CLE_NUM"])
    for name in mi_pathway_pandas.DCIR_KEYS:
        if name not in frame:
            frame[name] = 1
    return frame.assign(**more)


def test_packed_keys_are_exact_sort_as_the_keys_and_mark_nulls() -> None:
    left = pd.DataFrame({"a": [5, 1, 5, 2], "b": ["z", "b", "a", None]})
    right = pd.DataFrame({"a": [1, 10**15], "b": ["b", "a"]})
    packed = mi_pathway_pandas._pack([left, right], ["a", "b"])
    assert packed is not None
    got, other = packed
    assert got[3] == -1 and got[1] == other[0] and len(set(got[:3])) == 3
    assert list(got[:3].argsort()) == [1, 2, 0]  # (1, b) < (5, a) < (5, z)
    assert other[1] > got.max()


@pytest.mark.parametrize("packs", [True, False], ids=["packed", "merge"])
@pytest.mark.parametrize("unique", [True, False], ids=["one-detail", "several-details"])
def test_the_dcir_join_is_a_plain_inner_join_on_the_9_keys(
    packs: bool, unique: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not packs:
        monkeypatch.setattr(mi_pathway_pandas, "_pack", lambda frames, keys: None)
    prs = _dcir([(1, 100, "x"), (1, 100, "y"), (2, 101, "x"), (3, 90, "x")], day=[1, 2, 3, 4])
    details = [(1, 100, "y"), (2, 101, "x"), (4, 100, "x")] + ([] if unique else [(2, 101, "x")])
    pha = _dcir(details, qty=list(range(len(details))))
    lines, order = mi_pathway_pandas._join(prs, pha)
    want = prs.merge(pha, on=mi_pathway_pandas.DCIR_KEYS)
    pairs = sorted(zip(lines["day"], lines["qty"], strict=True))
    assert (
        pairs
        == sorted(zip(want["day"], want["qty"], strict=True))
        == [(2, 0), (3, 1)] + ([] if unique else [(3, 3)])
    )
    assert order == (["feed"] if packs else mi_pathway_pandas.FEED_ORDER)
