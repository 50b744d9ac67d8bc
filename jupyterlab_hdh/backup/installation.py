"""A whole installation backed up, and restored into an empty one, in open formats.

Owns what a backup of a data directory and its store holds and how it comes back
(``hdh backup --out DIR``, ``hdh restore DIR``). A backup folder::

    manifest.json            every file's size and SHA-256, written last (INCOMPLETE before),
                             signed with the installation's audit key (sealed in keys/)
    store/                   the store: one JSON Lines file per table + schema.json
                             (store_dump; audit_events.jsonl is the audit log with its chain)
    audit/checkpoint.json    a signed checkpoint taken at the backup, and the public key
    audit/public-key.pem     that verifies it (``hdh audit verify --checkpoint``, offline)
    catalogue.jsonld         the catalogue as DCAT-AP JSON-LD
    keys/*.sealed            the keys, sealed with the operator's passphrase (never in clear)
    secrets/*.sealed         other secret files (smtp.toml, demo credentials), sealed too
    files/                   datasets/ (Parquet versions, linked tables), egress/blobs/
                             (the airlock's snapshots), outbox/ (released files),
                             audit-checkpoints/, and the settings (*.toml)
    workspaces/<slug>.tar    each project's workspace (and archive-markers.tar), as tar
    review-workspaces/<user>.tar

**Consistency while it runs.** The store is read in one snapshot (the backup's first
step after its checkpoint); the files are copied after it. Every file the store names is
immutable once named (dataset versions, the airlock's content-addressed snapshots,
released files), so the backup holds all of them; a workspace is copied as it is at that
moment. No stop.

**Restore** goes into an empty installation (a new data directory, an empty store: SQLite
or PostgreSQL, so it is also the way to move from one to the other). Everything is checked
before anything is written: the manifest (naming any file missing, added or altered), the
passphrase, the store's revision, the audit log against the signed checkpoint, every
dataset version's files against the checksums the store recorded. Everything is assembled in
a sibling folder marked ``RESTORING``, the store is loaded in one transaction and the audit
chain verified end to end on it, and the marker removed. With the store a SQLite file of the
data directory (the default), all of that happens beside the target and one rename puts it
in place: a restore killed at any point leaves the target empty. With the store elsewhere
(PostgreSQL), the files are moved in place marked first, then the store is loaded: a
restore killed in between leaves the target marked (no command opens it) until ``hdh
restore`` is run again and completes it.

Not backed up: JupyterHub's own state (its database and cookie secrets are made again at
the next start), the staging and incoming folders, sandbox runtime folders.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import SQLAlchemyError

from jupyterlab_hdh import __version__
from jupyterlab_hdh.audit import checkpoint as cp
from jupyterlab_hdh.audit import record
from jupyterlab_hdh.audit import verify as verify_chain
from jupyterlab_hdh.backup import manifest, sealed, store_dump
from jupyterlab_hdh.backup.errors import BackupError
from jupyterlab_hdh.context import KEY_FINGERPRINT, Installation
from jupyterlab_hdh.data.pseudonymise import load_keys
from jupyterlab_hdh.paths import RESTORE_MARKER, DataDir
from jupyterlab_hdh.store import db
from jupyterlab_hdh.store.models import AuditHead, Base, Setting
from jupyterlab_hdh.workspace_files import open_entry

Say = Callable[[str], None]

#: folders of the data directory copied file by file (each file immutable once the store
#: names it), and settings files copied as they are
FILE_TREES = ("datasets", "egress/blobs", "outbox", cp.KEPT_DIR)
SETTINGS = ("governance.toml", "register.toml", "airlock.toml", "guard.toml")
#: files of the data directory that hold secrets: sealed like the keys
SECRETS = ("smtp.toml", "demo-credentials.json")
ARCHIVE_MARKERS = ".archive"  # governance.retention.ARCHIVE_DIR, under workspaces/
ARCHIVE_TAR = "archive-markers.tar"


class RestoreError(BackupError):
    """A restore that cannot be done as asked; nothing was changed."""


@dataclass
class BackupSummary:
    folder: Path
    files: int
    bytes: int
    rows: int
    checkpoint_seq: int | None
    skipped: list[str] = field(default_factory=list)


def _quiet(_msg: str) -> None:
    return None


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _table_progress(say: Say) -> Callable[[str, int, bool], None]:
    """Each table with rows, once done (a store's tens of empty ones are not named)."""

    def progress(table: str, rows: int, done: bool) -> None:
        if done and rows:
            say(f"  {table}: {_plural(rows, 'row')}")

    return progress


def _copy_tree(src: Path, dest: Path, skipped: list[str]) -> int:
    """Copy the regular files (with their modes: read-only ones stay so) and folders under
    ``src`` (links and special files are named in ``skipped``, never followed); the number
    of files."""
    count = 0
    for top, dirnames, filenames in os.walk(src, followlinks=False):
        rel = Path(top).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in (*dirnames, *filenames):
            path = Path(top) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                skipped.append(str(path))
        dirnames[:] = [d for d in dirnames if not (Path(top) / d).is_symlink()]
        for name in filenames:
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                shutil.copy2(path, dest / rel / name)
            except FileNotFoundError:  # removed meanwhile (a file the store does not name)
                continue
            count += 1
    return count


def _tar_folder(src: Path, dest: Path) -> None:
    """``src`` as a tar archive (PAX), entry by entry: modes and owners kept, links kept as
    links (never followed), what vanishes meanwhile (a running sandbox) left out.

    A file is read through its own descriptor (``open_entry``: never through a link, never
    waiting on a FIFO) and described from it: a sandbox swapping a file for a link to a host
    file between the look and the read gets nothing of the host into the backup."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=src.name, recursive=False)
        for top, dirnames, filenames in os.walk(src, followlinks=False):
            for name in (*sorted(dirnames), *sorted(filenames)):
                path = Path(top) / name
                arcname = str(path.relative_to(src.parent))
                try:
                    info = tar.gettarinfo(str(path), arcname)
                except FileNotFoundError:
                    continue
                if info is None:  # a socket
                    continue
                if not info.isreg():
                    tar.addfile(info)  # a folder, a link (as a link), a FIFO
                    continue
                fd = open_entry(path, None)
                if fd is None:
                    continue
                with os.fdopen(fd, "rb") as fh:
                    info = tar.gettarinfo(arcname=arcname, fileobj=fh)
                    if info.isreg():
                        tar.addfile(info, fh)


def backup(
    inst: Installation,
    out: Path,
    passphrase: str,
    *,
    actor: str,
    base_url: str = "http://127.0.0.1:8001",
    say: Say = _quiet,
) -> BackupSummary:
    """Back ``inst`` up into ``out`` (new or empty); see the module's docstring."""
    if not passphrase:
        raise sealed.SealedError("an empty passphrase is refused: the keys would be readable")
    data = inst.data_dir
    out = manifest.begin(out)
    with inst.transaction() as s:  # recorded before the snapshot: the backup holds it
        record(s, actor=actor, action="installation.backup", target="installation",
               details={"to": str(out.absolute()), "hdh": __version__})  # fmt: skip
    taken: dict[str, Any] | None
    try:
        with inst.transaction() as s:
            taken, _made = cp.take(s, data.keys, actor=actor)
        cp.keep(data.root, taken)
        say(f"audit: signed a checkpoint of event {taken['seq']}")
    except cp.CheckpointError as exc:  # a broken log is backed up, never signed
        say(f"audit: NOT signed: {exc}")
        kept = cp.latest_kept(data.root)
        taken = json.loads(kept.read_text()) if kept is not None else None

    say("store: one snapshot, table by table")
    summary = store_dump.dump(inst.engine, out / "store", progress=_table_progress(say))
    say(f"store: {summary.rows} rows in {len(summary.tables)} tables")

    audit = out / "audit"
    audit.mkdir(mode=0o700)
    key, _ = cp.signing_key(data.keys, create=False)
    (audit / "public-key.pem").write_text(cp.public_key_pem(key.public_key()))
    if taken is not None:
        (audit / "checkpoint.json").write_text(json.dumps(taken, indent=2) + "\n")

    from jupyterlab_hdh.catalogue.manager import Catalogue  # pyarrow: a second; not for a restore

    with inst.sessions() as s:
        doc = Catalogue().dcat(s, base_url)
    (out / "catalogue.jsonld").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")

    say("keys and secrets: sealed with the passphrase")
    sealed.seal_folder(data.keys, out / "keys", passphrase)
    for name in SECRETS:
        if (data.root / name).is_file():
            (out / "secrets").mkdir(mode=0o700, exist_ok=True)
            sealed.seal_file(data.root / name, out / "secrets" / f"{name}{sealed.SUFFIX}",
                             passphrase)  # fmt: skip

    skipped: list[str] = []
    files = out / "files"
    for tree in FILE_TREES:
        if (data.root / tree).is_dir():
            n = _copy_tree(data.root / tree, files / tree, skipped)
            say(f"files: {tree}/ ({_plural(n, 'file')})")
    for name in SETTINGS:
        if (data.root / name).is_file():
            files.mkdir(exist_ok=True, mode=0o700)
            shutil.copyfile(data.root / name, files / name)

    for where, folder in (("workspaces", data.workspaces), ("review-workspaces",
                                                           data.review_workspaces)):  # fmt: skip
        if not folder.is_dir():
            continue
        entries = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        (out / where).mkdir(mode=0o700)
        for entry in entries:
            name = ARCHIVE_TAR if entry.name == ARCHIVE_MARKERS else f"{entry.name}.tar"
            _tar_folder(entry, out / where / name)
        say(f"{where}: {len(entries)} as tar archives")

    say("manifest: every file's SHA-256, signed with the installation's audit key")
    done = manifest.finish(
        out,
        extra={
            "hdh": __version__,
            "store": {
                "revision": summary.revision,
                "dialect": inst.engine.dialect.name,
                "rows": summary.rows,
            },  # fmt: skip
            "audit_checkpoint_seq": taken["seq"] if taken else None,
            "skipped": skipped,
        },
        sign=lambda digest: _sign(key, digest),
    )
    return BackupSummary(
        out, len(done.files), done.size, summary.rows, taken["seq"] if taken else None, skipped
    )


def _sign(key: Ed25519PrivateKey, digest: str) -> dict[str, Any]:
    return {
        "key_id": cp.key_id(key.public_key()),
        "ed25519": base64.b64encode(key.sign(digest.encode())).decode(),
    }


# --- restore -----------------------------------------------------------------------------


def _check_signature(folder: Path, done: manifest.Manifest, key_pem: bytes | None) -> None:
    """The manifest was signed by the key sealed in the backup (which only the passphrase
    unseals): whoever rewrote files and manifest together without it is caught here."""
    if key_pem is None or done.signature is None:
        raise RestoreError(
            f"the backup in {folder} has no signed manifest or no audit key: it was not made"
            " by `hdh backup`, or was altered"
        )
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        signature = base64.b64decode(str(done.signature.get("ed25519", "")), validate=True)
        key.public_key().verify(signature, done.digest.encode())
    except (ValueError, AssertionError, InvalidSignature, binascii.Error):
        raise RestoreError(
            f"the manifest of the backup in {folder} is not signed by the audit key sealed in"
            " it: it was rewritten"
        ) from None


def _audit_lines(folder: Path) -> Iterator[str]:
    with (folder / "store" / "audit_events.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            yield line.rstrip("\n")


def _check_audit(src: Path) -> str:
    """The dumped log against the backup's checkpoint: what it proves (or RestoreError)."""
    ck = src / "audit" / "checkpoint.json"
    if not ck.is_file():
        return "no signed checkpoint in the backup: the chain alone is checked"
    checkpoint = cp.parse_checkpoint(ck.read_text(), str(ck))
    public = cp.load_public_key((src / "audit" / "public-key.pem").read_bytes(), "the backup")
    result = cp.verify_export(_audit_lines(src), checkpoint, public)
    if not result.ok:
        raise RestoreError(
            f"the backup's audit log is not the one its checkpoint signed: {result.reason}"
        )
    return f"the audit log matches the checkpoint of event {result.checkpoint_seq}"


def _dataset_rows(src: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(dataset name, version number, manifest) of every dataset version in the dump."""
    schema = store_dump.read_schema(src / "store")
    entries = {t["name"]: t for t in schema["tables"]}
    tables = Base.metadata.tables
    names = {
        row["id"]: row["name"]
        for row in store_dump.read_rows(src / "store", tables["datasets"], entries["datasets"])
    }
    for row in store_dump.read_rows(
        src / "store", tables["dataset_versions"], entries["dataset_versions"]
    ):
        yield names[row["dataset_id"]], int(row["number"]), dict(row["manifest"])


def _check_datasets(src: Path, root: Path) -> int:
    """Every dataset version's files (in the assembled ``root``) against the checksums the
    store recorded; the number of files checked."""
    n = 0
    for name, number, man in _dataset_rows(src):
        folder = root / "datasets" / name / f"v{number}"
        for table, entry in man.get("tables", {}).items():
            path = folder / entry["file"]
            if not path.is_file():
                raise RestoreError(f"dataset {name} v{number}: table {table} ({path}) is missing")
            if manifest.file_digest(path)[1] != entry["sha256"]:
                raise RestoreError(
                    f"dataset {name} v{number}: table {table} does not match its recorded SHA-256"
                )
            n += 1
    return n


def _versions_read_only(datasets: Path) -> None:
    """Each dataset version's folder (and each permit's linked tables) read-only again, as
    ingestion leaves them (a backup's folders are the operator's to delete: writable)."""
    if not datasets.is_dir():
        return
    for dataset in datasets.iterdir():
        for version in dataset.iterdir() if dataset.is_dir() else ():
            if version.is_dir() and not version.is_symlink():
                version.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)


def _untar(archive: Path, dest: Path) -> None:
    """Extract a workspace's archive into ``dest``: files and folders first (tarfile's
    ``tar`` filter: nothing outside ``dest``, no device), then its symbolic links as they
    were, whatever they point to (a workspace may link to ``/data/...``): made last, so
    that no entry is ever written through one."""
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        links = [m for m in members if m.issym()]
        tar.extractall(
            dest,
            members=[m for m in members if not m.issym()],
            filter="tar",
            numeric_owner=os.geteuid() == 0,
        )
    root = dest.resolve()
    for link in links:
        path = dest / link.name
        parent = path.parent.resolve()
        if not parent.is_relative_to(root) or path.name in ("", ".", ".."):
            raise RestoreError(f"{archive.name}: the link {link.name} is outside the workspace")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # inside, just checked
        try:
            os.symlink(link.linkname, path)
        except FileExistsError:
            raise RestoreError(f"{archive.name}: {link.name} is in it twice") from None
        if os.geteuid() == 0:
            os.lchown(path, link.uid, link.gid)


def _assemble(src: Path, partial: Path, passphrase: str, say: Say) -> None:
    """The target's data directory, in ``partial`` (marked RESTORING first)."""
    partial.mkdir(mode=0o700)
    (partial / RESTORE_MARKER).write_text(
        f"An HDH restore from {src} is under way or was interrupted: run `hdh restore` again.\n"
    )
    target = DataDir(partial)
    target.create()
    sealed.unseal_folder(src / "keys", target.keys, passphrase)
    if (src / "secrets").is_dir():
        sealed.unseal_folder(src / "secrets", partial, passphrase)
    files = src / "files"
    for tree in FILE_TREES:
        if (files / tree).is_dir():
            _copy_tree(files / tree, partial / tree, [])
    for name in SETTINGS:
        if (files / name).is_file():
            shutil.copyfile(files / name, partial / name)
    say(f"files: dataset versions checked ({_check_datasets(src, partial)} tables)")
    _versions_read_only(partial / "datasets")
    for where in ("workspaces", "review-workspaces"):
        if not (src / where).is_dir():
            continue
        (partial / where).mkdir(mode=0o700, exist_ok=True)
        for archive in sorted((src / where).glob("*.tar")):
            _untar(archive, partial / where)
        say(f"{where}: restored")


def _store_state(engine: sa.Engine) -> tuple[int, str | None]:
    """(rows in every table, the audit head's hash) of a store (0, None when it has no
    schema yet)."""
    try:
        if db.current_revision(engine) is None:
            return 0, None
        with engine.connect() as conn:
            rows = sum(
                int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in Base.metadata.sorted_tables
            )
            head = conn.execute(sa.select(AuditHead.last_hash)).scalar()
    except SQLAlchemyError as exc:
        raise db.unreachable(engine, exc) from exc
    return rows, head


def _dumped_state(src: Path) -> tuple[int, str | None]:
    schema = store_dump.read_schema(src / "store")
    last = None
    for line in _audit_lines(src):
        if line.strip():
            last = json.loads(line)["hash"]
    return sum(int(t["rows"]) for t in schema["tables"]), last


def restore(
    src: Path, target: DataDir, passphrase: str, *, actor: str, say: Say = _quiet
) -> Installation:
    """Restore the backup in ``src`` into ``target`` (an empty data directory and store, or
    one a killed restore left marked); the restored installation, opened."""
    src = Path(src)
    root = target.root
    if root.exists() and not (root / RESTORE_MARKER).exists() and any(root.iterdir()):
        _empty_target(root)  # refused before anything is read
    say("manifest: checking every file")
    done = manifest.verify(src)
    schema = store_dump.read_schema(src / "store")
    head = db.head_revision()
    if schema["revision"] != head:
        raise store_dump.RevisionMismatch(
            f"the backup's store is at revision {schema['revision']}, this HDH at {head}:"
            " restore it with the HDH release that made it"
        )
    # the passphrase, before anything is written (every sealed file, in memory)
    clear = {
        f"{folder}/{f.name}": sealed.unseal(f.read_bytes(), passphrase)
        for folder in ("keys", "secrets")
        if (src / folder).is_dir()
        for f in sorted((src / folder).iterdir())
    }
    _check_signature(src, done, clear.get(f"keys/{cp.KEY_FILE}{sealed.SUFFIX}"))
    say("manifest: signed by the installation's audit key")
    say(f"audit: {_check_audit(src)}")
    if target.store_url_override is None:
        _restore_with_its_store(src, target, passphrase, actor, say)
    else:
        engine = db.make_engine(target.store_url)
        try:
            _restore_beside_its_store(src, target, engine, passphrase, actor, say)
        finally:
            engine.dispose()
    from jupyterlab_hdh.context import open_installation

    return open_installation(target)


def _load(src: Path, engine: sa.Engine, say: Say) -> None:
    say("store: loading every table in one transaction")
    loaded = store_dump.load(engine, src / "store", progress=_table_progress(say))
    say(f"store: {loaded.rows} rows in {len(loaded.tables)} tables")


def _empty_target(root: Path) -> None:
    if root.exists() and any(root.iterdir()):
        raise RestoreError(
            f"{root} is not empty: a backup is restored only into a new or empty data directory"
        )


def _partial(root: Path) -> Path:
    """Where the target is assembled, beside it (same file system: one rename moves it)."""
    partial = root.parent / f".{root.name}.restoring"
    if partial.exists():
        shutil.rmtree(partial)  # left by a restore killed before its rename
    root.parent.mkdir(parents=True, exist_ok=True)
    return partial


def _restore_with_its_store(
    src: Path, target: DataDir, passphrase: str, actor: str, say: Say
) -> None:
    """The store is a SQLite file of the data directory: everything is made beside the
    target, and one rename puts it in place. Killed at any point, the target stays empty."""
    _empty_target(target.root)
    partial = _partial(target.root)
    _assemble(src, partial, passphrase, say)
    made = DataDir(partial)
    engine = db.make_engine(made.store_url)
    try:
        _load(src, engine, say)
        _finish(src, made, engine, actor, say)
    finally:
        engine.dispose()
    os.replace(partial, target.root)  # onto nothing, or an empty folder


def _restore_beside_its_store(
    src: Path, target: DataDir, engine: sa.Engine, passphrase: str, actor: str, say: Say
) -> None:
    """The store is elsewhere (PostgreSQL): the files are put in place marked RESTORING,
    then the store is loaded in one transaction, then the marker goes. Killed in between,
    the target is marked (nothing opens it) and running the restore again completes it."""
    root = target.root
    resuming = (root / RESTORE_MARKER).is_file()
    rows, store_head = _store_state(engine)
    store_done = rows > 0 and (rows, store_head) == _dumped_state(src)
    if rows > 0 and not (resuming and store_done):
        raise store_dump.StoreNotEmpty(
            f"the store at {engine.url!r} is not empty: a backup is restored only into a new,"
            " empty store"
        )
    if resuming:
        say(f"{root} holds an interrupted restore: finishing it")
    else:
        _empty_target(root)
    if not store_done:
        if resuming:  # the files may be half there: assembled again
            shutil.rmtree(root)
        partial = _partial(root)
        _assemble(src, partial, passphrase, say)
        os.replace(partial, root)
        _load(src, engine, say)
    _finish(src, target, engine, actor, say)


def _finish(src: Path, target: DataDir, engine: sa.Engine, actor: str, say: Say) -> None:
    """Verify the restored store (the chain end to end, the keys), record the restore, and
    take the marker away."""
    inst = Installation(target, engine)
    with inst.sessions() as s:
        chain = verify_chain(s)
        if not chain.ok:
            raise RestoreError(
                f"the restored audit log is broken at event {chain.broken_seq}: {chain.reason}"
            )
        expected = s.get(Setting, KEY_FINGERPRINT)
    keys = load_keys(target.keys)
    if expected is not None and expected.value != keys.fingerprint():
        raise RestoreError("the restored keys are not the keys the restored store was made with")
    say(f"audit: the restored chain verifies end to end ({chain.checked} events)")
    with inst.transaction() as s:
        record(s, actor=actor, action="installation.restore", target="installation",
               details={"from": str(src.absolute()), "hdh": __version__,
                        "at": datetime.now(UTC).isoformat(timespec="seconds")})  # fmt: skip
    (target.root / RESTORE_MARKER).unlink()
