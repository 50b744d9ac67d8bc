"""Waiting for a condition in tests (never for a fixed time): one helper for every suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(cond: Callable[[], T], what: str, timeout: float = 30) -> T:
    """Poll ``cond`` until it returns something true (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
