"""cuDF for the tests marked ``gpu``: imported when installed and a GPU answers, else skip.

CI has no GPU and no cuDF, so these tests are skipped there; they run on a lent GPU
machine (``docs/benchmarks.md`` records where and what they gave).
"""

from __future__ import annotations

from typing import Any

import pytest


def cudf_or_skip() -> Any:
    """The ``cudf`` module, or skip the test (cuDF not installed, or no GPU to run it)."""
    try:
        import cudf

        cudf.Series([1]).sum()  # raises without a usable GPU
    except ImportError:
        pytest.skip("cuDF is not installed (GPU machines only)")
    except Exception as exc:  # CUDA errors: installed, but no GPU here
        pytest.skip(f"cuDF cannot run here: {type(exc).__name__}: {exc}")
    return cudf
