"""Sizes as people write them in commands and settings files: ``4G``, ``512M``, ``50MiB``.

Owns :func:`parse_size` (binary units: ``K`` = KiB, ``M`` = MiB, ``G`` = GiB,
``T`` = TiB; a trailing ``B`` or ``iB`` is accepted) and :func:`human`, its
inverse for messages. Used by ``hdh up --memory-limit`` and ``guard.toml``.
"""

from __future__ import annotations

import math

KiB = 1024
MiB = 1024 * KiB
UNITS = {"": 1, "K": KiB, "M": MiB, "G": 1024 * MiB, "T": 1024 * 1024 * MiB}


def parse_size(value: int | str, what: str = "size") -> int:
    """``50M``, ``2MiB``, ``1.5G``, ``4096`` or an int → bytes (ValueError naming ``what``)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{what}: {value} is negative")
        return value
    text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] and text[-1:] in UNITS else ""
    number = text[: len(text) - len(unit)]
    try:
        size = float(number)
    except ValueError:
        size = -1.0
    if not number or not math.isfinite(size) or size < 0:
        raise ValueError(f"{what}: {value!r} is not a size (write e.g. 50M, 2G or 4096)")
    return int(size * UNITS[unit])


def human(n: int) -> str:
    """Bytes as the sizes above are written (``M`` = MiB)."""
    return f"{n / MiB:.1f} MiB" if n >= 100 * KiB else f"{n / KiB:.1f} KiB"
