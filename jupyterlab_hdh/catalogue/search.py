"""Full-text search over the catalogue: datasets, tables and variables.

Owns the search index (built once from a list of ``DatasetRecord``), query
parsing and validation, ranking and snippets. Pure, in-memory code.

Matching
    Text and query are folded the same way: Unicode NFKD, accents dropped,
    case-folded (``"Décès"`` and ``"deces"`` are the same word). Words are runs
    of letters, digits and ``_``; a code-like word such as ``BEN_NIR_PSA`` is
    indexed whole *and* by its parts (``ben``, ``nir``, ``psa``). A query
    word matches an indexed word that equals it or starts with it (``hospit``
    finds ``hospitalisation``). Every query word must match (AND), each in any
    searchable field of the same item.

Ranking (higher first)
    1. Exact name: the whole query equals the item's name, ignoring case and
       accents (``dgn_pal`` → the variable ``DGN_PAL``): +1000.
    2. Per query word, the best of field weight × match quality, summed.
       Field weights: name 5, title 3, keywords 3, population 2,
       description 1. Match quality: whole word 1.0, part of a code-like name
       0.8, prefix 0.5.
    3. Ties: datasets before tables before variables, then by dataset name,
       version, table, variable (a stable, deterministic order).

Pages
    ``SearchIndex.page`` returns one page of the ranked hits (``limit`` hits
    from ``offset``) with the number of all matches, so a reader can say
    "showing 1–20 of 57" and ask for the next page.

Performance
    The index keeps a sorted vocabulary (prefix look-up by bisection) and, per
    word, the items holding it with their best weight. A query costs
    O(words × matching vocabulary × postings), independent of how long the
    descriptions are; hundreds of datasets × hundreds of variables index in
    well under a second.
"""

from __future__ import annotations

import bisect
import heapq
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from jupyterlab_hdh.catalogue.records import DatasetRecord

__all__ = ["MAX_QUERY_LENGTH", "Hit", "HitKind", "SearchIndex", "SearchPage", "fold", "search"]

MAX_QUERY_LENGTH = 200
SNIPPET_WIDTH = 160

HitKind = Literal["dataset", "table", "variable"]
_KIND_ORDER: dict[str, int] = {"dataset": 0, "table": 1, "variable": 2}

FIELD_WEIGHTS: dict[str, float] = {
    "name": 5.0,
    "title": 3.0,
    "keywords": 3.0,
    "population": 2.0,
    "description": 1.0,
}
EXACT_NAME_BONUS = 1000.0
WHOLE_WORD = 1.0
CODE_PART = 0.8
PREFIX = 0.5

_WORD_RE = re.compile(r"[0-9a-z_]+")


def fold(text: str) -> str:
    """Accent- and case-insensitive form of ``text`` (same length rules as the index)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each folded character, its offset in ``text``."""
    out: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        folded = fold(char)
        out.append(folded)
        offsets.extend([index] * len(folded))
    return "".join(out), offsets


def _words(folded: str) -> list[str]:
    return [w for w in _WORD_RE.findall(folded) if w.strip("_")]


def _indexed_words(folded: str) -> dict[str, float]:
    """Words of a field with their match quality (whole word or code part)."""
    found: dict[str, float] = {}
    for word in _words(folded):
        found[word] = WHOLE_WORD
        if "_" in word:
            for part in word.split("_"):
                if part and part not in found:
                    found[part] = CODE_PART
    return found


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    ``table`` is set for table and variable hits, ``variable`` for variable
    hits. ``field`` names where the snippet comes from.
    """

    kind: HitKind
    dataset: str
    version: str
    table: str | None
    variable: str | None
    score: float
    snippet: str
    field: str

    @property
    def sort_key(self) -> tuple[float, int, str, str, str, str]:
        """Ranking order: best score first, then datasets, tables, variables by name."""
        return _rank_key(self.score, self)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Hits ``offset + 1`` to ``offset + len(hits)`` of ``total`` matches, best first."""

    hits: list[Hit]
    total: int
    offset: int

    @property
    def more(self) -> bool:
        """Whether matches remain after this page."""
        return self.offset + len(self.hits) < self.total


def _rank_key(score: float, item: Hit | _Item) -> tuple[float, int, str, str, str, str]:
    return (
        -score,
        _KIND_ORDER[item.kind],
        item.dataset,
        item.version,
        item.table or "",
        item.variable or "",
    )


@dataclass(frozen=True, slots=True)
class _Item:
    kind: HitKind
    dataset: str
    version: str
    table: str | None
    variable: str | None
    folded_name: str
    #: (field, original text) pairs, in snippet-preference order.
    fields: tuple[tuple[str, str], ...]


def _items(records: Iterable[DatasetRecord]) -> Iterable[_Item]:
    for record in records:
        yield _Item(
            "dataset",
            record.name,
            record.version,
            None,
            None,
            fold(record.name),
            (
                ("title", record.title),
                ("description", record.description),
                ("keywords", ", ".join(record.keywords)),
                ("population", record.population),
                ("name", record.name),
            ),
        )
        for table in record.tables:
            yield _Item(
                "table",
                record.name,
                record.version,
                table.name,
                None,
                fold(table.name),
                (("title", table.title), ("name", table.name)),
            )
            for column in table.columns:
                yield _Item(
                    "variable",
                    record.name,
                    record.version,
                    table.name,
                    column.name,
                    fold(column.name),
                    (("description", column.description), ("name", column.name)),
                )


def parse_query(query: str) -> list[str]:
    """The folded, de-duplicated words of a query; ``ValueError`` when unusable."""
    if not isinstance(query, str):
        raise ValueError("search query must be a string")
    stripped = query.strip()
    if not stripped:
        raise ValueError("search query is empty: type at least one word")
    if len(stripped) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"search query is too long ({len(stripped)} characters, at most {MAX_QUERY_LENGTH})"
        )
    words = list(dict.fromkeys(_words(fold(stripped))))
    if not words:
        raise ValueError("search query has no letters or digits to search for")
    return words


class SearchIndex:
    """An inverted index over datasets, tables and variables; build once, query often."""

    def __init__(self, records: Sequence[DatasetRecord]) -> None:
        self._items: list[_Item] = []
        # word -> {item index: best field weight × match quality}
        postings: dict[str, dict[int, float]] = {}
        for item in _items(records):
            item_id = len(self._items)
            self._items.append(item)
            for field, text in item.fields:
                if not text:
                    continue
                weight = FIELD_WEIGHTS[field]
                for word, quality in _indexed_words(fold(text)).items():
                    slot = postings.setdefault(word, {})
                    score = weight * quality
                    if score > slot.get(item_id, 0.0):
                        slot[item_id] = score
        self._vocabulary: list[str] = sorted(postings)
        self._postings = postings

    def __len__(self) -> int:
        """Number of indexed items (datasets + tables + variables)."""
        return len(self._items)

    def _matches(self, query_word: str) -> dict[int, float]:
        """Items matching one query word, with that word's best score in each."""
        scores: dict[int, float] = {}
        start = bisect.bisect_left(self._vocabulary, query_word)
        for position in range(start, len(self._vocabulary)):
            word = self._vocabulary[position]
            if not word.startswith(query_word):
                break
            factor = 1.0 if word == query_word else PREFIX
            for item_id, score in self._postings[word].items():
                value = score * factor
                if value > scores.get(item_id, 0.0):
                    scores[item_id] = value
        return scores

    def search(self, query: str, limit: int = 50) -> list[Hit]:
        """Items matching every word of ``query``, best first (see module docstring)."""
        return self.page(query, limit).hits

    def page(self, query: str, limit: int = 50, offset: int = 0) -> SearchPage:
        """``limit`` hits from the ``offset``-th (0: the best), and how many match in all."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be at least 0, got {offset}")
        words = parse_query(query)
        per_word = sorted((self._matches(w) for w in words), key=len)
        if not per_word[0]:
            return SearchPage([], 0, offset)
        candidates = set(per_word[0])
        for matches in per_word[1:]:
            candidates &= matches.keys()
            if not candidates:
                return SearchPage([], 0, offset)
        whole_query = fold(query.strip())
        ranked = []
        for item_id in candidates:
            item = self._items[item_id]
            score = sum(matches[item_id] for matches in per_word)
            if item.folded_name == whole_query:
                score += EXACT_NAME_BONUS
            ranked.append((_rank_key(round(score, 3), item), item_id))
        # Snippets cost more than scores: cut only for the hits returned.
        hits = []
        for (negated_score, *_), item_id in heapq.nsmallest(offset + limit, ranked)[offset:]:
            item = self._items[item_id]
            field, snippet = _snippet(item, words)
            hits.append(
                Hit(
                    kind=item.kind,
                    dataset=item.dataset,
                    version=item.version,
                    table=item.table,
                    variable=item.variable,
                    score=-negated_score,
                    snippet=snippet,
                    field=field,
                )
            )
        return SearchPage(hits, len(ranked), offset)


def _snippet(item: _Item, words: list[str]) -> tuple[str, str]:
    """The first field (in preference order) containing a query word, cut around it."""
    for field, text in item.fields:
        if not text:
            continue
        folded, offsets = _fold_with_offsets(text)
        positions = [p for p in (folded.find(w) for w in words) if p >= 0]
        if not positions:
            continue
        first = offsets[min(positions)]
        if len(text) <= SNIPPET_WIDTH:
            return field, text
        start = max(0, min(first - SNIPPET_WIDTH // 3, len(text) - SNIPPET_WIDTH))
        end = start + SNIPPET_WIDTH
        prefix = "…" if start > 0 else ""
        suffix = "…" if end < len(text) else ""
        return field, prefix + text[start:end].strip() + suffix
    field, text = item.fields[0]
    return field, text[:SNIPPET_WIDTH]


def search(records: Sequence[DatasetRecord], query: str, limit: int = 50) -> list[Hit]:
    """One-off search; build a ``SearchIndex`` instead when querying repeatedly."""
    return SearchIndex(records).search(query, limit)
