"""``check_files``: run the automated disclosure checks on the files of one request.

Never raises on a hostile file: whatever goes wrong reading a file becomes a ``fail`` flag
(``unreadable``, ``too-large``, ``file-type``) on that file's report. Supporting and code files
are context for the reviewers and are not released: they are only checked to be readable
within the limits, and supporting files may carry evidence (ACRO ``results.json``, our
``.sdc.json`` sidecars, SACRO-ML reports) used for the outputs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from . import differencing as differencing
from . import evidence as evidence
from . import figures as figures
from . import models as models
from .config import CheckConfig
from .report import ROLES, CheckInput, FileReport, Flag, status_of, summarise
from .tables import FlagSink, Table, TableReadError, check_table, read_tables

_EXT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "yml": "yaml"}


def extension(name: str) -> str:
    """The lower-case extension of ``name`` without the dot (``jpg`` reads as ``jpeg``)."""
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return _EXT_ALIASES.get(suffix, suffix)


def kind_of(name: str, role: str, config: CheckConfig) -> str:
    ext = extension(name)
    if ext in config.table_types:
        return "table"
    if ext in config.figure_types or ext in ("svg", "gif", "pdf", "bmp", "tiff", "webp", "eps"):
        return "figure"
    if ext in config.model_types:
        return "model"
    if role == "code" or ext in config.code_types:
        return "code"
    return "other"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _regular_file_problem(path: Path, limit: int) -> Flag | None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Flag("unreadable", f"file cannot be opened: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Flag("unreadable", "not a regular file (symlink, FIFO, device or folder)")
    if st.st_size > limit:
        return Flag("too-large", f"{st.st_size:,} bytes, more than the limit of {limit:,}")
    return None


def check_files(
    inputs: Sequence[CheckInput],
    *,
    config: CheckConfig | None = None,
    earlier_releases: Sequence[CheckInput] = (),
) -> list[FileReport]:
    """One :class:`FileReport` per input, in input order.

    ``earlier_releases`` are this project's released output tables, compared with the new
    outputs by the differencing check.
    """
    config = config or CheckConfig()
    hashes: dict[int, str] = {}
    basic: dict[int, Flag | None] = {}
    for k, item in enumerate(inputs):
        limit = (
            config.max_model_bytes
            if kind_of(item.name, item.role, config) == "model"
            else (config.max_file_bytes)
        )
        if evidence.is_evidence_name(item.name):
            limit = max(limit, config.max_evidence_bytes)
        problem = _regular_file_problem(item.path, limit)
        if problem is None and item.role not in ROLES:
            problem = Flag("unreadable", f"unknown role {item.role!r} (output|supporting|code)")
        basic[k] = problem
        if problem is None:
            try:
                hashes[k] = sha256_file(item.path)
            except OSError as exc:
                basic[k] = Flag("unreadable", f"file cannot be read: {exc.strerror}")
    readable = [(k, inputs[k]) for k in range(len(inputs)) if basic[k] is None]
    bundle = evidence.collect(readable, hashes, config)
    has_supporting_table = any(
        it.role == "supporting"
        and kind_of(it.name, it.role, config) == "table"
        and not evidence.is_evidence_name(it.name)
        for _, it in readable
    )

    reports: list[FileReport] = []
    output_tables: list[tuple[str, Table]] = []
    for k, item in enumerate(inputs):
        kind = kind_of(item.name, item.role, config)
        sink = FlagSink(config.max_flags_per_rule)
        ev_used = ""
        if basic[k] is not None:
            sink.add(basic[k])  # type: ignore[arg-type]
        else:
            try:
                ev_used = _check_one(
                    item, kind, hashes[k], config, sink, bundle, output_tables, has_supporting_table
                )
            except Exception as exc:  # noqa: BLE001 - the gate never raises on a hostile file
                sink.add(
                    Flag(
                        "unreadable",
                        f"the checks could not read this file:"
                        f" {type(exc).__name__}: {str(exc)[:200]}",
                    )
                )
        flags = sink.done()
        reports.append(
            FileReport(
                name=item.name,
                role=item.role,
                kind=kind,
                status=status_of(flags),
                flags=flags,
                summary=summarise(flags, kind),
                sha256=hashes.get(k, ""),
                evidence=ev_used,
            )
        )

    # differencing across this request's outputs and the project's earlier releases
    earlier: list[tuple[str, Table]] = []
    for item in earlier_releases:
        if kind_of(item.name, "output", config) != "table":
            continue
        if _regular_file_problem(item.path, config.max_file_bytes) is not None:
            continue
        try:
            earlier.extend(
                (item.name, t) for t in read_tables(item.path, extension(item.name), config)
            )
        except Exception:  # noqa: BLE001, S112 - an unreadable old release is not compared
            continue
    try:
        diff_flags = differencing.find_differencing(output_tables, earlier, config)
    except Exception as exc:  # noqa: BLE001 - never raise; say the check did not run
        note = f"differencing check could not run: {type(exc).__name__}"
        diff_flags = {
            name: [Flag("differencing", note, {}, severity="review")]
            for name in dict(output_tables)
        }
    if diff_flags:
        by_name = {r.name: i for i, r in enumerate(reports)}
        for name, flags in diff_flags.items():
            i = by_name[name]
            r = reports[i]
            all_flags = r.flags + flags
            reports[i] = FileReport(
                r.name,
                r.role,
                r.kind,
                status_of(all_flags),
                all_flags,
                summarise(all_flags, r.kind),
                r.sha256,
                r.evidence,
            )
    return reports


def _check_one(
    item: CheckInput,
    kind: str,
    sha: str,
    config: CheckConfig,
    sink: FlagSink,
    bundle: evidence.EvidenceBundle,
    output_tables: list[tuple[str, Table]],
    has_supporting_table: bool,
) -> str:
    """Run the checks for one readable input; returns the kind of evidence used."""
    if item.role != "output":
        if kind == "table" and not evidence.is_evidence_name(item.name):
            _check_readable_table(item, config, sink)
        if item.name in bundle.problems:
            sink.add(Flag("unreadable", bundle.problems[item.name], {}, severity="review"))
    elif kind == "table":
        return _check_output_table(item, sha, config, sink, bundle, output_tables)
    elif kind == "figure":
        figures.check_figure(
            item.path, extension(item.name), config, sink, has_counts=has_supporting_table
        )
    elif kind == "model":
        models.check_model(
            item.path,
            item.name,
            extension(item.name),
            config,
            sink,
            bundle.model_reports_for(item.name),
        )
    elif kind == "code":
        sink.add(
            Flag(
                "file-type",
                "code is context for reviewers, not a releasable output:"
                " submit it with role 'code'",
                {},
                severity="review",
            )
        )
    else:
        sink.add(
            Flag(
                "file-type",
                f"file type .{extension(item.name) or '(none)'} is not allowed as an"
                " output (tables: csv, parquet, xlsx; figures: png, jpeg; models)",
            )
        )
    return ""


def _check_readable_table(item: CheckInput, config: CheckConfig, sink: FlagSink) -> None:
    try:
        read_tables(item.path, extension(item.name), config)
    except TableReadError as exc:
        sink.add(Flag(exc.rule, str(exc)))


def _check_output_table(
    item: CheckInput,
    sha: str,
    config: CheckConfig,
    sink: FlagSink,
    bundle: evidence.EvidenceBundle,
    output_tables: list[tuple[str, Table]],
) -> str:
    try:
        tables = read_tables(item.path, extension(item.name), config)
    except TableReadError as exc:
        sink.add(Flag(exc.rule, str(exc)))
        return ""
    found = bundle.for_table(item.name, sha)
    for table in tables:
        lay = check_table(table, config, sink, cell_evidence=found is not None)
        if found is not None:
            found.apply(table, lay, config, sink)
        output_tables.append((item.name, table))
    return found.kind if found is not None else ""
