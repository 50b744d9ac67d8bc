"""Fixtures of the backup tests: a fresh store of the backend other than ``store_url``'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _create_pg_database


@pytest.fixture
def other_store_url(store_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of the other backend (PostgreSQL for SQLite, and back): where a
    dump of ``store_url``'s store is restored."""
    if store_url.startswith("sqlite"):
        return _create_pg_database(request.getfixturevalue("postgres_server"))
    return f"sqlite:///{tmp_path / 'restored.sqlite'}"
