"""Our aggregation helper for notebooks: a crosstab that carries per-cell SDC evidence.

``crosstab`` builds the table and, in the same vectorised pass (numpy ``bincount``, and a few
``np.maximum.at`` passes for the top-n contributors of every cell; no sort and no Python loop
per cell), the statistics
the cell rules need: count, sum, largest value, sum of the two and of the ``n`` largest values,
number of negative values. ``cell_verdicts`` applies ACRO's definitions to those statistics
(threshold ``count < safe_threshold``; nk ``top_n_sum / sum >= k``; p-ratio
``(sum - top1 - top2) / top1 < p``; zeros ``count == 0``; DoF ``count - 1 < safe_dof``;
negative values make nk and p-ratio ``review`` on the cells holding them). ``write_table``
writes the CSV plus a ``<name>.sdc.json`` sidecar that the gate re-checks with its own config.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .config import CheckConfig, CheckError

SIDECAR_FORMAT = "hdh-sdc/1"
SIDECAR_SUFFIX = ".sdc.json"
AGGFUNCS = ("count", "sum", "mean", "median", "min", "max", "std")
#: the cell rules ACRO runs for each aggregation (its ontology, acro 1.0)
RULES_FOR = {
    "count": ("threshold", "zeros"),
    "sum": ("threshold", "nk-rule", "p-ratio"),
    "mean": ("threshold", "nk-rule", "p-ratio"),
    "median": ("threshold", "zeros"),
    "min": ("threshold", "zeros"),
    "max": ("threshold", "zeros"),
    "std": ("dof",),
}


@dataclass(frozen=True)
class CellEvidence:
    """Per-cell statistics of one table, arrays shaped like the table (rows x columns)."""

    aggfunc: str
    index: list[str]
    columns: list[str]
    row_labels: list[tuple[Any, ...]]
    col_labels: list[tuple[Any, ...]]
    nk_n: int
    count: np.ndarray  # rows in the cell
    n_valid: np.ndarray  # rows with a non-missing value
    total: np.ndarray  # sum of values
    top1: np.ndarray  # largest value (NaN when the cell has no value)
    top2_sum: np.ndarray
    topn_sum: np.ndarray
    n_negative: np.ndarray

    def verdicts(self, config: CheckConfig) -> dict[str, np.ndarray]:
        return cell_verdicts(self, config)


class TableWithEvidence(NamedTuple):
    table: pd.DataFrame
    evidence: CellEvidence


def _keys(df: pd.DataFrame, spec: str | list[str], what: str) -> list[str]:
    keys = [spec] if isinstance(spec, str) else list(spec)
    if not keys and what == "index":
        raise CheckError("crosstab: index needs at least one column")
    for k in keys:
        if k not in df.columns:
            raise CheckError(f"crosstab: {what} column {k!r} is not in the frame")
    return keys


def crosstab(
    df: pd.DataFrame,
    index: str | list[str],
    columns: str | list[str],
    values: str | None = None,
    aggfunc: str = "count",
    config: CheckConfig | None = None,
) -> TableWithEvidence:
    """A cross-tabulation of ``df`` and its per-cell evidence (all level combinations, like
    ``pd.crosstab(dropna=False)``; rows with a missing key are left out)."""
    config = config or CheckConfig()
    if aggfunc not in AGGFUNCS:
        raise CheckError(f"crosstab: aggfunc {aggfunc!r} not supported ({', '.join(AGGFUNCS)})")
    if (values is None) != (aggfunc == "count"):
        raise CheckError("crosstab: give values with aggfunc other than 'count', and only then")
    row_keys = _keys(df, index, "index")
    col_keys = _keys(df, columns, "columns")
    if values is not None and values not in df.columns:
        raise CheckError(f"crosstab: values column {values!r} is not in the frame")
    keys = row_keys + col_keys
    codes: list[np.ndarray] = []
    levels: list[pd.Index] = []
    for k in keys:
        c, u = pd.factorize(df[k], sort=True)
        codes.append(c)
        levels.append(pd.Index(u, name=k))
    keep = np.ones(len(df), dtype=bool)
    for c in codes:
        keep &= c >= 0
    if not keep.any():
        raise CheckError(
            f"crosstab: no row has a value for every one of {', '.join(keys)}: nothing to tabulate"
        )
    sizes = tuple(max(len(u), 1) for u in levels)
    n_r = int(np.prod(sizes[: len(row_keys)]))
    n_c = int(np.prod(sizes[len(row_keys) :])) if col_keys else 1
    n_cells = n_r * n_c
    if n_cells > 50_000_000:
        raise CheckError(f"crosstab: {n_cells:,} cells is too many")
    cell = (
        np.ravel_multi_index(tuple(c[keep] for c in codes), sizes)
        if keep.any()
        else np.zeros(0, dtype=np.int64)
    )
    count = np.bincount(cell, minlength=n_cells).astype(np.int64)
    if values is not None:
        v_all = pd.to_numeric(df[values], errors="coerce").to_numpy(dtype=float)[keep]
    else:
        v_all = np.zeros(0)
    stats = _cell_stats(cell, v_all, n_cells, config.safe_nk_n) if values is not None else None
    if stats is None:
        zeros = np.zeros(n_cells)
        nan = np.full(n_cells, np.nan)
        n_valid, total, top1, top2, topn, neg = count, zeros, nan, zeros, zeros, zeros
    else:
        n_valid, total, top1, top2, topn, neg = stats
    # the table
    if aggfunc == "count":
        flat = count.astype(np.int64)
    elif aggfunc == "sum":
        flat = np.where(count > 0, total, np.nan)
    elif aggfunc == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = np.where(n_valid > 0, total / n_valid, np.nan)
    else:
        valid = ~np.isnan(v_all)
        grouped = pd.Series(v_all[valid]).groupby(cell[valid]).agg(aggfunc)
        flat = np.full(n_cells, np.nan)
        flat[grouped.index.to_numpy()] = grouped.to_numpy()
    row_index = (
        pd.MultiIndex.from_product(levels[: len(row_keys)]) if len(row_keys) > 1 else levels[0]
    )
    col_index: pd.Index = (
        pd.MultiIndex.from_product(levels[len(row_keys) :])
        if len(col_keys) > 1
        else levels[len(row_keys)]
        if col_keys
        else pd.Index([aggfunc if values is None else values])
    )
    table = pd.DataFrame(flat.reshape(n_r, n_c), index=row_index, columns=col_index)
    ev = CellEvidence(
        aggfunc=aggfunc,
        index=row_keys,
        columns=col_keys,
        row_labels=[r if isinstance(r, tuple) else (r,) for r in row_index.tolist()],
        col_labels=[c if isinstance(c, tuple) else (c,) for c in col_index.tolist()],
        nk_n=config.safe_nk_n,
        count=count.reshape(n_r, n_c),
        n_valid=np.asarray(n_valid).reshape(n_r, n_c),
        total=np.asarray(total, dtype=float).reshape(n_r, n_c),
        top1=np.asarray(top1, dtype=float).reshape(n_r, n_c),
        top2_sum=np.asarray(top2, dtype=float).reshape(n_r, n_c),
        topn_sum=np.asarray(topn, dtype=float).reshape(n_r, n_c),
        n_negative=np.asarray(neg).reshape(n_r, n_c),
    )
    return TableWithEvidence(table, ev)


def _cell_stats(cell: np.ndarray, v: np.ndarray, n_cells: int, nk_n: int) -> tuple[np.ndarray, ...]:
    """Per cell: valid values, total, negatives, largest, top-2 and top-n sums.

    The top sums peel one level per pass: ``np.maximum.at`` gives each cell's largest
    remaining value, every row equal to it is taken (ties count once each, as ACRO's
    ``nlargest(n, keep="all")[:n]``) up to what the cell still needs, then removed. At most
    ``max(2, n)`` passes of O(rows), no sort and no Python loop per cell.
    """
    valid = ~np.isnan(v)
    c, x = cell[valid], v[valid]
    n_valid = np.bincount(c, minlength=n_cells)
    total = np.bincount(c, weights=x, minlength=n_cells)
    neg = np.bincount(c[x < 0], minlength=n_cells)
    top1 = np.full(n_cells, np.nan)
    sums = {2: np.zeros(n_cells), nk_n: np.zeros(n_cells)}
    need = {n: np.minimum(n_valid, n) for n in sums}
    work = x.copy()
    for step in range(max(2, nk_n)):
        if not any(bool(need[n].any()) for n in need):
            break
        level = np.full(n_cells, -np.inf)
        np.maximum.at(level, c, work)
        hit = (work == level[c]) & np.isfinite(work)
        k = np.bincount(c[hit], minlength=n_cells)
        value = np.where(k > 0, level, 0.0)
        if step == 0:
            top1 = np.where(k > 0, level, np.nan)
        for n in sums:
            take = np.minimum(k, need[n])
            sums[n] += take * value
            need[n] = need[n] - take
        work[hit] = -np.inf
    return n_valid, total, top1, sums[2], sums[nk_n], neg


def cell_verdicts(ev: CellEvidence, config: CheckConfig) -> dict[str, np.ndarray]:
    """The cells each rule flags (boolean arrays), ACRO's definitions; ``review:`` prefixed
    keys hold cells that need review rather than fail (dominance with negative values)."""
    rules = RULES_FOR[ev.aggfunc]
    out: dict[str, np.ndarray] = {}
    count = ev.count
    if "threshold" in rules:
        out["threshold"] = count < config.safe_threshold
    if "zeros" in rules and config.zeros_are_disclosive:
        out["zeros"] = count == 0
    if "dof" in rules:
        out["dof"] = (count - 1) < config.safe_dof_threshold
    if "nk-rule" in rules or "p-ratio" in rules:
        if ev.nk_n != config.safe_nk_n:
            raise CheckError(
                f"evidence holds top-{ev.nk_n} sums but the configuration asks for"
                f" safe_nk_n={config.safe_nk_n}"
            )
        if (ev.n_negative > 0).any():
            negs = ev.n_negative > 0
            out["review:nk-rule"] = negs
            out["review:p-ratio"] = negs.copy()
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                nk = np.where(ev.n_valid > 0, ev.topn_sum / ev.total, np.nan)
                out["nk-rule"] = np.nan_to_num(nk, nan=0.0) >= config.safe_nk_k
                sub = ev.total - ev.top2_sum
                p = np.where(ev.top1 == 0, sub, sub / np.where(ev.top1 == 0, 1, ev.top1))
                p = np.where(np.isnan(ev.top1) | (ev.n_valid == 0), 1.0, p)
                out["p-ratio"] = p < config.safe_pratio_p
    return out


def _flat_columns(ev: CellEvidence) -> list[str]:
    return [" | ".join(str(x) for x in c) for c in ev.col_labels]


def table_frame(twe: TableWithEvidence) -> pd.DataFrame:
    """The table as written: label columns then one value column per (flattened) column."""
    ev = twe.evidence
    names = _flat_columns(ev)
    data = {k: [r[i] for r in ev.row_labels] for i, k in enumerate(ev.index)}
    for j, name in enumerate(names):
        if name in data:
            raise CheckError(f"write_table: column label {name!r} clashes with an index name")
        data[name] = twe.table.to_numpy()[:, j]
    return pd.DataFrame(data)


def _json_array(a: np.ndarray) -> list[Any]:
    """A float array as nested lists with ``None`` for NaN (JSON has no NaN)."""
    out = a.astype(object)
    out[np.isnan(a)] = None
    result: list[Any] = out.tolist()
    return result


def write_table(twe: TableWithEvidence, path: Path, *, config: CheckConfig | None = None) -> Path:
    """Write the table as CSV at ``path`` and its evidence at ``<path>.sdc.json``; returns the
    sidecar's path. The sidecar binds to the CSV's sha256."""
    config = config or CheckConfig()
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise CheckError(f"write_table: {path.name} must end in .csv")
    frame = table_frame(twe)
    frame.to_csv(path, index=False, lineterminator="\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    ev = twe.evidence
    verdicts = cell_verdicts(ev, config)
    doc = {
        "format": SIDECAR_FORMAT,
        "table": path.name,
        "table_sha256": sha,
        "aggfunc": ev.aggfunc,
        "index": ev.index,
        "columns": ev.columns,
        "value_columns": _flat_columns(ev),
        "nk_n": ev.nk_n,
        "config": config.to_dict(),
        "cells": {
            "count": ev.count.tolist(),
            "n_valid": ev.n_valid.tolist(),
            "sum": _json_array(ev.total),
            "top1": _json_array(ev.top1),
            "top2_sum": _json_array(ev.top2_sum),
            "topn_sum": _json_array(ev.topn_sum),
            "n_negative": ev.n_negative.tolist(),
        },
        "verdicts": {rule: np.argwhere(mask).tolist() for rule, mask in verdicts.items()},
    }
    sidecar = Path(str(path) + SIDECAR_SUFFIX)
    sidecar.write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    return sidecar
