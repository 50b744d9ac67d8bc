"""Synthetic SNDS-shaped extracts with coherent patient histories (``hdh data synth``).

Owns: the public ``generate`` entry point: argument checks, the chunk loop
(one numpy Generator per chunk from ``SeedSequence(seed, spawn_key=(chunk,))``),
the order in which pathways run, and writing all or nothing: the tables go to a
temporary sibling folder (``.<name>.partial-*``), ``extract.json`` is written
last inside it, and the folder is renamed into place only when complete (an
interrupted run removes it; a killed one leaves only that hidden folder, never
a partial extract under the requested name). Modules: ``population`` (who),
``pathways`` (what happens to them), ``tables`` (SNDS layout and dirty cases),
``writer`` (Parquet), ``identifiers`` (NIR and pseudonyms), ``reference``
(code lists and the drug reference).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jupyterlab_hdh.data.snds_schemas import STATIC_TABLES
from jupyterlab_hdh.errors import HdhError

from . import pathways, reference, tables
from .identifiers import Pseudonymiser
from .population import Window, make_population
from .writer import ExtractWriter

__all__ = ["GENERATOR_VERSION", "MANIFEST_NAME", "generate", "table_names"]

GENERATOR_VERSION = "1.0.0"
MANIFEST_NAME = "extract.json"


def table_names(start_year: int, end_year: int) -> list[str]:
    """Every table of an extract, static tables first, then yearly PMSI parts."""
    yearly = [
        f"T_MCO{year % 100:02d}{part}"
        for year in range(start_year, end_year + 1)
        for part in ("A", "B", "C", "D")
    ]
    return list(STATIC_TABLES) + yearly


class OutputError(HdhError, ValueError):
    """The output folder cannot be written (the message names it and says why)."""


def _cannot_write(out_dir: Path, exc: OSError, renaming: bool = False) -> OutputError:
    if renaming and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
        return OutputError(
            f"output directory {out_dir} appeared while the extract was written and is not"
            " empty; refusing to overwrite it"
        )
    # EEXIST outside the final rename: a file stands where a parent folder should be
    reason = os.strerror(errno.ENOTDIR) if exc.errno == errno.EEXIST else exc.strerror
    named = str(exc.filename or "")
    inside = f"{os.sep}.{Path(out_dir).absolute().name}.partial-" in named  # our temporary folder
    where = f" ({named})" if named and named != str(out_dir) and not inside else ""
    return OutputError(f"cannot write the extract to {out_dir}: {reason}{where}")


def _check_arguments(
    out_dir: Path, patients: int, start_year: int, end_year: int, chunk_size: int
) -> None:
    if patients < 1:
        raise ValueError(f"patients must be at least 1, got {patients}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if not 2000 <= start_year <= end_year <= 2099:
        raise ValueError(
            f"need 2000 <= start_year <= end_year <= 2099, got {start_year}..{end_year}"
        )
    try:
        used = out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    if used:
        raise ValueError(
            f"output directory {out_dir} is not empty; refusing to overwrite an extract"
        )


def generate(
    out_dir: Path,
    patients: int,
    seed: int,
    raw: bool = False,
    start_year: int = 2019,
    end_year: int = 2023,
    chunk_size: int = 20_000,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a synthetic extract (one ``<TABLE>.parquet`` per table + ``extract.json``).

    ``raw=True`` puts direct identifiers (NIR-like numbers) in identifier
    columns, as a source extract before pseudonymisation; otherwise they hold
    keyed pseudonyms derived from the seed. Same arguments give byte-identical
    files. Returns the manifest also written to ``extract.json``.
    """
    out_dir = Path(out_dir)
    _check_arguments(out_dir, patients, start_year, end_year, chunk_size)
    target = out_dir.absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = target.parent / f".{target.name}.partial-{secrets.token_hex(4)}"
        work.mkdir()
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    try:
        manifest = _write_extract(
            work, patients, seed, raw, start_year, end_year, chunk_size, progress
        )
        os.rename(work, target)  # replaces an empty folder, refuses a non-empty one
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise _cannot_write(out_dir, exc, renaming=True) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _write_extract(
    out_dir: Path,
    patients: int,
    seed: int,
    raw: bool,
    start_year: int,
    end_year: int,
    chunk_size: int,
    progress: bool,
) -> dict[str, Any]:
    """Write every table, then ``extract.json``, into ``out_dir`` (the temporary folder)."""
    window = Window(start_year, end_year)
    names = table_names(start_year, end_year)
    pseudonymiser = Pseudonymiser(seed)
    counters = tables.Counters()
    writer = ExtractWriter(out_dir, names, raw)
    try:
        writer.write("IR_PHA_R", reference.ir_pha_r_columns())
        n_chunks = (patients + chunk_size - 1) // chunk_size
        bar = tqdm(
            total=patients, unit="patient", file=sys.stderr, disable=not progress, desc="hdh synth"
        )
        for chunk in range(n_chunks):
            first = chunk * chunk_size
            size = min(chunk_size, patients - first)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
            _generate_chunk(writer, rng, first, size, window, raw, pseudonymiser, counters)
            bar.update(size)
        bar.close()
    finally:
        writer.close()

    manifest: dict[str, Any] = {
        "generator": "jupyterlab_hdh.data.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "patients": patients,
        "years": list(window.years),
        "identifiers": "raw" if raw else "pseudonymised",
        "tables": {name: {"file": f"{name}.parquet", "rows": writer.rows[name]} for name in names},
        "dirty_cases": dict(sorted(counters.dirty.items())),
    }
    (out_dir / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=False) + "\n", "utf-8"
    )
    return manifest


def _generate_chunk(
    writer: ExtractWriter,
    rng: np.random.Generator,
    first: int,
    size: int,
    window: Window,
    raw: bool,
    pseudonymiser: Pseudonymiser,
    counters: tables.Counters,
) -> None:
    pop = make_population(rng, first, size, window)
    events = pathways.ChunkEvents()
    pathways.background(pop, rng, window, events)
    pathways.myocardial_infarction(pop, rng, window, events)
    pathways.heart_failure(pop, rng, window, events)
    pathways.parkinson(pop, rng, window, events)
    pathways.breast_screening(pop, rng, window, events)
    built = pathways.apply_death_rule(pop, rng, window, events)
    pv = pathways.pharmacovigilance(pop, rng, window, built["dispensings"])

    ids = tables.PersonIds.build(pop, raw, pseudonymiser)
    chunk_tables = {
        "IR_BEN_R": tables.beneficiaries(pop, ids, window, counters),
        **tables.claims(pop, ids, built, rng, counters),
        "IR_IMB_R": tables.long_term_conditions(pop, ids, built["ald"]),
        "KI_CCI_R": tables.deaths(pop, ids, window, rng, counters),
        "HDH_PV_CAS": tables.pv_cases(pop, ids, pv),
        "HDH_DEV_TLM": tables.telemetry(pop, ids, events.telemetry),
        **tables.hospital_stays(pop, ids, built, window, rng, counters),
    }
    for name, columns in chunk_tables.items():
        if not raw:
            tables.pseudonymise_other_identifiers(name, columns, pseudonymiser)
        writer.write(name, columns)
