"""The Kubernetes tests render manifests: the store only holds the permits, so SQLite alone
(the permit logic is tested on both stores in tests/governance)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"
