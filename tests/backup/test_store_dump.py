"""The store dumped as JSON Lines and loaded into an empty store of the other backend.

The round trip fills a store through the domain functions (``fill``), dumps it, loads it
into a fresh store of the other backend (SQLite → PostgreSQL and PostgreSQL → SQLite),
compares every table row by row with a reading of its own, verifies the audit chain (and
the dumped log against a signed checkpoint), and uses the restored installation. The other
tests: the snapshot is consistent while a writer commits, rows are streamed, and a refused
or failed load leaves the target empty.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import DBAPIError

from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.audit import record, verify
from jupyterlab_hdh.backup import store_dump as sd
from jupyterlab_hdh.context import init_installation, open_installation
from jupyterlab_hdh.governance import accounts
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import AuditEvent, AuditHead, Base, User
from tests.backup.fill import fill

TABLES = [t.name for t in Base.metadata.sorted_tables]


def _filled(store_url: str, root: Path) -> tuple[Any, dict[str, Any]]:
    hub, _ = init_installation(DataDir.resolve(root, store_url), actor="test")
    return hub, fill(hub)


def _normal(kind: str, value: Any) -> Any:
    """A value as both backends must agree on it, read independently of store_dump."""
    if value is None:
        return None
    if kind == "datetime":  # SQLite hands back naive UTC, PostgreSQL aware values
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if kind == "json":  # the stored JSON text: JSON null is not SQL NULL
        return ("json", json.loads(value))
    return value


def _table_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    kinds = [sd.column_kind(c) for c in table.columns]
    columns = [
        sa.cast(c, sa.Text) if k == "json" else c for c, k in zip(table.columns, kinds, strict=True)
    ]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(*table.primary_key.columns)).all()
    return [tuple(_normal(k, v) for k, v in zip(kinds, row, strict=True)) for row in rows]


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def _empty(engine: sa.Engine) -> bool:
    """No row but the migrations' own (the genesis audit head)."""
    with engine.connect() as conn:
        return sd._occupied(conn) == []


# --- the round trip ----------------------------------------------------------------------------


def test_round_trip_to_the_other_backend(
    store_url: str, other_store_url: str, tmp_path: Path
) -> None:
    hub, checkpoint = _filled(store_url, tmp_path / "source")
    summary = sd.dump(hub.engine, tmp_path / "dump")
    assert summary.revision == db.head_revision(hub.engine)
    assert [t.name for t in summary.tables] == TABLES
    assert all(t.rows > 0 for t in summary.tables), "fill() leaves a table empty"
    assert {p.name for p in (tmp_path / "dump").iterdir()} == {
        sd.SCHEMA_FILE,
        *(f"{t}.jsonl" for t in TABLES),
    }

    target = db.make_engine(other_store_url)
    assert target.dialect.name != hub.engine.dialect.name
    loaded = sd.load(target, tmp_path / "dump")
    assert loaded == summary

    # every table, row by row, read by each backend's own driver
    for table in Base.metadata.sorted_tables:
        assert _table_rows(target, table) == _table_rows(hub.engine, table), table.name
    # and the portable encoding is the same, byte for byte, whichever backend it came from
    sd.dump(target, tmp_path / "again")
    for name in TABLES:
        assert (tmp_path / "again" / f"{name}.jsonl").read_bytes() == (
            tmp_path / "dump" / f"{name}.jsonl"
        ).read_bytes(), name

    # the audit chain, recomputed on the restored store
    events = summary.tables[TABLES.index("audit_events")].rows
    with db.session_factory(target)() as s:
        result = verify(s)
    assert result.ok and result.checked == events, result
    # the dumped log is an audit export: it proves itself against the signed checkpoint
    key, _ = cp.signing_key(hub.data_dir.keys)
    with (tmp_path / "dump" / "audit_events.jsonl").open() as lines:
        proof = cp.verify_export(lines, checkpoint, key.public_key())
    assert proof.ok and proof.checked == checkpoint["seq"], proof

    # the restored log is still append-only
    with pytest.raises(DBAPIError, match="append-only"), target.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == 1).values(actor="mallory"))

    # the restored installation works: same keys, same access, ids and chain go on
    root = tmp_path / "restored"
    root.mkdir()
    shutil.copytree(hub.data_dir.keys, root / "keys")
    restored = open_installation(DataDir(root, other_store_url))
    try:
        assert restored.keys.fingerprint() == hub.keys.fingerprint()
        with restored.sessions() as s:
            assert pj.access_problem(s, "alice", "study") is None
            assert pj.access_problem(s, "bob", "diabetes-2027") is None
            assert not accounts.is_active(s, "mallory")
            largest = s.scalar(sa.select(sa.func.max(User.id))) or 0
        with restored.transaction() as s:
            new = accounts.create_user(s, "zoe", "researcher", actor="test")
        assert new.id == largest + 1  # PostgreSQL's sequence was moved past the restored ids
        with restored.transaction() as s:
            record(s, actor="test", action="test.after_restore", target="x")
        with restored.sessions() as s:
            after = verify(s)
            assert after.ok and after.checked == events + 2
            head = s.get(AuditHead, 1)
            assert head is not None and head.seq == events + 2
    finally:
        restored.close()
        hub.close()
        target.dispose()


# --- consistency and streaming -----------------------------------------------------------------


def test_the_dump_is_one_snapshot_while_a_writer_commits(hub: Any, tmp_path: Path) -> None:
    """A user (and its audit event) committed while the dump runs, after the log was read and
    before the head and the users are: the dump has neither, and its head matches its log."""
    with hub.transaction() as s:
        accounts.create_user(s, "alice", "researcher", actor="test")
    written: list[str] = []

    def write_meanwhile(table: str, rows: int, done: bool) -> None:
        if table == "audit_events" and done:
            with hub.transaction() as s:
                accounts.create_user(s, "intruder", "researcher", actor="test")
            written.append(table)

    sd.dump(hub.engine, tmp_path / "dump", progress=write_meanwhile)
    assert written == ["audit_events"]
    with hub.sessions() as s:  # the write did commit, while the dump was running
        assert accounts.get_user(s, "intruder").name == "intruder"
        assert s.get(AuditHead, 1).seq == 3
    users = (tmp_path / "dump" / "users.jsonl").read_text().splitlines()
    assert [json.loads(u)["name"] for u in users] == ["alice"]
    events = [json.loads(e) for e in (tmp_path / "dump" / "audit_events.jsonl").open()]
    (head,) = [json.loads(h) for h in (tmp_path / "dump" / "audit_head.jsonl").open()]
    assert len(events) == 2 and head["seq"] == 2 and head["last_hash"] == events[-1]["hash"]


def test_rows_are_streamed_in_batches(hub: Any, tmp_path: Path) -> None:
    """Every table is read through a streaming result (a server-side cursor on PostgreSQL),
    and batches smaller than a table dump and load it whole."""
    with hub.transaction() as s:
        for i in range(23):
            accounts.create_user(s, f"user{i:02d}", "researcher", actor="test")
    reads: list[tuple[str, Any, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM" in statement.upper():
            reads.append((statement, context.execution_options, getattr(cursor, "name", None)))

    sa.event.listen(hub.engine, "before_cursor_execute", seen)
    try:
        sd.dump(hub.engine, tmp_path / "dump", batch=5)
    finally:
        sa.event.remove(hub.engine, "before_cursor_execute", seen)
    table_reads = [r for r in reads if "ORDER BY" in r[0]]
    assert len(table_reads) == len(TABLES)
    assert all(options.get("yield_per") == 5 for _, options, _ in table_reads)
    if hub.engine.dialect.name == "postgresql":
        assert all(name for _, _, name in table_reads), "not a server-side cursor"
    target = db.make_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    progress: list[tuple[str, int, bool]] = []
    sd.load(target, tmp_path / "dump", batch=4, progress=lambda *p: progress.append(p))
    assert [p[0] for p in progress if p[2]] == TABLES
    assert ("users", 23, True) in progress
    assert _counts(target)["users"] == 23
    users = Base.metadata.tables["users"]
    assert _table_rows(target, users) == _table_rows(hub.engine, users)
    target.dispose()


def test_the_snapshot_reads_only(hub: Any) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's read transaction has no read-only mode: dump() only reads")
    users = Base.metadata.tables["users"]
    with pytest.raises(DBAPIError, match="read-only transaction"), sd._snapshot(hub.engine) as c:
        c.execute(users.insert().values(name="x", role="researcher", created_at=datetime.now(UTC)))


# --- refusals: nothing is loaded ---------------------------------------------------------------


def test_load_refuses_a_store_that_is_not_empty(hub: Any, tmp_path: Path) -> None:
    sd.dump(hub.engine, tmp_path / "dump")
    before = _counts(hub.engine)
    with pytest.raises(sd.StoreNotEmpty, match="audit_events, audit_head, settings") as err:
        sd.load(hub.engine, tmp_path / "dump")
    assert "hdh init" in str(err.value) and "\n" not in str(err.value)
    assert _counts(hub.engine) == before


def test_load_leaves_an_older_installation_alone(hub: Any, tmp_path: Path) -> None:
    sd.dump(hub.engine, tmp_path / "dump")
    target = db.make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    command.upgrade(db.alembic_config(target), "0008")
    with pytest.raises(sd.StoreNotEmpty, match="an installation at revision 0008"):
        sd.load(target, tmp_path / "dump")
    assert db.current_revision(target) == "0008"  # not upgraded by the refused restore
    target.dispose()


def test_load_refuses_a_dump_of_another_revision(hub: Any, tmp_path: Path) -> None:
    sd.dump(hub.engine, tmp_path / "dump")
    schema_path = tmp_path / "dump" / sd.SCHEMA_FILE
    schema = json.loads(schema_path.read_text())
    schema["revision"] = "0008"
    schema_path.write_text(json.dumps(schema))
    target = db.make_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    head = db.head_revision(target)
    with pytest.raises(sd.RevisionMismatch, match=f"revision 0008.*revision {head}"):
        sd.load(target, tmp_path / "dump")
    assert db.current_revision(target) is None  # refused before the schema was even made
    target.dispose()


def test_load_refuses_a_dump_whose_tables_differ(hub: Any, tmp_path: Path) -> None:
    sd.dump(hub.engine, tmp_path / "dump")
    schema_path = tmp_path / "dump" / sd.SCHEMA_FILE
    target = db.make_engine(f"sqlite:///{tmp_path / 'target.sqlite'}")
    schema = json.loads(schema_path.read_text())
    schema["tables"][TABLES.index("users")]["columns"].pop()
    schema_path.write_text(json.dumps(schema))
    with pytest.raises(sd.DumpError, match="table users of the dump"):
        sd.load(target, tmp_path / "dump")
    schema["tables"] = [t for t in schema["tables"] if t["name"] != "optouts"]
    schema_path.write_text(json.dumps(schema))
    with pytest.raises(sd.DumpError, match="lacks table.*optouts"):
        sd.load(target, tmp_path / "dump")
    (tmp_path / "dump" / sd.SCHEMA_FILE).unlink()  # an interrupted dump
    with pytest.raises(sd.DumpError, match="schema.json is missing"):
        sd.load(target, tmp_path / "dump")
    target.dispose()


def _altered(dump: Path, dest: Path, table: str, change: Any, rows_delta: int = 0) -> Path:
    """A copy of ``dump`` whose ``table`` lines are ``change(lines)``."""
    shutil.copytree(dump, dest)
    path = dest / f"{table}.jsonl"
    path.write_text("".join(change(path.read_text().splitlines(keepends=True))))
    if rows_delta:
        schema = json.loads((dest / sd.SCHEMA_FILE).read_text())
        schema["tables"][TABLES.index(table)]["rows"] += rows_delta
        (dest / sd.SCHEMA_FILE).write_text(json.dumps(schema))
    return dest


def test_a_failed_load_leaves_the_target_empty(
    store_url: str, other_store_url: str, tmp_path: Path
) -> None:
    """Each damaged dump fails at its last table or row, after every other row was inserted,
    and the same target is left empty each time: the next, intact dump loads."""
    hub, _ = _filled(store_url, tmp_path / "source")
    sd.dump(hub.engine, tmp_path / "dump")
    hub.close()
    last = TABLES[-1]
    bad_time = json.dumps({"$datetime": "yesterday"})

    def bad_value(lines: list[str]) -> list[str]:
        row = json.loads(lines[-1])
        row["created_at"] = json.loads(bad_time)
        return [*lines[:-1], json.dumps(row) + "\n"]

    cases = [
        (last, bad_value, 0, rf"{last}\.jsonl, line \d+, column created_at"),
        (last, lambda lines: lines[:-1], 0, "holds 3 rows but schema.json records 4"),
        (last, lambda lines: [*lines, lines[-1]], 1, "nothing was loaded"),  # duplicate key
        ("audit_events", lambda lines: [*lines[:-1], "{not json\n"], 0, "not a JSON object"),
        ("users", lambda lines: [*lines, '{"id": 99}\n'], 1, "expected the columns"),
    ]
    target = db.make_engine(other_store_url)
    for i, (table, change, delta, message) in enumerate(cases):
        damaged = _altered(tmp_path / "dump", tmp_path / f"damaged{i}", table, change, delta)
        with pytest.raises(sd.DumpError, match=message) as err:
            sd.load(target, damaged)
        assert "\n" not in str(err.value)
        assert _empty(target), f"case {i} left rows behind"
    sd.load(target, tmp_path / "dump")
    assert not _empty(target)
    target.dispose()


def test_dump_refuses_a_used_folder_and_an_old_store(hub: Any, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(sd.DumpError, match="not empty"):
        sd.dump(hub.engine, tmp_path / "used")
    command.stamp(db.alembic_config(hub.engine), "0008")
    with pytest.raises(sd.DumpError, match="revision 0008.*hdh init"):
        sd.dump(hub.engine, tmp_path / "dump")


def test_schema_json_describes_every_table(hub: Any, tmp_path: Path) -> None:
    sd.dump(hub.engine, tmp_path / "dump")
    schema = sd.read_schema(tmp_path / "dump")
    assert schema["format"] == "hdh-store-dump" and schema["version"] == 1
    assert schema["revision"] == db.current_revision(hub.engine) == db.head_revision(hub.engine)
    assert schema["dialect"] == hub.engine.dialect.name
    assert [t["name"] for t in schema["tables"]] == TABLES
    users = schema["tables"][TABLES.index("users")]
    assert users["file"] == "users.jsonl" and users["rows"] == 0
    created = {c["name"]: c for c in users["columns"]}["created_at"]
    assert created["kind"] == "datetime" and created["nullable"] is False
    assert all(
        (Path(tmp_path / "dump" / f).stat().st_mode & 0o777) == 0o600
        for f in (sd.SCHEMA_FILE, "users.jsonl")
    )


# --- the portable encoding ---------------------------------------------------------------------


class Colour(Enum):
    RED = "red"


PARIS = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("kind", "value", "encoded", "decoded"),
    [
        ("text", "é\n\x00", "é\n\x00", "é\n\x00"),
        ("integer", 2**40, 2**40, 2**40),
        ("boolean", True, True, True),
        ("float", 0.5, 0.5, 0.5),
        ("decimal", Decimal("1.10"), {"$decimal": "1.10"}, Decimal("1.10")),
        ("bytes", b"\x00\xff", {"$base64": "AP8="}, b"\x00\xff"),
        ("enum", Colour.RED, "red", "red"),
        ("date", date(2026, 12, 5), {"$date": "2026-12-05"}, date(2026, 12, 5)),
        ("json", None, None, None),
        ("json", {"a": [1, None]}, {"$json": {"a": [1, None]}}, {"a": [1, None]}),
        (
            "datetime",  # a naive value from SQLite is UTC
            datetime(2026, 12, 5, 9, 0),
            {"$datetime": "2026-12-05T09:00:00.000000+00:00"},
            datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
        ),
        (
            "datetime",  # any offset is written as UTC
            datetime(2026, 12, 5, 10, 0, 0, 5, tzinfo=PARIS),
            {"$datetime": "2026-12-05T09:00:00.000005+00:00"},
            datetime(2026, 12, 5, 9, 0, 0, 5, tzinfo=UTC),
        ),
        (
            "datetime-naive",
            datetime(2026, 12, 5, 9, 0),
            {"$datetime": "2026-12-05T09:00:00.000000"},
            datetime(2026, 12, 5, 9, 0),
        ),
    ],
)
def test_values_are_encoded_portably(kind: str, value: Any, encoded: Any, decoded: Any) -> None:
    assert sd.encode_value(kind, value) == encoded
    assert json.loads(json.dumps(encoded)) == encoded
    assert sd.decode_value(kind, encoded) == decoded


def test_a_json_null_is_not_sql_null() -> None:
    assert sd.encode_value("json", None) is None  # SQL NULL
    assert sd.encode_value("json", sd.JSON_NULL) == {"$json": None}  # JSON null, marked
    assert sd.decode_value("json", {"$json": None}) is sd.JSON_NULL
    assert sd.encode_value("float", float("nan")) == {"$float": "nan"}


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("datetime", "2026-12-05T09:00:00+00:00"),  # unmarked
        ("datetime", {"$datetime": "2026-12-05T09:00:00"}),  # no offset
        ("datetime", {"$date": "2026-12-05"}),
        ("json", {"a": 1}),
        ("bytes", {"$base64": "not base64!"}),
        ("integer", "1"),
        ("integer", True),
        ("boolean", 1),
        ("text", 1),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(kind: str, value: Any) -> None:
    with pytest.raises(ValueError):
        sd.decode_value(kind, value)


def test_an_unknown_column_type_is_named() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("span", sa.Interval()))
    with pytest.raises(sd.DumpError, match=r"t\.span .*store_dump"):
        sd.column_kind(table.c.span)


def test_every_column_of_the_store_has_a_kind() -> None:
    described = sd.describe_schema()
    assert [t["name"] for t in described] == TABLES
    assert all(c["kind"] for t in described for c in t["columns"])
