"""Signed checkpoints: someone outside the platform, holding only a checkpoint, the public
key and an export of the log, proves the log up to the checkpoint was not rewritten.

Every tampering is done as an attacker with database rights would: directly in SQL, with the
append-only triggers dropped first, on SQLite and on a real PostgreSQL. The hardest one
rewrites an event and recomputes every hash after it, which the chain alone cannot see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.audit import record, verify
from jupyterlab_hdh.audit.log import event_hash
from jupyterlab_hdh.cli import main


def _append(hub: Any, n: int) -> None:
    for i in range(n):
        with hub.transaction() as s:
            record(s, actor="alice", action="test.event", target=f"t:{i}", details={"i": i})


def _drop_triggers(s: Any) -> None:
    """What an attacker with database rights does before tampering."""
    if s.bind.dialect.name == "postgresql":
        s.execute(sa.text("DROP TRIGGER audit_events_append_only ON audit_events"))
        s.execute(sa.text("DROP TRIGGER audit_events_no_truncate ON audit_events"))
    else:
        s.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        s.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


def _signed(hub: Any, n: int = 6) -> tuple[dict[str, Any], Any]:
    """``n`` events, a checkpoint over them (and itself), then two more events."""
    _append(hub, n)
    key, made = cp.signing_key(hub.data_dir.keys, create=True)
    assert made and (hub.data_dir.keys / cp.KEY_FILE).stat().st_mode & 0o777 == 0o600
    with hub.transaction() as s:
        checkpoint = cp.make_checkpoint(s, key, actor="admin")
    _append(hub, 2)
    return checkpoint, key.public_key()


def _check(hub: Any, checkpoint: dict[str, Any], public: Any) -> cp.CheckpointResult:
    with hub.sessions() as s:
        return cp.verify_export(list(cp.export_lines(s)), checkpoint, public)


def test_an_untouched_log_matches_its_checkpoint(hub) -> None:
    base = _count(hub)
    checkpoint, public = _signed(hub)
    assert checkpoint["seq"] == base + 7  # the six events and the checkpoint's own
    result = _check(hub, checkpoint, public)
    assert result.ok, result.reason
    assert (result.checked, result.after) == (base + 7, 2)


def _count(hub: Any) -> int:
    with hub.sessions() as s:
        return verify(s).checked


def _rewrite(s: Any, seq: int) -> None:
    """Edit event ``seq`` and recompute every hash after it, and the head: a chain that
    verifies again."""
    rows = s.execute(
        sa.text(
            "SELECT seq, ts, actor, action, target, details, prev_hash FROM audit_events"
            " WHERE seq >= :seq ORDER BY seq"
        ),
        {"seq": seq},
    ).all()
    prev = None
    for i, row in enumerate(rows):
        fields = dict(row._mapping)
        if i == 0:
            fields["details"] = '{"i":999}'
        else:
            fields["prev_hash"] = prev
        prev = event_hash(**fields)
        s.execute(
            sa.text(
                "UPDATE audit_events SET details = :details, prev_hash = :prev_hash, hash = :h"
                " WHERE seq = :seq"
            ),
            {**fields, "h": prev},
        )
    s.execute(sa.text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


def _swap(s: Any, a: int, b: int) -> None:
    s.execute(sa.text("UPDATE audit_events SET seq = -1 WHERE seq = :a"), {"a": a})
    s.execute(sa.text("UPDATE audit_events SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    s.execute(sa.text("UPDATE audit_events SET seq = :b WHERE seq = -1"), {"b": b})


TAMPERING = {
    "an edited event": (
        lambda s, k: s.execute(
            sa.text("UPDATE audit_events SET actor = 'eve' WHERE seq = :q"), {"q": k - 3}
        ),
        "was altered",
    ),
    "a rewritten chain": (lambda s, k: _rewrite(s, k - 3), "not the one the checkpoint signed"),
    "a deleted event": (
        lambda s, k: s.execute(sa.text("DELETE FROM audit_events WHERE seq = :q"), {"q": k - 3}),
        "were removed",
    ),
    "reordered events": (lambda s, k: _swap(s, k - 4, k - 3), "does not link"),
    "a truncated log": (
        lambda s, k: s.execute(sa.text("DELETE FROM audit_events WHERE seq >= :q"), {"q": k - 1}),
        "before the checkpoint's event",
    ),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_in_the_database_is_caught_against_the_checkpoint(hub, how: str) -> None:
    checkpoint, public = _signed(hub)
    k = checkpoint["seq"]
    tamper, says = TAMPERING[how]
    with hub.transaction() as s:
        _drop_triggers(s)
        tamper(s, k)
    if how == "a rewritten chain":
        with hub.sessions() as s:
            assert verify(s).ok  # the chain alone is fooled: only the checkpoint is not
    result = _check(hub, checkpoint, public)
    assert not result.ok
    assert says in result.reason, result.reason
    assert result.checked < k


def test_a_forged_or_foreign_checkpoint_is_refused(hub) -> None:
    checkpoint, public = _signed(hub)
    moved = {**checkpoint, "seq": checkpoint["seq"] - 1}  # "the log was shorter"
    with pytest.raises(cp.CheckpointError, match="signature does not verify"):
        _check(hub, moved, public)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(cp.CheckpointError, match="signed by key"):
        _check(hub, checkpoint, other)


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_anyone_verifies_offline_with_the_three_files(hub, tmp_path: Path) -> None:
    """The CLI end to end: the operator publishes; a verifier with no installation checks."""
    data = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        data += ["--store-url", hub.data_dir.store_url]
    _append(hub, 3)
    r = _run(*data, "audit", "checkpoint", "--out", str(tmp_path / "cp.json"))
    assert r.exit_code == 0, r.output
    r = _run(*data, "audit", "public-key")
    assert r.exit_code == 0 and r.output.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "key.pem").write_text(r.output)
    r = _run(*data, "audit", "export", "--out", str(tmp_path / "log.jsonl"))
    assert r.exit_code == 0, r.output
    assert not list(tmp_path.glob(".*partial"))
    r = _run(*data, "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert r.exit_code == 0 and "the store's log matches the checkpoint" in r.output
    # the verifier's side: no data directory, no store
    offline = [
        "--data-dir", str(tmp_path / "nowhere"),
        "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"),
        "--log", str(tmp_path / "log.jsonl"), "--public-key", str(tmp_path / "key.pem"),
    ]  # fmt: skip
    r = _run(*offline)
    assert r.exit_code == 0, r.output
    assert "matches the checkpoint" in r.output
    assert not (tmp_path / "nowhere").exists()
    # one character changed in the export: named, with its line
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    ev = json.loads(lines[1])
    ev["actor"] = "eve"
    lines[1] = json.dumps(ev)
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    r = _run(*offline)
    assert r.exit_code == 1
    assert "is not the log the checkpoint signed: event 2 was altered" in r.output
    assert "Traceback" not in r.output


def test_a_broken_log_is_never_signed(hub) -> None:
    _append(hub, 3)
    with hub.transaction() as s:
        _drop_triggers(s)
        s.execute(sa.text("UPDATE audit_events SET actor = 'eve' WHERE seq = 2"))
    data = ["--data-dir", str(hub.data_dir.root)]
    if hub.data_dir.store_url_override:
        data += ["--store-url", hub.data_dir.store_url]
    r = _run(*data, "audit", "checkpoint")
    assert r.exit_code == 1 and "a broken log is never signed" in r.output
    assert not (hub.data_dir.root / "audit-checkpoints").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "is not JSON"),
        ('{"format": "other"}', "is not an HDH audit checkpoint"),
        ('{"format": "hdh-audit-checkpoint/1", "seq": 3}', "lacks head_hash"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named(text: str, says: str) -> None:
    with pytest.raises(cp.CheckpointError, match=says):
        cp.parse_checkpoint(text, "cp.json")
