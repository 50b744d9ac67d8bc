"""Automated disclosure checks of the airlock: a pure library (no store, no web framework).

Part of the in-sandbox package, as the template notebooks write their tables with it
(``from hdh.disclosure import crosstab, write_table``); the host's airlock gate re-checks every
file of an export request with the same code (``check_files``).

``check_files`` gives a pass / fail / review verdict per file of a request with the flags
(rule, message, location) that explain it; ``strip_metadata`` re-encodes a figure without its
metadata; ``aggregate.crosstab`` / ``write_table`` let a notebook produce tables with the
per-cell evidence that dominance rules need. Rules and thresholds: docs/egress-checks.md.
"""

from .aggregate import TableWithEvidence, crosstab, write_table
from .config import CheckConfig, CheckError
from .figures import strip_metadata
from .gate import check_files
from .report import CheckInput, FileReport, Flag

__all__ = [
    "CheckConfig",
    "CheckError",
    "CheckInput",
    "FileReport",
    "Flag",
    "TableWithEvidence",
    "check_files",
    "crosstab",
    "strip_metadata",
    "write_table",
]
