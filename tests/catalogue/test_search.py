"""Full-text search over datasets, tables and variables."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from jupyterlab_hdh.catalogue.records import DatasetRecord, TableRecord, VariableRecord
from jupyterlab_hdh.catalogue.search import MAX_QUERY_LENGTH, SearchIndex, fold, search

from . import CNAM, sample_records


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex(sample_records())


def test_fold_removes_accents_and_case() -> None:
    assert fold("Décès ÉLÈVE Œuvre straße") == "deces eleve œuvre strasse"


@pytest.mark.parametrize("query", ["deces", "DÉCÈS", "Deces", "décès"])
def test_accent_and_case_insensitive(index: SearchIndex, query: str) -> None:
    hits = index.search(query)
    assert hits, query
    kinds = {hit.kind for hit in hits}
    assert {"dataset", "table", "variable"} <= kinds
    assert any(hit.table == "KI_CCI_R" and hit.kind == "table" for hit in hits)
    assert all("décès" in hit.snippet.lower() or "deces" in fold(hit.snippet) for hit in hits)


def test_exact_code_ranked_first(index: SearchIndex) -> None:
    hits = index.search("BEN_NIR_PSA")
    assert hits[0].kind == "variable" and hits[0].variable == "BEN_NIR_PSA"
    exact = [h for h in hits if h.variable == "BEN_NIR_PSA"]
    assert hits[: len(exact)] == exact  # every exact match before any partial one
    assert {h.table for h in exact} >= {"IR_BEN_R", "ER_PRS_F"}


def test_code_is_case_insensitive_and_parts_match(index: SearchIndex) -> None:
    first = index.search("dgn_pal")[0]
    assert (first.dataset, first.table, first.variable) == (
        "snds-synthetique",
        "T_MCO23B",
        "DGN_PAL",
    )
    nir = index.search("nir")
    assert any(h.variable == "BEN_NIR_PSA" for h in nir)


def test_words_are_anded(index: SearchIndex) -> None:
    both = index.search("diagnostic principal")
    assert any(h.variable == "DGN_PAL" for h in both)
    assert all("diagnostic" in fold(h.snippet) for h in both)
    assert index.search("diagnostic zzzzunknown") == []


def test_prefix_match(index: SearchIndex) -> None:
    assert any(h.kind == "dataset" for h in index.search("hospitali"))


def test_hit_fields(index: SearchIndex) -> None:
    dataset_hits = [h for h in index.search("pharmacovigilance") if h.kind == "dataset"]
    hit = dataset_hits[0]
    assert (hit.dataset, hit.version, hit.table, hit.variable) == (
        "pharmacovigilance",
        "1",
        None,
        None,
    )
    assert hit.score > 0 and hit.snippet
    versions = {h.version for h in index.search("SNDS synthétique") if h.kind == "dataset"}
    assert versions == {"2023.2", "2024.1"}


def test_ranking_is_deterministic_and_sorted(index: SearchIndex) -> None:
    hits = index.search("bénéficiaire")
    assert hits == index.search("beneficiaire")
    assert [h.sort_key for h in hits] == sorted(h.sort_key for h in hits)


def test_limit(index: SearchIndex) -> None:
    assert len(index.search("date", limit=3)) == 3
    with pytest.raises(ValueError, match="limit"):
        index.search("date", limit=0)


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_QUERY_LENGTH + 1), "too long"),
        ("!!! ?", "no letters"),
    ],
)
def test_bad_queries_rejected(index: SearchIndex, query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        index.search(query)


def test_long_snippet_is_cut_around_the_match() -> None:
    long_text = "Texte introductif. " * 30 + "Mention du décès ici. " + "Suite. " * 30
    record = DatasetRecord(
        name="long",
        version="1",
        title="Long",
        description=long_text,
        publisher=CNAM,
        issued=datetime(2024, 1, 1, tzinfo=UTC),
    )
    hit = search([record], "deces")[0]
    assert "décès" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet) <= 170


def test_scales_to_hundreds_of_datasets() -> None:
    columns = [
        VariableRecord(name=f"VAR_{i:03d}", description=f"Variable numéro {i} du décès")
        for i in range(300)
    ]
    records = [
        DatasetRecord(
            name=f"jeu-{d:03d}",
            version="1",
            title=f"Jeu de données {d}",
            description="Données de santé pseudonymisées",
            publisher=CNAM,
            tables=[TableRecord(name="T_DATA", title="Table", columns=columns)],
            issued=datetime(2024, 1, 1, tzinfo=UTC),
        )
        for d in range(300)
    ]
    started = time.perf_counter()
    index = SearchIndex(records)
    built = time.perf_counter() - started
    assert len(index) == 300 * (1 + 1 + 300)
    started = time.perf_counter()
    hits = index.search("VAR_150")
    exact_query = time.perf_counter() - started
    assert len(hits) == 50 and all(h.variable == "VAR_150" for h in hits)
    started = time.perf_counter()
    index.search("variable deces", limit=20)
    broad_query = time.perf_counter() - started
    print(
        f"index 90k items: {built:.2f}s, exact query {exact_query:.3f}s, broad {broad_query:.3f}s"
    )
    assert built < 20 and exact_query < 1 and broad_query < 5
