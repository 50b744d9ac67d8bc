"""Linkage: a study's own cohort linked to the hub's pseudonyms, for one permit.

Owns ``hdh linkage run``: a data controller (or an administrator) gives a CSV file of the
study's subjects — a **study subject number** and the person's **NIR** (the direct
identifier) — for an active permit; the control plane pseudonymises each NIR with the
installation's keys and the same function as ingestion (so pseudonyms equal those of the
datasets), looks them up in the person columns (``BEN_IDT_ANO``, ``BEN_NIR_ANO``) of every
dataset version the permit grants, and writes the **linked table**

    ``<data dir>/datasets/.linkage/permit-<permit id>/<name>.parquet``

with one row per subject: ``subject`` (the study's number), ``pseudonym`` (the person's
pseudonym as in the datasets, null when not found) and ``quality`` (below) — never the
identifier. The project's sandboxes of that permit, and only while it is the active one,
see that folder read-only at ``/data/linkage`` (:func:`linked_folder`, used by
``hub.plan``). The run is recorded in the ``linkages`` table (the input's SHA-256, counts,
the report) and audited (``linkage.run``: counts and hash, never an identifier); once
the transaction has committed, the source file — the direct identifiers — is deleted.

Input (UTF-8, a header line, ``,`` or ``;`` between fields). The identifier is a NIR as the
hub accepts it (:func:`jupyterlab_hdh.data.optout.check_raw_identifier`): sex digit, year,
month, department (Corsica ``2A``/``2B``), commune, order, with or without its 2-digit
control key; spaces are ignored. Quality classes (:data:`QUALITY_CLASSES`):

* ``nir_key``: 15 characters whose control key matches (a typo is detected);
* ``nir_no_key``: the 13 characters without key; the key is computed, so a typo in them
  goes unnoticed (links to someone else, or to no one);
* ``missing``: an empty identifier cell: kept in the table, never matched.

Every row is checked before anything is written; any of these refuses the whole file,
naming the line and column, and leaves it where it is: a missing column, a field count that
is not the header's, a malformed identifier or control key, the same person on two lines, a
malformed subject number (1-64 of ``A-Z a-z 0-9 . _ -``, and no run of 13 digits: a subject
number must not be a NIR), the same subject number twice, no subject at all. So is a file
already linked for this permit (same SHA-256), a name already used for it, a permit that
is not active, an actor who is not a data controller or an administrator.

A permit re-issued because opt-outs were applied (``hdh data reapply-optout``) keeps its
linked tables (:func:`follow`), without the pseudonyms of those who objected; a renewal or
a new permit does not: the cohort is linked again for it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
import stat
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jupyterlab_hdh.audit import record
from jupyterlab_hdh.data.optout import OptOutError, check_raw_identifier
from jupyterlab_hdh.data.pseudonymise import KeyPair, pseudonymise
from jupyterlab_hdh.errors import HdhError
from jupyterlab_hdh.governance import projects as pj
from jupyterlab_hdh.paths import DataDir
from jupyterlab_hdh.store.models import Linkage, Permit
from jupyterlab_hdh.timestamps import iso_utc

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SUBJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: a subject number holding this looks like a NIR's 13 digits: refused
_NIR_LIKE = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}", re.IGNORECASE)
QUALITY_CLASSES = ("nir_key", "nir_no_key", "missing")
#: the columns of the datasets that hold the person's pseudonym (of their own NIR)
PERSON_PSEUDONYM_COLUMNS = ("BEN_IDT_ANO", "BEN_NIR_ANO")
DEFAULT_ID_COLUMN = "nir"
DEFAULT_SUBJECT_COLUMN = "subject"
MAX_SOURCE_BYTES = 1 << 30


class LinkageError(HdhError, ValueError):
    """The linkage was refused; nothing was written and the source file is kept."""

    http_status = 422


class DuplicateLinkage(LinkageError):
    """This file, or this name, was already linked for this permit."""

    http_status = 409


@dataclass
class LinkageReport:
    """What a run did: counts and match rates, overall and per quality class."""

    id: int
    permit: int
    project: str
    name: str
    input_sha256: str
    rows: int
    matched: int
    classes: dict[str, dict[str, Any]]
    datasets: list[str]
    table: Path
    source: Path
    source_deleted: bool = False
    source_error: str | None = field(default=None, repr=False)

    @property
    def match_rate(self) -> float:
        return _rate(self.matched, self.rows)

    def as_json(self) -> dict[str, Any]:
        """The report as stored in ``linkages.report`` (no path, no identifier)."""
        return {
            "rows": self.rows,
            "matched": self.matched,
            "match_rate": self.match_rate,
            "classes": self.classes,
            "datasets": self.datasets,
        }


@dataclass(frozen=True)
class _Row:
    line: int
    subject: str
    nir: str | None  # the 15-character NIR, None when missing
    quality: str


def _rate(matched: int, rows: int) -> float:
    return round(matched / rows, 4) if rows else 0.0


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise LinkageError(
            f"invalid linkage name {name!r}: use 1-63 lowercase ASCII letters, digits, '-' or"
            " '_', starting with a letter or digit (it names the table: <name>.parquet)"
        )
    return name


def normalise_identifier(value: str) -> tuple[str | None, str]:
    """``(15-character NIR, quality class)`` of an identifier cell; OptOutError if malformed.

    The message never repeats the identifier."""
    text = value.strip().replace(" ", "").upper()
    if not text:
        return None, "missing"
    if len(text) == 13:
        digits = text.replace("2A", "19").replace("2B", "18")
        if not digits.isdigit():
            raise OptOutError(
                "not a valid NIR-like identifier: expected 13 digits (or 15 with key)"
            )
        return check_raw_identifier(f"{text}{97 - int(digits) % 97:02d}"), "nir_no_key"
    if len(text) != 15:
        raise OptOutError(
            f"not a valid NIR-like identifier: {len(text)} characters, expected 13 (without"
            " key) or 15 (with its 2-digit key)"
        )
    return check_raw_identifier(text), "nir_key"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LinkageError(f"line {line}: the file is not UTF-8 text") from None


def read_cohort(
    data: bytes, id_column: str = DEFAULT_ID_COLUMN, subject_column: str = DEFAULT_SUBJECT_COLUMN
) -> list[_Row]:
    """Every row of the cohort file, checked; LinkageError naming the line and column."""
    text = _decode(data)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise LinkageError("line 1: the file has no header line")
    delimiter = ";" if ";" in lines[0] and "," not in lines[0] else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        if len(set(header)) != len(header):
            raise LinkageError(f"line 1: a column is named twice ({', '.join(header)})")
        for column in (subject_column, id_column):
            if column not in header:
                raise LinkageError(
                    f"line 1: no column {column!r} (columns: {', '.join(header)});"
                    " name them with --subject-column and --id-column"
                )
        if subject_column == id_column:
            raise LinkageError("the subject number and identifier columns must differ")
        i_id, i_subject = header.index(id_column), header.index(subject_column)
        rows: list[_Row] = []
        subjects: dict[str, int] = {}
        persons: dict[str, int] = {}
        for fields in reader:
            line = reader.line_num
            if not fields or not any(f.strip() for f in fields):
                continue  # a blank line
            if len(fields) != len(header):
                raise LinkageError(
                    f"line {line}: {len(fields)} fields where the header has {len(header)}"
                )
            subject = fields[i_subject].strip()
            where = f"line {line}, column {subject_column!r}"
            if not SUBJECT_RE.fullmatch(subject):
                raise LinkageError(
                    f"{where}: not a subject number (1-64 of A-Z, a-z, 0-9, '.', '_', '-')"
                )
            if _NIR_LIKE.search(subject):
                raise LinkageError(
                    f"{where}: looks like a NIR; a subject number must not be a direct"
                    " identifier (it reaches the sandboxes)"
                )
            if subject in subjects:
                raise LinkageError(
                    f"{where}: subject number {subject!r} already on line {subjects[subject]}"
                )
            subjects[subject] = line
            try:
                nir, quality = normalise_identifier(fields[i_id])
            except OptOutError as exc:
                raise LinkageError(f"line {line}, column {id_column!r}: {exc}") from None
            if nir is not None:
                if nir in persons:
                    raise LinkageError(
                        f"line {line}, column {id_column!r}: the same person as on line"
                        f" {persons[nir]}"
                    )
                persons[nir] = line
            rows.append(_Row(line, subject, nir, quality))
    except csv.Error as exc:
        raise LinkageError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise LinkageError("the file has a header but no subject")
    return rows


def _read_source(source: Path) -> bytes:
    if not source.is_file():
        raise LinkageError(f"{source} is not a file")
    if source.stat().st_size > MAX_SOURCE_BYTES:
        raise LinkageError(f"{source} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
    return source.read_bytes()


def _person_pseudonyms(
    permit: Permit, data_dir: DataDir, keys: KeyPair, wanted: pa.Array
) -> tuple[set[str], list[str]]:
    """The pseudonyms of ``wanted`` found in the person columns of the permit's versions."""
    found: set[str] = set()
    searched: list[str] = []
    versions = sorted(permit.dataset_versions, key=lambda v: (v.dataset.name, v.number))
    if not versions:
        raise LinkageError(f"permit #{permit.id} grants no dataset: nothing to link to")
    for version in versions:
        label = f"{version.dataset.name}/{version.label}"
        if version.key_fingerprint != keys.fingerprint():
            raise LinkageError(
                f"{label} was pseudonymised with other keys (fingerprint"
                f" {version.key_fingerprint}, these keys {keys.fingerprint()}): no pseudonym"
                " would match"
            )
        folder = data_dir.dataset_version_dir(version.dataset.name, version.label)
        if not folder.is_dir():
            raise LinkageError(f"{label} is not on this host ({folder})")
        for path in sorted(folder.glob("*.parquet")):
            names = pq.read_schema(path).names
            columns = [c for c in PERSON_PSEUDONYM_COLUMNS if c in names]
            if not columns:
                continue
            table = pq.read_table(path, columns=columns)
            for column in columns:
                values = table[column]
                hit = pc.fill_null(pc.is_in(values, value_set=wanted), False)
                found.update(v for v in values.filter(hit).to_pylist() if v)
        searched.append(label)
    return found, searched


def _write_table(table: pa.Table, staging: Path, final: Path) -> None:
    """Write under staging, then link into place: never a partial file, never clobbered."""
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = staging / f"linkage-{os.getpid()}-{uuid.uuid4().hex}.parquet"
    try:
        pq.write_table(table, tmp, compression="zstd")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(stat.S_IRUSR | stat.S_IRGRP)
        final.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        final.parent.mkdir(exist_ok=True, mode=0o750)
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise DuplicateLinkage(
                f"{final.name} already exists for this permit: choose another name"
            ) from None
    finally:
        tmp.unlink(missing_ok=True)


def run_linkage(
    session: Session,
    data_dir: DataDir,
    permit_id: int,
    name: str,
    source: Path,
    *,
    keys: KeyPair,
    actor: pj.Actor,
    id_column: str = DEFAULT_ID_COLUMN,
    subject_column: str = DEFAULT_SUBJECT_COLUMN,
) -> LinkageReport:
    """Link the cohort file ``source`` for permit ``permit_id`` (see the module's docstring).

    Runs in the caller's transaction: the linked table is written before it commits and
    removed if it rolls back; the source file is deleted only once it has committed
    (``report.source_deleted`` says whether that worked)."""
    if actor.role not in pj.GRANTORS:
        raise pj.NotAuthorised(
            f"{actor.name} (role {actor.role!r}) may not link a cohort"
            f" (needs {' or '.join(pj.GRANTORS)})"
        )
    check_name(name)
    permit = pj.get_permit(session, permit_id)
    state = pj.status(permit)
    if state != "active":
        raise LinkageError(f"permit #{permit.id} is {state}: only an active permit is linked")
    source = Path(source)
    data = _read_source(source)
    digest = hashlib.sha256(data).hexdigest()
    rows = read_cohort(data, id_column, subject_column)
    earlier = session.scalar(
        select(Linkage).where(Linkage.permit_id == permit.id, Linkage.input_sha256 == digest)
    )
    if earlier is not None:
        raise DuplicateLinkage(
            f"this file was already linked for permit #{permit.id} as {earlier.name!r}"
            f" (linkage #{earlier.id}, {iso_utc(earlier.created_at, 'seconds')})"
        )
    if session.scalar(
        select(Linkage.id).where(Linkage.permit_id == permit.id, Linkage.name == name)
    ):
        raise DuplicateLinkage(f"permit #{permit.id} already has a linked table {name!r}")

    nirs = pa.array([r.nir for r in rows], pa.string())
    pseudonyms = pseudonymise(nirs, keys)
    found, searched = _person_pseudonyms(permit, data_dir, keys, pc.unique(pseudonyms.drop_null()))
    linked = [p if p in found else None for p in pseudonyms.to_pylist()]
    classes = _classes(rows, linked)
    matched = sum(p is not None for p in linked)
    table = pa.table(
        {
            "subject": pa.array([r.subject for r in rows], pa.string()),
            "pseudonym": pa.array(linked, pa.string()),
            "quality": pa.array([r.quality for r in rows], pa.string()),
        }
    )
    final = data_dir.linkage_dir(permit.id) / f"{name}.parquet"
    _write_table(table, data_dir.staging, final)
    try:
        entry = Linkage(
            permit_id=permit.id,
            name=name,
            input_sha256=digest,
            rows=len(rows),
            matched=matched,
            key_fingerprint=keys.fingerprint(),
            report={},
            created_by=actor.name,
        )
        session.add(entry)
        try:
            session.flush()
        except IntegrityError:  # a concurrent run of the same file or name
            raise DuplicateLinkage(
                f"permit #{permit.id} already has this file or the name {name!r} linked"
            ) from None
        report = LinkageReport(
            id=entry.id,
            permit=permit.id,
            project=permit.project.slug,
            name=name,
            input_sha256=digest,
            rows=len(rows),
            matched=matched,
            classes=classes,
            datasets=searched,
            table=final,
            source=source,
        )
        entry.report = report.as_json()
        record(
            session,
            actor=actor.name,
            action="linkage.run",
            target=f"linkage:{entry.id}",
            details={
                "permit": permit.id,
                "project": permit.project.slug,
                "name": name,
                "input_sha256": digest,
                "rows": len(rows),
                "matched": matched,
                "classes": {k: v["rows"] for k, v in classes.items()},
                "datasets": searched,
            },
        )
        session.flush()
    except BaseException:
        _remove(final)
        raise
    _on_outcome(session, report)
    return report


def _classes(rows: list[_Row], linked: list[str | None]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for quality in QUALITY_CLASSES:
        hits = [p for r, p in zip(rows, linked, strict=True) if r.quality == quality]
        n, m = len(hits), sum(p is not None for p in hits)
        out[quality] = {"rows": n, "matched": m, "match_rate": _rate(m, n)}
    return out


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # the folder was made unwritable meanwhile
        path.unlink(missing_ok=True)


def _on_outcome(session: Session, report: LinkageReport) -> None:
    """After the caller's commit: delete the source; after a rollback: remove the table."""
    done = False

    def committed(_session: Session) -> None:
        nonlocal done
        if done:
            return
        done = True
        try:
            report.source.unlink()
            report.source_deleted = True
        except FileNotFoundError:
            report.source_deleted = True
        except OSError as exc:
            report.source_error = f"{type(exc).__name__}: {exc.strerror or exc}"

    def rolled_back(_session: Session) -> None:
        nonlocal done
        if done:
            return
        done = True
        _remove(report.table)

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


# --- the sandboxes' question, and the list ------------------------------------------------------


def linked_folder(session: Session, permit: Permit, data_dir: DataDir) -> Path | None:
    """The folder of ``permit``'s linked tables, to mount read-only at ``/data/linkage`` in
    its project's sandboxes (the caller asks only for the active permit), or None."""
    has = session.scalar(select(Linkage.id).where(Linkage.permit_id == permit.id).limit(1))
    return data_dir.linkage_dir(permit.id) if has is not None else None


def linkages(session: Session, permit_id: int | None = None) -> list[Linkage]:
    query = select(Linkage).order_by(Linkage.id)
    if permit_id is not None:
        query = query.where(Linkage.permit_id == permit_id)
    return list(session.scalars(query))


def linkage_view(entry: Linkage, data_dir: DataDir) -> dict[str, Any]:
    return {
        "id": entry.id,
        "permit": entry.permit_id,
        "project": entry.permit.project.slug,
        "name": entry.name,
        "table": str(data_dir.linkage_dir(entry.permit_id) / f"{entry.name}.parquet"),
        "mounted_at": f"/data/linkage/{entry.name}.parquet",
        "input_sha256": entry.input_sha256,
        "rows": entry.rows,
        "matched": entry.matched,
        "report": entry.report,
        "created_by": entry.created_by,
        "created_at": iso_utc(entry.created_at, "seconds"),
    }


def describe(classes: dict[str, dict[str, Any]]) -> Iterable[tuple[str, int, int, float]]:
    """``(class, rows, matched, rate)`` of each quality class, in :data:`QUALITY_CLASSES` order."""
    for quality in QUALITY_CLASSES:
        c = classes.get(quality, {})
        yield (
            quality,
            int(c.get("rows", 0)),
            int(c.get("matched", 0)),
            float(c.get("match_rate", 0)),
        )


# --- a permit re-issued for opt-outs keeps its linked tables, without the persons who objected --


def follow(
    session: Session,
    data_dir: DataDir,
    moves: Iterable[tuple[int, int | None, str]],
    *,
    actor: pj.Actor,
) -> list[tuple[int, str]]:
    """Carry the linked tables of permits re-issued by
    :func:`~jupyterlab_hdh.governance.projects.follow_optout_versions` (``(old, new, what)``)
    to the new permit, with the pseudonym of everyone in the opt-out register made null, so
    the study keeps its linkage and the new permit mounts no one who objected. In the
    caller's transaction; returns ``(new permit, name)`` of each table carried. A renewal or a
    new permit is not a move: its cohort is linked again (a linkage is scoped to one permit)."""
    from jupyterlab_hdh.data.optout import pseudonyms as objected

    moved = [(old, new) for old, new, _ in moves if new is not None]
    if not moved:
        return []
    gone = pa.array(sorted(objected(session)), type=pa.string())
    carried = []
    for old, new in moved:
        for entry in linkages(session, old):
            source = data_dir.linkage_dir(old) / f"{entry.name}.parquet"
            table = pq.read_table(source)
            pseudonym = table.column("pseudonym")
            kept = pc.if_else(pc.is_in(pseudonym, value_set=gone), None, pseudonym)
            table = table.set_column(table.schema.get_field_index("pseudonym"), "pseudonym", kept)
            final = data_dir.linkage_dir(new) / f"{entry.name}.parquet"
            final.unlink(missing_ok=True)  # left by a run that did not commit
            _write_table(table, data_dir.staging, final)
            matched = table.num_rows - kept.null_count
            session.add(
                Linkage(
                    permit_id=new,
                    name=entry.name,
                    input_sha256=entry.input_sha256,
                    rows=entry.rows,
                    matched=matched,
                    key_fingerprint=entry.key_fingerprint,
                    report={**entry.report, "carried_from_permit": old, "matched": matched},
                    created_by=actor.name,
                )
            )
            session.flush()
            record(
                session,
                actor=actor.name,
                action="linkage.follow",
                target=f"permit:{new}",
                details={"from_permit": old, "name": entry.name, "matched": matched},
            )
            carried.append((new, entry.name))
    return carried
