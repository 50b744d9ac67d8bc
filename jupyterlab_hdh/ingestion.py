"""Ingestion: from a raw extract to an immutable, versioned, catalogued Parquet dataset.

Owns the whole pipeline and its all-or-nothing guarantee:

1. check the dataset name and the extract's file list;
2. refuse an extract already ingested (same content digest), or one without
   persons (an empty ``IR_BEN_R``, as an interrupted export leaves);
3. per table: read and validate against its Table Schema (raw profile for
   raw extracts), pseudonymise the identifier columns (double HMAC, distinct
   values hashed once), drop direct identifiers, remove opted-out persons and
   their dependent rows (DCIR details by the 9 keys, PMSI parts by stay);
4. compute the data-quality report and the catalogue record;
5. write everything under ``staging/``, then move it into
   ``datasets/<name>/v<N>`` and record the version and its audit event in one
   transaction. Any failure before the commit removes what was written;
   :func:`recover` removes leftovers of a crash. Every failure, however early,
   is audited (``dataset.ingest_failed``).

``reapply_optout`` issues new versions of current datasets without the persons
who objected since they were made.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import canonical_json, record
from jupyterlab_hdh.data import optout, snds_schemas
from jupyterlab_hdh.data.pseudonymise import KeyPair, pseudonymise, rekey
from jupyterlab_hdh.data.quality import quality_report
from jupyterlab_hdh.data.snds_schemas import DCIR_KEYS, STAY_KEYS
from jupyterlab_hdh.data.validate import ValidationError, read_table
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.store.models import Dataset, DatasetVersion

Progress = Callable[[str], None]

DATASET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: Columns that identify the person a row is about (not ASS_NIR_ANO: that is the
#: policy-holder, who may be someone else).
PERSON_COLUMNS = ("BEN_IDT_ANO", "BEN_NIR_ANO", "BEN_NIR_PSA", "NIR_ANO_17", "DCD_IDT_ENC")
SOURCE_SUFFIXES = (".parquet", ".csv")
#: PMSI placeholders for a failed patient linkage: not identifiers, kept as they are so
#: that the standard cleaning filters (``NIR_ANO_17 NOT IN (...)``) still apply. Hashing
#: them would merge every unlinked stay into one fake patient.
LINKAGE_PLACEHOLDERS = ("xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXS")
EXTRACT_MANIFEST = "extract.json"
#: Not a dataset name: ``/data/linkage`` holds a permit's linked tables (``linkage``).
RESERVED_DATASET_NAME = "linkage"


class IngestError(HdhError):
    """Ingestion refused or failed; nothing was published. The message says why."""

    http_status = 422


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it is a safe dataset slug, else raise IngestError saying what is wrong."""
    if not name:
        raise IngestError("the dataset name is empty")
    if "\x00" in name:
        raise IngestError("the dataset name contains a NUL character")
    if "/" in name or "\\" in name or ".." in name:
        raise IngestError(f"the dataset name {name!r} contains a path separator or '..'")
    if any(ord(c) > 127 for c in name):
        nfkc = unicodedata.normalize("NFKC", name)
        raise IngestError(
            f"the dataset name {name!r} contains non-ASCII characters"
            f"{' (it normalises to ' + repr(nfkc) + ')' if nfkc != name else ''}:"
            " use lowercase ASCII letters, digits, '-' and '_'"
        )
    if not DATASET_NAME_RE.match(name):
        raise IngestError(
            f"invalid dataset name {name!r}: use 1-63 lowercase ASCII letters, digits, '-' or '_',"
            " starting with a letter or digit"
        )
    if name == RESERVED_DATASET_NAME:
        raise IngestError(
            f"the dataset name {name!r} is reserved: sandboxes mount their permit's linked"
            " cohort tables at /data/linkage"
        )
    return name


@dataclass
class DatasetDescription:
    """What the data controller says about a dataset (catalogue fields not computed from data)."""

    title: str | None = None
    description: str | None = None
    controller: str = "HDH data controller"
    contact: str = "dpo@hdh.example"
    population: str | None = None
    legal_basis: str = (
        "GDPR art. 6(1)(e) and 9(2)(j); French public health code art. L1461-1 to L1461-7 (SNDS)"
    )
    synthetic: bool | None = None
    keywords: list[str] = field(default_factory=list)


@dataclass
class Extract:
    """The files of a source extract, by table."""

    root: Path
    files: dict[str, Path]
    identifiers: str  # "raw" | "pseudonymised"
    manifest: dict[str, Any]


def open_extract(source: Path, identifiers: str = "auto") -> Extract:
    """List and check an extract folder: one ``<TABLE>.parquet|csv`` per known table."""
    if not source.exists():
        raise IngestError(f"source {source} does not exist")
    if not source.is_dir():
        raise IngestError(f"source {source} is not a folder of table files")
    files: dict[str, Path] = {}
    manifest: dict[str, Any] = {}
    for path in sorted(source.iterdir()):
        if path.name == EXTRACT_MANIFEST:
            try:
                manifest = json.loads(path.read_text("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise IngestError(f"{path}: not valid JSON ({exc})") from None
            continue
        if path.name.startswith("."):
            continue
        if path.is_symlink() or not path.is_file():
            raise IngestError(f"{path}: not a regular file (symlinks and folders are refused)")
        if path.suffix.lower() not in SOURCE_SUFFIXES:
            raise IngestError(f"{path}: unsupported file type (expected .parquet or .csv)")
        table = path.stem
        if not snds_schemas.is_known_table(table):
            raise IngestError(f"{path}: {table!r} is not a known table (no Table Schema for it)")
        if table in files:
            raise IngestError(f"{path}: table {table} is given twice ({files[table].name})")
        files[table] = path
    if "IR_BEN_R" not in files:
        raise IngestError(f"{source}: the extract has no IR_BEN_R (beneficiaries) table")
    if identifiers == "auto":
        identifiers = manifest.get("identifiers", "raw")
    if identifiers not in ("raw", "pseudonymised"):
        raise IngestError(f"unknown identifiers mode {identifiers!r} (raw or pseudonymised)")
    return Extract(source, files, identifiers, manifest)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_digest(extract: Extract) -> str:
    parts = {t: _file_sha256(p) for t, p in sorted(extract.files.items())}
    parts["identifiers"] = extract.identifiers
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def _processing_order(tables: Iterable[str]) -> list[str]:
    """IR_BEN_R first, then parents (ER_PRS_F, T_MCOyyC) before their detail tables."""

    def rank(name: str) -> tuple[int, str]:
        template = snds_schemas.resolve(name).template
        if name == "IR_BEN_R":
            return (0, name)
        if template in ("ER_PRS_F", "T_MCOaaC"):
            return (1, name)
        return (2, name)

    return sorted(tables, key=rank)


def _parent(name: str) -> tuple[str, tuple[str, ...]] | None:
    template = snds_schemas.resolve(name).template
    if template in ("ER_PHA_F", "ER_CAM_F"):
        return "ER_PRS_F", DCIR_KEYS
    m = snds_schemas.PMSI_TABLE_RE.match(name)
    if m and m["part"] in "ABD":
        return f"T_MCO{m['yy']}C", STAY_KEYS
    return None


def _composite(table: pa.Table, keys: tuple[str, ...]) -> pa.Array:
    cols = [pc.cast(table[k], pa.string()) for k in keys]
    cols = [pc.fill_null(c, "\x00") for c in cols]
    return pc.binary_join_element_wise(*cols, "\x1f")


class OptOutFilter:
    """Removes opted-out persons and the rows that depend on their removed rows."""

    def __init__(self, optout_pseudonyms: set[str]) -> None:
        self.optout = optout_pseudonyms
        self.excluded: pa.Array = pa.array(sorted(optout_pseudonyms), pa.string())
        self.removed_keys: dict[str, pa.Array] = {}
        self.removed_rows: dict[str, int] = {}
        self.persons_removed = 0

    def learn_persons(self, beneficiaries: pa.Table) -> None:
        """From IR_BEN_R: every pseudonym of every opted-out person (one person, several PSA)."""
        if not self.optout:
            return
        value_set = pa.array(sorted(self.optout), pa.string())
        mask = None
        for col in ("BEN_IDT_ANO", "BEN_NIR_ANO"):
            if col in beneficiaries.column_names:
                m = pc.fill_null(pc.is_in(beneficiaries[col], value_set=value_set), False)
                mask = m if mask is None else pc.or_(mask, m)
        if mask is None:
            return
        matched = beneficiaries.filter(mask)
        ids = set(self.optout)
        for col in ("BEN_IDT_ANO", "BEN_NIR_ANO", "BEN_NIR_PSA"):
            if col in matched.column_names:
                ids.update(v for v in matched[col].to_pylist() if v)
        self.persons_removed = len(set(matched["BEN_IDT_ANO"].to_pylist()))
        self.excluded = pa.array(sorted(ids), pa.string())

    def apply(self, name: str, table: pa.Table) -> pa.Table:
        if len(self.excluded) == 0:
            return table
        drop = pa.array([False] * table.num_rows, pa.bool_())
        for col in PERSON_COLUMNS:
            if col in table.column_names and pa.types.is_string(table[col].type):
                hit = pc.fill_null(pc.is_in(table[col], value_set=self.excluded), False)
                drop = pc.or_(drop, hit)
        parent = _parent(name)
        if parent is not None and parent[0] in self.removed_keys:
            parent_name, keys = parent
            if all(k in table.column_names for k in keys):
                hit = pc.is_in(_composite(table, keys), value_set=self.removed_keys[parent_name])
                drop = pc.or_(drop, pc.fill_null(hit, False))
        removed = pc.sum(pc.cast(drop, pa.int64())).as_py() or 0
        template = snds_schemas.resolve(name).template
        if template in ("ER_PRS_F", "T_MCOaaC"):
            keys = DCIR_KEYS if template == "ER_PRS_F" else STAY_KEYS
            if all(k in table.column_names for k in keys):
                self.removed_keys[name] = _composite(table.filter(drop), keys)
        self.removed_rows[name] = removed
        return table.filter(pc.invert(drop)) if removed else table


def _pseudonymise_table(name: str, table: pa.Table, keys: KeyPair, identifiers: str) -> pa.Table:
    for col in snds_schemas.identifier_fields(name):
        if col in table.column_names:
            values = table[col]
            new = pseudonymise(values, keys) if identifiers == "raw" else rekey(values, keys)
            placeholder = pc.is_in(values, value_set=pa.array(LINKAGE_PLACEHOLDERS))
            if pc.any(placeholder).as_py():
                new = pc.if_else(placeholder, pc.cast(values, pa.string()), new)
            table = table.set_column(table.column_names.index(col), col, new)
    raw_only = [c for c in snds_schemas.raw_only_fields(name) if c in table.column_names]
    if raw_only:
        table = table.drop_columns(raw_only)
    target = snds_schemas.arrow_schema(snds_schemas.load_schema(name))
    return table.select(target.names).cast(target)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _make_readonly(folder: Path) -> None:
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)


def remove_tree(folder: Path) -> None:
    """Remove a folder even if it was made read-only."""
    if not folder.exists():
        return
    for root, dirs, _files in os.walk(folder):
        os.chmod(root, stat.S_IRWXU)
        for d in dirs:
            os.chmod(os.path.join(root, d), stat.S_IRWXU)
    shutil.rmtree(folder)


@dataclass
class Built:
    """A version fully written under staging, not yet published."""

    folder: Path
    manifest: dict[str, Any]
    content_sha256: str
    stats: dict[str, Any]
    quality: dict[str, Any]
    removed: dict[str, int]
    persons_removed: int


def _table_stats(name: str, table: pa.Table, stats: dict[str, Any]) -> None:
    if name == "IR_BEN_R" and "BEN_IDT_ANO" in table.column_names:
        stats["individuals"] = pc.count_distinct(table["BEN_IDT_ANO"]).as_py()
    for col in ("EXE_SOI_DTD", "EXE_SOI_DTF"):
        if col in table.column_names and pa.types.is_date(table[col].type):
            mm = pc.min_max(table[col]).as_py()
            if mm["min"] is not None:
                lo, hi = stats.get("temporal_start"), stats.get("temporal_end")
                stats["temporal_start"] = min(filter(None, [lo, mm["min"]]))
                stats["temporal_end"] = max(filter(None, [hi, mm["max"]]))


def _build(
    tables: dict[str, Callable[[], pa.Table]],
    out: Path,
    flt: OptOutFilter,
    progress: Progress,
) -> Built:
    """Write each transformed table into ``out``; compute manifest, stats and quality."""
    manifest: dict[str, Any] = {"tables": {}}
    stats: dict[str, Any] = {"records": 0, "individuals": 0}
    written: dict[str, Path] = {}
    order = _processing_order(tables)
    for i, name in enumerate(order, 1):
        progress(f"[{i}/{len(order)}] {name}: reading and checking")
        table = tables[name]()
        if name == "IR_BEN_R":
            flt.learn_persons(table)
        table = flt.apply(name, table)
        path = out / f"{name}.parquet"
        progress(f"[{i}/{len(order)}] {name}: writing {table.num_rows:,} rows")
        try:
            _write_parquet(table, path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise IngestError(
                    f"no space left while writing {name} to {out}: {exc.strerror};"
                    " nothing was published"
                ) from None
            raise
        written[name] = path
        manifest["tables"][name] = {
            "file": path.name,
            "rows": table.num_rows,
            "sha256": _file_sha256(path),
        }
        stats["records"] += table.num_rows
        _table_stats(name, table, stats)
        del table
    progress("computing the data-quality report")
    quality = quality_report(written)
    content = hashlib.sha256(
        canonical_json({t: v["sha256"] for t, v in manifest["tables"].items()}).encode()
    ).hexdigest()
    for key in ("temporal_start", "temporal_end"):
        if isinstance(stats.get(key), date):
            stats[key] = stats[key].isoformat()
    return Built(out, manifest, content, stats, quality, flt.removed_rows, flt.persons_removed)


def _new_staging(staging_root: Path) -> Path:
    staging_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = staging_root / f"{os.getpid()}-{uuid.uuid4().hex}"
    folder.mkdir(mode=0o700)
    return folder


def _next_number(session: Session, dataset: Dataset | None) -> int:
    if dataset is None:
        return 1
    current = session.scalar(
        select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == dataset.id)
    )
    return (current or 0) + 1


def _publish(
    hub: Any,
    name: str,
    built: Built,
    *,
    actor: str,
    source: str,
    source_sha256: str,
    make_record: Callable[[int, Built], dict[str, Any]],
    action: str,
    audit_details: dict[str, Any],
) -> DatasetVersion:
    with hub.sessions() as s:
        dataset = s.scalar(select(Dataset).where(Dataset.name == name))
        number = _next_number(s, dataset)
    final = hub.data_dir.dataset_version_dir(name, f"v{number}")
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _make_readonly(built.folder)
    try:
        os.rename(built.folder, final)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise IngestError(
                f"{name} v{number} appeared while this ingestion ran (another ingestion of"
                f" {name} is in progress): retry when it has finished"
            ) from None
        raise
    try:
        with hub.transaction() as s:
            dataset = s.scalar(select(Dataset).where(Dataset.name == name))
            if dataset is None:
                dataset = Dataset(name=name)
                s.add(dataset)
                s.flush()
            duplicate = s.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == dataset.id,
                    DatasetVersion.content_sha256 == built.content_sha256,
                )
            )
            if duplicate is not None:
                raise IngestError(
                    f"{name} {duplicate.label} already has exactly this content: nothing to publish"
                )
            for old in s.scalars(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == dataset.id, DatasetVersion.status == "current"
                )
            ):
                old.status = "superseded"
            version = DatasetVersion(
                dataset_id=dataset.id,
                number=number,
                status="current",
                created_by=actor,
                source=source,
                source_sha256=source_sha256,
                content_sha256=built.content_sha256,
                key_fingerprint=hub.keys.fingerprint(),
                optout_seq=audit_details["optout_seq"],
                record=make_record(number, built),
                manifest=built.manifest,
                quality=built.quality,
            )
            s.add(version)
            s.flush()
            record(
                s,
                actor=actor,
                action=action,
                target=f"dataset:{name}/v{number}",
                details={
                    **audit_details,
                    "content_sha256": built.content_sha256,
                    "rows": {t: v["rows"] for t, v in built.manifest["tables"].items()},
                    "quality": built.quality.get("summary", {}),
                },
            )
    except BaseException:
        remove_tree(final)
        raise
    return version


def _audit_failure(hub: Any, actor: str, name: str, action: str, reason: str) -> None:
    try:
        with hub.transaction() as s:
            record(
                s, actor=actor, action=action, target=f"dataset:{name}", details={"error": reason}
            )
    except Exception:  # noqa: S110 - the original error is what the user must see
        pass


def ingest(
    hub: Any,
    source: Path,
    dataset: str,
    *,
    actor: str,
    description: DatasetDescription | None = None,
    identifiers: str = "auto",
    progress: Progress | None = None,
) -> DatasetVersion:
    """Ingest the extract in ``source`` as the next version of ``dataset``.

    Every failure, from a refused name or file list to a crash while publishing,
    is audited as ``dataset.ingest_failed`` (target ``dataset:?`` when the name
    itself is refused) and re-raised.
    """
    target = dataset if isinstance(dataset, str) and DATASET_NAME_RE.match(dataset) else "?"
    try:
        return _ingest(
            hub,
            source,
            dataset,
            actor=actor,
            description=description,
            identifiers=identifiers,
            progress=progress,
        )
    except BaseException as exc:
        _audit_failure(hub, actor, target, "dataset.ingest_failed", str(exc) or type(exc).__name__)
        raise


def _ingest(
    hub: Any,
    source: Path,
    dataset: str,
    *,
    actor: str,
    description: DatasetDescription | None,
    identifiers: str,
    progress: Progress | None,
) -> DatasetVersion:
    from jupyterlab_hdh.catalogue.builder import build_record

    say = progress or (lambda _msg: None)
    name = check_dataset_name(dataset)
    extract = open_extract(Path(source), identifiers)
    keys = hub.keys
    source_sha256 = extract_digest(extract)
    with hub.sessions() as s:
        previous = s.scalar(
            select(DatasetVersion)
            .join(Dataset)
            .where(Dataset.name == name, DatasetVersion.source_sha256 == source_sha256)
        )
        if previous is not None:
            raise IngestError(
                f"this extract was already ingested as {name} {previous.label}"
                f" (same content, sha256 {source_sha256[:12]}…): nothing to do"
            )
        optout_seq = optout.last_id(s)
        optout_set = optout.pseudonyms(s, optout_seq)
    desc = description or DatasetDescription()
    if desc.synthetic is None:
        desc.synthetic = "generator" in extract.manifest

    def loader(table: str) -> Callable[[], pa.Table]:
        def load() -> pa.Table:
            descriptor = (
                snds_schemas.raw_schema(table)
                if extract.identifiers == "raw"
                else snds_schemas.load_schema(table)
            )
            try:
                raw = read_table(extract.files[table], descriptor)
            except ValidationError as exc:
                raise IngestError(f"validation failed: {exc}") from None
            if table == "IR_BEN_R" and raw.num_rows == 0:
                raise IngestError(
                    f"{extract.files[table]}: the extract has no persons (IR_BEN_R has no rows;"
                    " an interrupted export?): nothing was published"
                )
            return _pseudonymise_table(table, raw, keys, extract.identifiers)

        return load

    staging = _new_staging(hub.data_dir.staging)
    try:
        built = _build(
            {t: loader(t) for t in extract.files}, staging, OptOutFilter(optout_set), say
        )
        if not built.stats.get("individuals"):
            raise IngestError(
                f"no persons left in the extract once the opt-out register is applied"
                f" ({built.persons_removed} removed): nothing was published"
            )
        say(f"publishing {name}")
        version = _publish(
            hub,
            name,
            built,
            actor=actor,
            source=str(extract.root),
            source_sha256=source_sha256,
            make_record=lambda number, b: build_record(name, number, b, desc),
            action="dataset.ingest",
            audit_details={
                "source": str(extract.root),
                "source_sha256": source_sha256,
                "identifiers": extract.identifiers,
                "optout_seq": optout_seq,
                "persons_opted_out": built.persons_removed,
            },
        )
    except BaseException:
        remove_tree(staging)
        raise
    say(f"{name} v{version.number} published: {built.stats['records']:,} records")
    return version


def reapply_optout(
    hub: Any, *, actor: str, dataset: str | None = None, progress: Progress | None = None
) -> list[tuple[str, str]]:
    """New versions of current datasets without persons who objected since; returns outcomes."""
    from jupyterlab_hdh.catalogue.builder import rebuild_record

    say = progress or (lambda _msg: None)
    outcomes: list[tuple[str, str]] = []
    with hub.sessions() as s:
        query = select(DatasetVersion).join(Dataset).where(DatasetVersion.status == "current")
        if dataset is not None:
            query = query.where(Dataset.name == check_dataset_name(dataset))
        versions = [(v.dataset.name, v) for v in s.scalars(query.order_by(Dataset.name))]
        optout_seq = optout.last_id(s)
        optout_set = optout.pseudonyms(s, optout_seq)
    if dataset is not None and not versions:
        raise IngestError(f"no dataset named {dataset!r}")
    for name, current in versions:
        if current.optout_seq >= optout_seq:
            outcomes.append((name, f"{current.label} already honours every opt-out"))
            continue
        folder = hub.data_dir.dataset_version_dir(name, current.label)
        files = {t: folder / v["file"] for t, v in current.manifest["tables"].items()}
        flt = OptOutFilter(optout_set)
        staging = _new_staging(hub.data_dir.staging)
        try:
            built = _build(
                {t: functools.partial(pq.read_table, p) for t, p in files.items()},
                staging,
                flt,
                say,
            )
            if not any(built.removed.values()):
                remove_tree(staging)
                outcomes.append((name, f"{current.label}: no opted-out person in it"))
                continue
            version = _publish(
                hub,
                name,
                built,
                actor=actor,
                source=current.label,
                source_sha256=current.source_sha256,
                make_record=functools.partial(rebuild_record, current.record),
                action="dataset.reapply_optout",
                audit_details={
                    "from_version": current.label,
                    "optout_seq": optout_seq,
                    "persons_opted_out": built.persons_removed,
                },
            )
        except BaseException:
            remove_tree(staging)
            raise
        outcomes.append(
            (name, f"v{version.number} issued without {built.persons_removed} opted-out person(s)")
        )
    return outcomes


def recover(hub: Any) -> list[str]:
    """Remove what a crashed ingestion left: stale staging folders, unrecorded versions."""
    removed: list[str] = []
    staging = hub.data_dir.staging
    if staging.exists():
        for folder in staging.iterdir():
            pid = folder.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            remove_tree(folder)
            removed.append(str(folder))
    with hub.sessions() as s:
        known = {
            (n, f"v{num}")
            for n, num in s.execute(select(Dataset.name, DatasetVersion.number).join(Dataset))
        }
    datasets = hub.data_dir.datasets
    if datasets.exists():
        for ds in datasets.iterdir():
            if not DATASET_NAME_RE.match(ds.name):  # not a dataset: .linkage (linked tables)
                continue
            for ver in ds.iterdir() if ds.is_dir() else ():
                if (ds.name, ver.name) not in known:
                    remove_tree(ver)
                    removed.append(str(ver))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
