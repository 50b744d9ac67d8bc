"""Engines, sessions and schema migrations for the store (SQLite or PostgreSQL).

Owns checking a store URL, connecting to the store and bringing its schema to
the current Alembic revision. The same code runs on SQLite (default, one file
in the data directory) and PostgreSQL (``postgresql://...``, also spelt
``postgres://``, with the installed psycopg driver).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from jupyterlab_hdh.errors import HdhError

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(HdhError):
    """The store is unreachable or its schema is not the one this code expects."""

    http_status = 503


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


#: The store's backends, and the driver a URL without one uses.
#: the largest integer primary key the store holds (an INTEGER column on PostgreSQL)
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: object) -> bool:
    """``value`` can be a row's integer id: an int (not a bool) in 1..MAX_ROW_ID. A caller's
    id outside it is simply unknown, never a database overflow error."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


BACKENDS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
URL_EXAMPLES = "sqlite:////path/to/hdh.sqlite or postgresql://user:password@host:5432/dbname"


def sqlalchemy_url(url: str) -> URL:
    """The SQLAlchemy URL of a store URL as people write it; StoreError if it cannot be used.

    ``postgres://`` (the spelling of Heroku and many tools) means ``postgresql://``;
    a URL without a driver gets the installed one (psycopg for PostgreSQL). Messages
    never repeat a password.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: expected {URL_EXAMPLES}") from None
    backend, _, driver = parsed.drivername.partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    shown = parsed.render_as_string(hide_password=True)
    if backend not in BACKENDS:
        raise StoreError(
            f"unsupported database {backend!r} in {shown}: the store is SQLite or PostgreSQL"
            f" ({URL_EXAMPLES})"
        )
    if backend == "postgresql" and not driver:
        driver = BACKENDS[backend]
    parsed = parsed.set(drivername=f"{backend}+{driver}" if driver else backend)
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise StoreError(
            f"no {backend} driver {driver!r} is installed for {shown}:"
            f" leave the driver out ({backend}://...) to use {BACKENDS[backend]}"
        ) from None
    return parsed


def make_engine(url: str) -> Engine:
    engine = create_engine(sqlalchemy_url(url), future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine | None = None) -> str | None:
    """The newest revision of this code's migrations (no store needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def check_schema(engine: Engine) -> None:
    """Raise StoreError unless the store is at the newest revision."""
    try:
        current = current_revision(engine)
    except Exception as exc:  # connection refused, bad URL...
        raise unreachable(engine, exc) from exc
    head = head_revision(engine)
    if current != head:
        raise StoreError(
            f"the store at {engine.url!r} is at revision {current} but this HDH expects {head}:"
            " run `hdh init` to create or upgrade it"
        )


def unreachable(engine: Engine, exc: BaseException) -> StoreError:
    """The one-line error for a store that cannot be reached: the driver's own first line."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return StoreError(f"cannot reach the store at {engine.url!r}: {reason}")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory.begin() as session:
        yield session
