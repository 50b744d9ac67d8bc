"""Prefix matching of medical codes (ICD-10, ATC, CCAM, GHM...), case and dot insensitive.

SNDS codes are hierarchical and stored without dots, with French extensions of ICD-10
(``I21`` → ``I210`` → ``I2100`` → ``I21000``), so a diagnosis is always matched by prefix.
Both the data and the prefixes are normalised first (upper case; dots, spaces and dashes
removed), so ``"I21.0"``, ``"i210"`` and ``"I210"`` are the same code. A missing code
matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import narwhals as nw

from hdh.errors import BadArgument

from ._frames import require, wrap

_STRIPPED = (".", " ", "-")


def normalise_code(code: str) -> str:
    """``"i21.0 "`` → ``"I210"``: upper case without dots, spaces or dashes."""
    out = code.upper()
    for ch in _STRIPPED:
        out = out.replace(ch, "")
    return out


def _prefixes(codes: Iterable[str] | str) -> list[str]:
    if isinstance(codes, str):
        codes = [codes]
    out = []
    for code in codes:
        if not isinstance(code, str):
            raise BadArgument(f"codes must be strings, got {code!r}")
        norm = normalise_code(code)
        if not norm:
            raise BadArgument(f"empty code prefix {code!r}")
        out.append(norm)
    if not out:
        raise BadArgument("give at least one code prefix")
    return sorted(set(out))


def code_matches(column: str, codes: Iterable[str] | str) -> nw.Expr:
    """A boolean narwhals expression: ``column`` starts with one of ``codes`` (never null).

    For use inside one's own narwhals code, e.g. ``frame.filter(code_matches("DGN_PAL",
    ["I21", "I22"]) | code_matches("DGN_REL", ["I21", "I22"]))``.
    """
    prefixes = _prefixes(codes)
    value = nw.col(column).cast(nw.String).str.to_uppercase()
    for ch in _STRIPPED:
        value = value.str.replace_all(ch, "", literal=True)
    match = value.str.starts_with(prefixes[0])
    for prefix in prefixes[1:]:
        match = match | value.str.starts_with(prefix)
    return match.fill_null(False)


def match_codes(
    frame: Any, column: str, codes: Iterable[str] | str, *, flag: str | None = None
) -> Any:
    """Keep the rows whose ``column`` starts with one of ``codes``, or flag them.

    ``match_codes(stays, "DGN_PAL", ["I21", "I22"])`` keeps myocardial-infarction stays;
    with ``flag="mi"`` it keeps every row and adds a boolean column ``mi`` instead.
    Returns a native frame of the library it was given.
    """
    nwf = wrap(frame)
    require(nwf, [column])
    expr = code_matches(column, codes)
    out = nwf.with_columns(expr.alias(flag)) if flag else nwf.filter(expr)
    return out.to_native()
