"""The store in open formats: one JSON Lines file per table, and ``schema.json``.

Owns dumping every table of the store (``Base.metadata.sorted_tables``: a new table is
included without a change here) from one consistent snapshot while the installation runs,
and loading such a dump into an empty store of either backend (SQLite or PostgreSQL), so
that a dump is also the way to move an installation from one to the other.

Layout of a dump folder:

* ``<table>.jsonl``: one JSON object per row, ``{column: value}``, in primary-key order;
* ``schema.json`` (written last): ``format``, ``version``, the Alembic ``revision`` of the
  store, the backend it came from, and for each table in dependency order its ``file``,
  ``rows`` and ``columns`` (``name``, portable ``kind``, SQL ``type``, ``nullable``,
  ``primary_key``).

Values are portable JSON: text, integers and booleans as themselves; datetimes as
``{"$datetime": "2026-12-05T09:00:00.000000+00:00"}`` (ISO 8601, UTC: SQLite's naive values
are UTC); ``{"$date": ...}``, ``{"$decimal": "1.10"}``, ``{"$uuid": ...}``, bytes as
``{"$base64": ...}``; enums as their values; a JSON column's value as ``{"$json": value}``
(so a stored JSON ``null`` is not confused with SQL ``NULL``, which is ``null``). Decoding is
driven by each column's kind, never by what a value looks like.

Consistency: PostgreSQL dumps in one ``REPEATABLE READ``, read-only transaction; SQLite in
one read transaction (WAL mode: writers go on meanwhile). Rows are streamed (server-side
cursor on PostgreSQL), so a table of millions of rows is never held in memory. A load is one
transaction: it leaves the target complete or empty.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from jupyterlab_hdh.audit.log import GENESIS_HASH
from jupyterlab_hdh.backup.errors import BackupError
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import Base

FORMAT = "hdh-store-dump"
VERSION = 1
SCHEMA_FILE = "schema.json"
#: rows fetched from, or inserted into, the store at a time
BATCH = 1000
#: rows the migrations themselves insert: a store holding only these is empty
SEED_ROWS: Mapping[str, tuple[Mapping[str, Any], ...]] = {
    "audit_head": ({"id": 1, "seq": 0, "last_hash": GENESIS_HASH},),
}

#: what :func:`decode_value` gives for a stored JSON ``null`` (``None`` is SQL ``NULL``)
JSON_NULL = sa.JSON.NULL
#: ``progress(table, rows so far, done)``: called as rows are dumped or loaded
Progress = Callable[[str, int, bool], None]


class DumpError(BackupError):
    """A store cannot be dumped, or a dump cannot be read or loaded (the message says why)."""


class RevisionMismatch(DumpError):
    """The dump was made from a store at another schema revision than this code's."""


class StoreNotEmpty(DumpError):
    """The target of a load already holds rows (a load never merges into a store)."""

    http_status = 409


@dataclass(frozen=True)
class TableDump:
    """One table of a dump: its name, its file (relative to the dump folder), its rows."""

    name: str
    file: str
    rows: int


@dataclass(frozen=True)
class DumpSummary:
    """What a dump holds, or what a load restored."""

    revision: str
    tables: tuple[TableDump, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


# --- column kinds and the portable encoding ----------------------------------------------------


def column_kind(column: sa.Column[Any]) -> str:
    """The portable kind of a column's values (what decides how they are encoded)."""
    t = column.type
    # subclasses before their bases: Enum is a String, Float a Numeric, DateTime not a Date
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.DateTime):
        return "datetime" if t.timezone else "datetime-naive"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.LargeBinary):
        return "bytes"
    if isinstance(t, sa.Enum):
        return "enum"
    if isinstance(t, sa.Boolean):
        return "boolean"
    if isinstance(t, sa.Integer):
        return "integer"
    if isinstance(t, sa.Float):
        return "float"
    if isinstance(t, sa.Numeric):
        return "decimal"
    if isinstance(t, sa.Uuid):
        return "uuid"
    if isinstance(t, sa.String):
        return "text"
    raise DumpError(
        f"column {column.table.name}.{column.name} has type {t!r}, which the store dump cannot"
        " encode yet: add its kind to jupyterlab_hdh.backup.store_dump"
    )


def encode_value(kind: str, value: Any) -> Any:
    """A column value of ``kind`` as portable JSON (see the module's docstring)."""
    if value is None:
        return None
    if kind == "json":
        return {"$json": None if value is JSON_NULL else value}
    if kind == "datetime":
        if not isinstance(value, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return {"$datetime": aware.isoformat(timespec="microseconds")}
    if kind == "datetime-naive":
        if not isinstance(value, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        return {"$datetime": value.replace(tzinfo=None).isoformat(timespec="microseconds")}
    if kind == "date":
        return {"$date": value.isoformat()}
    if kind == "bytes":
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if kind == "enum":
        return value.value if isinstance(value, Enum) else value
    if kind == "decimal":
        return {"$decimal": str(value)}
    if kind == "uuid":
        return {"$uuid": str(value)}
    if kind == "float":
        value = float(value)
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind == "boolean":
        return bool(value)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"not an integer: {value!r}")
        return value
    if kind == "text":
        return value.value if isinstance(value, Enum) else str(value)
    raise TypeError(f"unknown kind {kind!r}")


def _marked(kind: str, marker: str, value: Any) -> Any:
    if not isinstance(value, dict) or list(value) != [marker]:
        raise ValueError(f"a {kind} value must be {{{json.dumps(marker)}: ...}}, not {value!r}")
    return value[marker]


def decode_value(kind: str, value: Any, column_type: Any = None) -> Any:
    """The Python value of portable JSON ``value`` of ``kind`` (ValueError if it is not one).

    A JSON column's JSON ``null`` is :data:`JSON_NULL`, its SQL ``NULL`` ``None``."""
    if value is None:
        return None
    if kind == "json":
        decoded = _marked(kind, "$json", value)
        return JSON_NULL if decoded is None else decoded
    if kind in ("datetime", "datetime-naive"):
        text = _marked(kind, "$datetime", value)
        if not isinstance(text, str):
            raise ValueError(f"not an ISO 8601 time: {text!r}")
        parsed = datetime.fromisoformat(text)
        if kind == "datetime":
            if parsed.tzinfo is None:
                raise ValueError(f"a time without its UTC offset: {text!r}")
            return parsed.astimezone(UTC)
        if parsed.tzinfo is not None:
            raise ValueError(f"a time with an offset in a column without time zone: {text!r}")
        return parsed
    if kind == "date":
        return date.fromisoformat(_marked(kind, "$date", value))
    if kind == "bytes":
        try:
            return base64.b64decode(_marked(kind, "$base64", value), validate=True)
        except (binascii.Error, TypeError) as exc:
            raise ValueError(f"not base64: {exc}") from None
    if kind == "decimal":
        try:
            return Decimal(_marked(kind, "$decimal", value))
        except (InvalidOperation, TypeError):
            raise ValueError(f"not a decimal number: {value!r}") from None
    if kind == "uuid":
        return uuid.UUID(_marked(kind, "$uuid", value))
    if kind == "float":
        if isinstance(value, dict):
            return float(_marked(kind, "$float", value))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"not a number: {value!r}")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"not a boolean: {value!r}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"not an integer: {value!r}")
        return value
    if kind in ("text", "enum"):
        if not isinstance(value, str):
            raise ValueError(f"not text: {value!r}")
        enum_class = getattr(column_type, "enum_class", None)
        return enum_class(value) if kind == "enum" and enum_class is not None else value
    raise ValueError(f"unknown kind {kind!r}")


def describe_schema() -> list[dict[str, Any]]:
    """Every table of this code's store, in dependency order, with its columns' kinds."""
    return [
        {
            "name": table.name,
            "columns": [
                {
                    "name": c.name,
                    "kind": column_kind(c),
                    "type": _sql_type(c),
                    "nullable": bool(c.nullable),
                    "primary_key": bool(c.primary_key),
                }
                for c in table.columns
            ],
        }
        for table in Base.metadata.sorted_tables
    ]


def _sql_type(column: sa.Column[Any]) -> str:
    try:
        return str(column.type)
    except Exception:  # a type without a generic SQL spelling
        return type(column.type).__name__


# --- dump --------------------------------------------------------------------------------------


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one moment of the store."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            snap = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with snap.begin():
                yield snap
        elif engine.dialect.name == "sqlite":
            # pysqlite starts no transaction for a SELECT: without an explicit BEGIN each read
            # would see the store as it is then. In WAL mode a read transaction takes its
            # snapshot at its first read and lets writers commit meanwhile.
            conn.exec_driver_sql("BEGIN DEFERRED")
            try:
                yield conn
            finally:
                conn.rollback()
        else:  # pragma: no cover - db.sqlalchemy_url admits only these two
            raise DumpError(f"cannot take a snapshot of a {engine.dialect.name} store")


def _json_as_text(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A JSON column read as its stored text (SQL NULL and JSON null stay apart)."""
    return sa.cast(column, sa.Text).label(column.name)


def _json_value(text: str | None) -> Any:
    """A JSON column's stored text as a value: SQL NULL is None, JSON null JSON_NULL."""
    if text is None:
        return None
    value = json.loads(text)
    return JSON_NULL if value is None else value


def _rows(conn: Connection, table: sa.Table, batch: int) -> Iterator[tuple[Any, ...]]:
    columns = [_json_as_text(c) if column_kind(c) == "json" else c for c in table.columns]
    query = sa.select(*columns).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=batch).execute(query)
    try:
        for row in result:
            yield tuple(row)
    finally:
        result.close()


def _create_private(path: Path) -> int:
    """A new file, owner-only (the store holds password and token hashes)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)


def _write_json(path: Path, obj: Any) -> None:
    fd = _create_private(path)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(obj, out, ensure_ascii=False, indent=1)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def dump(
    engine: Engine, folder: Path, *, progress: Progress | None = None, batch: int = BATCH
) -> DumpSummary:
    """Dump every table of the store at ``engine`` into ``folder`` (new or empty).

    The store must be at this code's head revision. ``schema.json`` is written last: a folder
    without it is an interrupted dump. Files are owner-only and fsynced.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(folder.iterdir()):
        raise DumpError(f"{folder} is not empty: a store dump goes into a new folder")
    head = db.head_revision(engine)
    kinds = {t.name: [column_kind(c) for c in t.columns] for t in Base.metadata.sorted_tables}
    done: list[TableDump] = []
    try:
        with _snapshot(engine) as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            if revision != head:
                raise DumpError(
                    f"the store at {engine.url!r} is at revision {revision} but this HDH expects"
                    f" {head}: run `hdh init` to upgrade it before a backup"
                )
            for table in Base.metadata.sorted_tables:
                done.append(_dump_table(conn, table, kinds[table.name], folder, progress, batch))
    except SQLAlchemyError as exc:
        raise DumpError(f"cannot read the store: {_first_line(exc)}") from exc
    assert head is not None
    schema = {
        "format": FORMAT,
        "version": VERSION,
        "revision": head,
        "dialect": engine.dialect.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": [
            {**described, "file": d.file, "rows": d.rows}
            for described, d in zip(describe_schema(), done, strict=True)
        ],
    }
    _write_json(folder / SCHEMA_FILE, schema)
    return DumpSummary(head, tuple(done))


def _dump_table(
    conn: Connection,
    table: sa.Table,
    kinds: list[str],
    folder: Path,
    progress: Progress | None,
    batch: int,
) -> TableDump:
    name = f"{table.name}.jsonl"
    names = [c.name for c in table.columns]
    json_columns = {i for i, k in enumerate(kinds) if k == "json"}
    count = 0
    fd = _create_private(folder / name)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
        for row in _rows(conn, table, batch):
            values = [_json_value(v) if i in json_columns else v for i, v in enumerate(row)]
            try:
                encoded = {
                    n: encode_value(k, v) for n, k, v in zip(names, kinds, values, strict=True)
                }
            except (TypeError, ValueError) as exc:
                raise DumpError(f"cannot encode a row of {table.name}: {exc}") from None
            out.write(json.dumps(encoded, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
            if progress is not None and count % (batch * 10) == 0:
                progress(table.name, count, False)
        out.flush()
        os.fsync(out.fileno())
    if progress is not None:
        progress(table.name, count, True)
    return TableDump(table.name, name, count)


# --- reading a dump ----------------------------------------------------------------------------


def read_schema(folder: Path) -> dict[str, Any]:
    """The checked ``schema.json`` of a dump (DumpError naming what is wrong)."""
    path = Path(folder) / SCHEMA_FILE
    if not path.is_file():
        raise DumpError(
            f"{path} is missing: {folder} is not a store dump, or its dump was interrupted"
        )
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DumpError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("format") != FORMAT:
        raise DumpError(f"{path} is not the schema of an HDH store dump")
    if schema.get("version") != VERSION:
        raise DumpError(
            f"{path} is a store dump of format version {schema.get('version')!r}; this HDH"
            f" reads version {VERSION}"
        )
    tables = schema.get("tables")
    if not isinstance(schema.get("revision"), str) or not isinstance(tables, list):
        raise DumpError(f"{path} lacks the store's revision or its tables")
    for t in tables:
        if not (
            isinstance(t, dict)
            and isinstance(t.get("name"), str)
            and isinstance(t.get("file"), str)
            and isinstance(t.get("rows"), int)
            and isinstance(t.get("columns"), list)
        ):
            raise DumpError(f"{path}: a table entry is malformed: {str(t)[:200]}")
        if Path(t["file"]).name != t["file"] or not t["file"].endswith(".jsonl"):
            raise DumpError(f"{path}: table {t['name']} names a file outside the dump: {t['file']}")
    return schema


def _check_tables(schema: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]]:
    """The dump's tables by name, checked against this code's tables, column by column."""
    dumped = {t["name"]: t for t in schema["tables"]}
    expected = {t["name"]: t for t in describe_schema()}
    if missing := sorted(set(expected) - set(dumped)):
        raise DumpError(f"the dump in {folder} lacks table(s) {', '.join(missing)}")
    if extra := sorted(set(dumped) - set(expected)):
        raise DumpError(f"the dump in {folder} has table(s) this HDH does not know: {extra}")
    for name, table in expected.items():
        ours = [(c["name"], c["kind"]) for c in table["columns"]]
        theirs = [(c.get("name"), c.get("kind")) for c in dumped[name]["columns"]]
        if ours != theirs:
            raise DumpError(
                f"table {name} of the dump in {folder} has columns {theirs}, this HDH {ours}"
            )
        if not (folder / dumped[name]["file"]).is_file():
            raise DumpError(f"{folder / dumped[name]['file']} is missing (table {name})")
    return dumped


def read_rows(folder: Path, table: sa.Table, entry: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The decoded rows of one table's file (DumpError naming the file and line)."""
    path = Path(folder) / entry["file"]
    kinds = {c.name: column_kind(c) for c in table.columns}
    names = set(kinds)
    with path.open(encoding="utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"{path}, line {number}"
            try:
                encoded = json.loads(line)
            except ValueError as exc:
                raise DumpError(f"{where} is not a JSON object: {exc}") from None
            if not isinstance(encoded, dict) or set(encoded) != names:
                got = sorted(encoded) if isinstance(encoded, dict) else type(encoded).__name__
                raise DumpError(f"{where}: expected the columns {sorted(names)}, found {got}")
            row = {}
            for name, value in encoded.items():
                try:
                    row[name] = decode_value(kinds[name], value, table.c[name].type)
                except (ValueError, TypeError) as exc:
                    raise DumpError(f"{where}, column {name}: {exc}") from None
            yield row


# --- load --------------------------------------------------------------------------------------


def load(
    engine: Engine, folder: Path, *, progress: Progress | None = None, batch: int = BATCH
) -> DumpSummary:
    """Load the dump in ``folder`` into the EMPTY store at ``engine``, in one transaction.

    Refuses a dump made at another schema revision than this code's (naming both), and a
    store that holds any row (naming the tables): a store on which ``hdh init`` ran already
    holds its first audit event. The schema is first brought to the dump's revision (an
    empty database gets every table), then every row is inserted with its primary key, in
    dependency order; PostgreSQL's id sequences are moved past the restored ids. On any
    error nothing is loaded.
    """
    folder = Path(folder)
    schema = read_schema(folder)
    head = db.head_revision(engine)
    if schema["revision"] != head:
        raise RevisionMismatch(
            f"the dump in {folder} is of a store at revision {schema['revision']}, but this HDH"
            f" is at revision {head}: restore it with the HDH release that made it"
        )
    dumped = _check_tables(schema, folder)
    try:
        current = db.current_revision(engine)
        if current not in (None, head):  # an older installation: never upgraded by a restore
            raise StoreNotEmpty(
                f"the store at {engine.url!r} is an installation at revision {current}: a dump"
                " is loaded only into a new, empty store"
            )
        db.upgrade(engine)
    except SQLAlchemyError as exc:
        raise db.unreachable(engine, exc) from exc
    tables = Base.metadata.sorted_tables
    loaded: list[TableDump] = []
    try:
        with _write_transaction(engine) as conn:
            if occupied := _occupied(conn):
                raise StoreNotEmpty(
                    f"the store at {engine.url!r} is not empty (table(s) with rows:"
                    f" {', '.join(occupied)}): a dump is loaded only into a new, empty store"
                    " (do not run `hdh init` on it first)"
                )
            for seeded, seeds in SEED_ROWS.items():
                t = Base.metadata.tables[seeded]
                for seed in seeds:
                    conn.execute(t.delete().where(*(t.c[k] == v for k, v in seed.items())))
            for table in tables:
                loaded.append(_load_table(conn, table, folder, dumped[table.name], progress, batch))
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn, tables)
    except SQLAlchemyError as exc:
        raise DumpError(
            f"cannot load the dump in {folder}; nothing was loaded: {_first_line(exc)}"
        ) from exc
    return DumpSummary(schema["revision"], tuple(loaded))


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that no other writer interleaves with (committed on success)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before the empty check
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        else:
            with conn.begin():
                names = ", ".join(
                    conn.dialect.identifier_preparer.quote(t.name)
                    for t in Base.metadata.sorted_tables
                )
                conn.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
                yield conn


def _occupied(conn: Connection) -> list[str]:
    """The tables holding rows other than what the migrations put there."""
    occupied = []
    for table in Base.metadata.sorted_tables:
        seeds = SEED_ROWS.get(table.name, ())
        rows = conn.execute(sa.select(table).limit(len(seeds) + 1)).mappings().all()
        if any(dict(r) not in [dict(s) for s in seeds] for r in rows):
            occupied.append(table.name)
    return occupied


def _insert_statement(conn: Connection, table: sa.Table) -> sa.Insert:
    """INSERT of every column; JSON columns are bound as their JSON text (``None``: SQL NULL)."""
    values: dict[str, Any] = {}
    for i, c in enumerate(table.columns):
        if column_kind(c) == "json":
            param: Any = sa.bindparam(f"p{i}", type_=sa.Text)
            if conn.dialect.name == "postgresql":
                param = sa.cast(param, c.type)
        else:
            param = sa.bindparam(f"p{i}", type_=c.type)
        values[c.name] = param
    return table.insert().values(values)


def _load_table(
    conn: Connection,
    table: sa.Table,
    folder: Path,
    entry: Mapping[str, Any],
    progress: Progress | None,
    batch: int,
) -> TableDump:
    statement = _insert_statement(conn, table)
    params = {c.name: f"p{i}" for i, c in enumerate(table.columns)}
    json_columns = {c.name for c in table.columns if column_kind(c) == "json"}
    pending: list[dict[str, Any]] = []
    count = 0
    for row in read_rows(folder, table, entry):
        pending.append(
            {
                params[name]: _json_text(value) if name in json_columns else value
                for name, value in row.items()
            }
        )
        count += 1
        if len(pending) >= batch:
            conn.execute(statement, pending)
            pending = []
            if progress is not None and count % (batch * 10) == 0:
                progress(table.name, count, False)
    if pending:
        conn.execute(statement, pending)
    if count != entry["rows"]:
        raise DumpError(
            f"{folder / entry['file']} holds {count} rows but {SCHEMA_FILE} records"
            f" {entry['rows']}: the dump was truncated or altered; nothing was loaded"
        )
    if progress is not None:
        progress(table.name, count, True)
    return TableDump(table.name, entry["file"], count)


def _json_text(value: Any) -> str | None:
    """The text a JSON column is bound to: None stays SQL NULL, JSON_NULL is ``null``."""
    if value is None:
        return None
    return "null" if value is JSON_NULL else json.dumps(value, ensure_ascii=False)


def _reset_sequences(conn: Connection, tables: list[sa.Table]) -> None:
    """Move each serial id's sequence past the largest restored id (PostgreSQL)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        for column in table.primary_key.columns:
            if column_kind(column) != "integer":
                continue
            sequence = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            ).scalar()
            if sequence is None:
                continue
            conn.execute(
                sa.text(
                    f"SELECT setval(:s, COALESCE((SELECT MAX({quote(column.name)})"
                    f" FROM {quote(table.name)}), 1),"
                    f" (SELECT MAX({quote(column.name)}) FROM {quote(table.name)}) IS NOT NULL)"
                ),
                {"s": sequence},
            )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
