"""Free text typed by people and programs into HDH's records: one rule for every field.

Owns :func:`clean_text`: a title, a purpose, a reason, a comment is stripped and refused
(never cut) when empty (if required), longer than its limit, holding a control character
(C0 but tab and newline, DEL, C1, the Unicode line and paragraph separators) or, for a
one-line field, a line break or tab. The caller names the error class its layer raises.
"""

from __future__ import annotations

import re
from typing import Any

#: Control characters (C0 but tab and newline, DEL, C1) and line/paragraph separators.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
LINE_BREAK = re.compile("[\t\n\r]")


def clean_text(
    value: Any,
    what: str,
    limit: int,
    *,
    error: type[Exception],
    required: bool = True,
    one_line: bool = False,
) -> str:
    """``value`` stripped, or ``error`` with a one-line reason naming ``what``."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise error(f"the {what} must be text")
    value = value.strip()
    if required and not value:
        raise error(f"the {what} must not be empty")
    if len(value) > limit:
        raise error(f"the {what} is longer than {limit} characters ({len(value)})")
    bad = CONTROL.search(value) or (LINE_BREAK.search(value) if one_line else None)
    if bad is not None:
        kind = "a line break or tab" if bad.group() in "\t\n\r" else "a control character"
        raise error(
            f"the {what} contains {kind} (U+{ord(bad.group()):04X})"
            + (": it must be one line" if one_line else "")
        )
    return value
