"""The store's schema comes from Alembic, matches the ORM, and is checked before use."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import Base


def test_upgrade_creates_the_schema_the_models_describe(store_url: str) -> None:
    engine = db.make_engine(store_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert db.current_revision(engine) == db.head_revision(engine)
    db.check_schema(engine)
    db.upgrade(engine)  # idempotent
    engine.dispose()


def test_downgrade_then_upgrade_round_trips(store_url: str) -> None:
    engine = db.make_engine(store_url)
    db.upgrade(engine)
    command.downgrade(db.alembic_config(engine), "base")
    assert "audit_events" not in sa.inspect(engine).get_table_names()
    db.upgrade(engine)
    assert "audit_events" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_an_unmigrated_store_is_refused_with_the_fix(store_url: str) -> None:
    engine = db.make_engine(store_url)
    with pytest.raises(db.StoreError, match="run `hdh init`"):
        db.check_schema(engine)
    engine.dispose()


def test_an_unreachable_store_is_a_clear_error(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/missing/dir/x.sqlite")
    with pytest.raises(db.StoreError, match="cannot reach the store"):
        db.check_schema(engine)
