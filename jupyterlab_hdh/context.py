"""One opened HDH installation: data directory, store and keys, shared by the CLI and the API.

Owns ``init`` (folders, keys, schema, first audit event) and opening an
existing installation with the checks that must hold before any command runs:
the store is at the expected schema revision and the key files are the ones
the store was created with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.data.pseudonymise import KeyFileError, KeyPair, create_keys, load_keys
from jupyterlab_hdh.paths import RESTORE_MARKER, DataDir
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import Setting

KEY_FINGERPRINT = "key_fingerprint"


class KeyMismatchError(KeyFileError):
    """The key files are valid but are not the keys this store was created with."""


@dataclass
class Installation:
    """An opened installation: data directory, store and keys.

    Create with :func:`open_installation` or :func:`init_installation`.
    """

    data_dir: DataDir
    engine: Engine = field(repr=False)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    def transaction(self):  # type: ignore[no-untyped-def]
        return db.transaction(self.sessions)

    @cached_property
    def keys(self) -> KeyPair:
        """The pseudonymisation keys, checked against the fingerprint the store recorded."""
        keys = load_keys(self.data_dir.keys)
        with self.sessions() as s:
            expected = s.get(Setting, KEY_FINGERPRINT)
        if expected is not None and expected.value != keys.fingerprint():
            raise KeyMismatchError(
                f"the key files in {self.data_dir.keys} (fingerprint {keys.fingerprint()}) are not"
                f" the keys this store was created with (fingerprint {expected.value}):"
                " restore the original key files; pseudonyms made with other keys would not match"
            )
        return keys

    def close(self) -> None:
        self.engine.dispose()


def _refuse_restoring(data_dir: DataDir) -> None:
    if (data_dir.root / RESTORE_MARKER).exists():
        raise db.StoreError(
            f"{data_dir.root} is being restored, or a restore into it was interrupted: run"
            " `hdh restore` again to complete it"
        )


def open_installation(data_dir: DataDir) -> Installation:
    """Open an initialised installation (raises StoreError if it is not)."""
    _refuse_restoring(data_dir)
    if data_dir.store_url_override is None and not (data_dir.root / "hdh.sqlite").exists():
        raise db.StoreError(
            f"no HDH installation in {data_dir.root}: run `hdh init` (or `hdh up`) first"
        )
    engine = db.make_engine(data_dir.store_url)
    try:
        db.check_schema(engine)
    except db.StoreError:
        engine.dispose()
        raise
    return Installation(data_dir, engine)


def init_installation(
    data_dir: DataDir, *, actor: str = "system"
) -> tuple[Installation, list[str]]:
    """Create or upgrade an installation; returns it and what was done. Idempotent."""
    done: list[str] = []
    _refuse_restoring(data_dir)
    data_dir.create()
    if not (data_dir.keys / "foin1.key").exists() and not (data_dir.keys / "foin2.key").exists():
        create_keys(data_dir.keys)
        done.append(f"created pseudonymisation keys in {data_dir.keys} (mode 0600)")
    engine = db.make_engine(data_dir.store_url)
    before = None
    try:
        before = db.current_revision(engine)
    except Exception as exc:
        engine.dispose()
        raise db.unreachable(engine, exc) from exc
    db.upgrade(engine)
    if before != db.head_revision(engine):
        done.append(
            f"store schema at revision {db.head_revision(engine)} ({engine.url.drivername})"
        )
    hub = Installation(data_dir, engine)
    keys = load_keys(data_dir.keys)
    with hub.transaction() as s:
        setting = s.get(Setting, KEY_FINGERPRINT)
        if setting is None:
            s.add(Setting(key=KEY_FINGERPRINT, value=keys.fingerprint()))
            record(
                s,
                actor=actor,
                action="hub.init",
                target=f"datadir:{data_dir.root}",
                details={"key_fingerprint": keys.fingerprint()},
            )
            done.append("recorded the key fingerprint in the store")
    hub.keys  # noqa: B018 - raises KeyMismatchError if the keys changed
    return hub, done
