"""Signed audit checkpoints: proof, for someone outside the platform, that the log was not
rewritten.

The hash chain (:mod:`jupyterlab_hdh.audit.log`) shows an edit, a removal or a reordering to
whoever recomputes it, but whoever can write the database can also recompute every hash
after an edit, and the chain is consistent again. A **checkpoint** pins the chain's head at
a moment: ``{format, seq, head_hash, time, key_id}`` signed with the installation's Ed25519
key (``cryptography``). Whoever holds a checkpoint, the public key and an export of the log
(JSON Lines, one event per line as stored: :func:`export_lines`) proves offline, with no
access to the platform (:func:`verify_export`), that the log up to the checkpoint is the one
that was signed: every event's hash recomputed from its fields, every link, no gap, no
reordering, and the event at the checkpoint's ``seq`` carrying the signed ``head_hash``.

The signing key is ``<data dir>/keys/audit-signing.pem`` (PKCS#8, mode 0600), made at the
first checkpoint; the public key is published (``hdh audit public-key``). Pure domain code:
no web framework; the store is read through a SQLAlchemy session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit.log import GENESIS_HASH, canonical_json, event_hash, record, verify
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import AuditEvent, AuditHead

FORMAT = "hdh-audit-checkpoint/1"
KEY_FILE = "audit-signing.pem"
#: where ``hdh audit checkpoint`` keeps every checkpoint, under the data directory
KEPT_DIR = "audit-checkpoints"
#: the fields of an exported event, as stored (``details`` is the stored JSON text)
EVENT_FIELDS = ("seq", "ts", "actor", "action", "target", "details", "prev_hash", "hash")
_BODY_FIELDS = ("format", "seq", "head_hash", "time", "key_id")


class CheckpointError(HdhError):
    """A checkpoint, key or export that cannot be used (the message says which and why)."""


# --- keys ------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signing_key(keys_dir: Path, *, create: bool = False) -> tuple[Ed25519PrivateKey, bool]:
    """The installation's signing key (and whether it was made now)."""
    path = keys_dir / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path} is not a private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path} is not an Ed25519 key")
        return key, False
    if not create:
        raise CheckpointError(
            f"no audit signing key in {keys_dir}: `hdh audit checkpoint` makes it"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key, True


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CheckpointError(f"{where} is not a public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{where} is not an Ed25519 public key")
    return key


# --- checkpoints -----------------------------------------------------------------------------


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return canonical_json({k: body[k] for k in _BODY_FIELDS}).encode("utf-8")


def make_checkpoint(session: Session, key: Ed25519PrivateKey, *, actor: str) -> dict[str, Any]:
    """Record ``audit.checkpoint`` and sign the head that includes it, in the session's
    transaction (the caller commits; a rolled-back checkpoint must not be published)."""
    public = key.public_key()
    record(
        session,
        actor=actor,
        action="audit.checkpoint",
        target="audit",
        details={"key_id": key_id(public)},
    )
    head = session.get(AuditHead, 1)
    if head is None:
        raise CheckpointError("the store has no audit head: run `hdh init`")
    body: dict[str, Any] = {
        "format": FORMAT,
        "seq": head.seq,
        "head_hash": head.last_hash,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "key_id": key_id(public),
    }
    body["signature"] = base64.b64encode(key.sign(_signed_bytes(body))).decode()
    return body


def take(session: Session, keys_dir: Path, *, actor: str) -> tuple[dict[str, Any], bool]:
    """Verify the whole log, then sign its head with the installation's key (made on first
    use): the checkpoint, and whether the key was made now. ``CheckpointError`` when the log
    is broken (a broken log is never signed). The caller commits, then :func:`keep`s it."""
    key, made = signing_key(keys_dir, create=True)
    result = verify(session)
    if not result.ok:
        raise CheckpointError(
            f"the audit log is broken at event {result.broken_seq} ({result.reason}):"
            " a broken log is never signed"
        )
    return make_checkpoint(session, key, actor=actor), made


def keep(data_root: Path, checkpoint: dict[str, Any]) -> Path:
    """Keep ``checkpoint`` under ``<data dir>/audit-checkpoints/`` (the register publishes
    the newest); returns its path. Written whole or not at all."""
    folder = data_root / KEPT_DIR
    folder.mkdir(mode=0o755, exist_ok=True)
    path = folder / f"checkpoint-{checkpoint['seq']:09d}.json"
    partial = folder / f".{path.name}.partial"
    partial.write_text(json.dumps(checkpoint, indent=2) + "\n")
    partial.replace(path)
    return path


def latest_kept(data_root: Path) -> Path | None:
    """The kept checkpoint of the highest event number, or None."""
    kept = sorted((data_root / KEPT_DIR).glob("checkpoint-*.json"))
    return kept[-1] if kept else None


def parse_checkpoint(text: str, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{where} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an HDH audit checkpoint ({FORMAT})")
    missing = [k for k in (*_BODY_FIELDS, "signature") if k not in doc]
    if missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)}")
    if not isinstance(doc["seq"], int) or doc["seq"] < 1:
        raise CheckpointError(f"{where}: seq must be a positive integer")
    return doc


def check_signature(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raise :class:`CheckpointError` unless ``public_key`` signed ``checkpoint``."""
    if checkpoint["key_id"] != key_id(public_key):
        raise CheckpointError(
            f"the checkpoint was signed by key {checkpoint['key_id']},"
            f" not by this public key ({key_id(public_key)})"
        )
    try:
        signature = base64.b64decode(str(checkpoint["signature"]), validate=True)
        public_key.verify(signature, _signed_bytes(checkpoint))
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            "the checkpoint's signature does not verify: the checkpoint was altered"
        ) from None


# --- export and verification -----------------------------------------------------------------


def export_lines(session: Session, batch: int = 5000) -> Iterator[str]:
    """The log as JSON Lines, oldest first, each event's fields as stored."""
    last = 0
    while True:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not events:
            return
        for ev in events:
            yield canonical_json({f: getattr(ev, f) for f in EVENT_FIELDS})
            last = ev.seq


@dataclass(frozen=True)
class CheckpointResult:
    """What :func:`verify_export` found. ``line``: the first line at fault (1-based)."""

    ok: bool
    checked: int
    checkpoint_seq: int
    reason: str = ""
    line: int | None = None
    after: int = 0  # events after the checkpoint (their chain checked too)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "checkpoint_seq": self.checkpoint_seq,
            "reason": self.reason,
            "line": self.line,
            "after": self.after,
        }


def _event(line: str, n: int) -> dict[str, Any]:
    try:
        ev = json.loads(line)
    except ValueError:
        raise CheckpointError(f"line {n} is not JSON") from None
    if not isinstance(ev, dict) or any(f not in ev for f in EVENT_FIELDS):
        raise CheckpointError(f"line {n} is not an audit event ({', '.join(EVENT_FIELDS)})")
    if not isinstance(ev["seq"], int) or not all(
        isinstance(ev[f], str) for f in EVENT_FIELDS if f != "seq"
    ):
        raise CheckpointError(f"line {n}: seq is an integer and the other fields text")
    return ev


def verify_export(
    lines: Iterable[str], checkpoint: dict[str, Any], public_key: Ed25519PublicKey
) -> CheckpointResult:
    """Whether ``lines`` (an export) is, up to the checkpoint, the log that was signed.

    Needs nothing of the platform. The signature first; then every event from the first:
    its ``seq`` the next one (a removal or reordering shows here), its ``prev_hash`` the
    previous event's hash, its hash recomputed from its fields; at the checkpoint's ``seq``,
    the signed head hash (a rewrite that recomputed every hash shows here)."""
    check_signature(checkpoint, public_key)
    target, signed_head = int(checkpoint["seq"]), str(checkpoint["head_hash"])
    prev, expected, checked, after = GENESIS_HASH, 1, 0, 0

    def fail(reason: str, n: int) -> CheckpointResult:
        return CheckpointResult(False, checked, target, reason, n, after)

    n = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            return fail(f"line {n} is empty", n)
        try:
            ev = _event(line, n)
        except CheckpointError as exc:
            return fail(str(exc), n)
        if ev["seq"] != expected:
            how = "removed" if ev["seq"] > expected else "reordered or repeated"
            return fail(
                f"line {n} holds event {ev['seq']} where event {expected} belongs: events were"
                f" {how}",
                n,
            )
        if ev["prev_hash"] != prev:
            return fail(f"event {expected} does not link to the event before it", n)
        fields = {f: ev[f] for f in EVENT_FIELDS if f != "hash"}
        if event_hash(**fields) != ev["hash"]:
            return fail(f"event {expected} was altered: its hash does not match its content", n)
        if expected == target and ev["hash"] != signed_head:
            return fail(
                f"event {expected} is not the one the checkpoint signed: the log was rewritten"
                f" up to it",
                n,
            )
        prev = ev["hash"]
        if expected <= target:
            checked += 1
        else:
            after += 1
        expected += 1
    if expected <= target:
        return fail(
            f"the log ends at event {expected - 1}, before the checkpoint's event {target}:"
            " events were removed",
            n + 1,
        )
    return CheckpointResult(True, checked, target, after=after)
