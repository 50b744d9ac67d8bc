"""Differencing: nested populations whose cell-wise difference reveals a small cell.

Two count tables with the same label columns and a shared count column are compared on the
rows whose labels match (margin rows left out). If one is cell-wise <= the other on every
matched cell of that column (the first population nests in the second) and some difference
``d`` has ``0 < d < safe_threshold``, subtracting the tables discloses a small group: the newer
file fails with a ``differencing`` flag naming both files and the cell. Pairs are taken within
one request and between the request and the project's earlier releases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .config import CheckConfig
from .report import Flag
from .tables import Table, layout


def _frame(table: Table, config: CheckConfig) -> tuple[tuple[str, ...], pd.DataFrame] | None:
    lay = layout(table, config)
    if not lay.label_cols or not lay.count_cols:
        return None
    keep = [i for i in range(table.data.shape[0]) if i not in set(lay.total_rows)]
    labels = tuple(table.columns[j] for j in lay.label_cols)
    frame = pd.DataFrame(
        {table.columns[j]: table.data[j].str.strip().to_numpy()[keep] for j in lay.label_cols}
    )
    for j in lay.count_cols:
        if table.columns[j] not in frame:
            frame[table.columns[j]] = lay.numbers[j].to_numpy()[keep]
    if frame.duplicated(list(labels)).any():
        return None
    return labels, frame


def find_differencing(
    new: list[tuple[str, Table]], earlier: list[tuple[str, Table]], config: CheckConfig
) -> dict[str, list[Flag]]:
    """Flags per new file name, for every nested pair with a small difference."""
    frames_new = [(n, f) for n, t in new if (f := _frame(t, config)) is not None]
    frames_old = [(n, f) for n, t in earlier if (f := _frame(t, config)) is not None]
    out: dict[str, list[Flag]] = {}
    pairs = [(a, b, True) for i, a in enumerate(frames_new) for b in frames_new[i + 1 :]]
    pairs += [(a, b, False) for a in frames_new for b in frames_old]
    for (name_a, (labels_a, fa)), (name_b, (labels_b, fb)), both_new in pairs:
        if labels_a != labels_b:
            continue
        shared = [c for c in fa.columns if c in fb.columns and c not in labels_a]
        if not shared:
            continue
        merged = fa.merge(fb, on=list(labels_a), suffixes=("\x00a", "\x00b"))
        if merged.empty:
            continue
        for col in shared:
            a = merged[f"{col}\x00a"].to_numpy(dtype=float)
            b = merged[f"{col}\x00b"].to_numpy(dtype=float)
            ok = ~np.isnan(a) & ~np.isnan(b)
            if ok.sum() == 0 or np.array_equal(a[ok], b[ok]):
                continue
            if np.all(a[ok] <= b[ok]):
                d = b - a
            elif np.all(b[ok] <= a[ok]):
                d = a - b
            else:
                continue
            small = ok & (d > 0) & (d < config.safe_threshold)
            for i in np.flatnonzero(small)[:20]:
                loc: dict[str, Any] = {
                    "column": col,
                    "labels": {k: str(merged[k].iat[i]) for k in labels_a},
                    "files": [name_a, name_b],
                }
                msg = (
                    f"with {name_b!r} the difference in {col!r} is {int(d[i])},"
                    f" below {config.safe_threshold}: nested populations disclose a small"
                    " group"
                )
                out.setdefault(name_a, []).append(Flag("differencing", msg, loc))
                if both_new:
                    msg_b = msg.replace(repr(name_b), repr(name_a), 1)
                    out.setdefault(name_b, []).append(
                        Flag("differencing", msg_b, {**loc, "files": [name_b, name_a]})
                    )
    return out
