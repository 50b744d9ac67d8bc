"""Where the mounted tables are: ``$HDH_DATA_ROOT/<dataset>/<version>/<TABLE>.parquet``.

Owns name resolution for the notebook library: ``"dataset.TABLE"`` (or ``"dataset.T_MCOaaB"``,
a yearly PMSI table over its years) → the Parquet files to read, with the version chosen
(the newest mounted one unless asked) and every refusal worded for the researcher. Reads
directory names and Parquet footers only. ``HDH_DATA_ROOT`` defaults to ``/data`` (the
sandbox's read-only mounts).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hdh.errors import BadArgument, DatasetNotMounted, DatasetNotPermitted, UnknownTable

DATA_ROOT_ENV = "HDH_DATA_ROOT"
#: SNDS yearly tables are written with ``aa`` for the two-digit year (``T_MCOaaB``).
YEARLY = re.compile(r"^(?P<head>[A-Z][A-Z0-9_]*?)aa(?P<tail>[A-Z0-9_]*)$")
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
#: A file of a yearly table: ``T_MCO21B`` → head ``T_MCO``, year ``21``, tail ``B``.
YEARLY_FILE = re.compile(r"([A-Z][A-Z0-9_]*?)(\d\d)([A-Z0-9_]*)")
#: The column a yearly table read over several years gains: the file's year (2020, 2021…).
YEAR_COLUMN = "year"


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, "/data"))


def _version_key(v: str) -> tuple[int, str]:
    m = re.fullmatch(r"v?(\d+)", v)
    return (int(m[1]), v) if m else (-1, v)


def mounted() -> dict[str, list[str]]:
    """``{dataset: [versions, oldest first]}`` of what is mounted here."""
    root = data_root()
    if not root.is_dir():
        return {}
    out: dict[str, list[str]] = {}
    for ds in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = sorted((v.name for v in ds.iterdir() if v.is_dir()), key=_version_key)
        if versions:
            out[ds.name] = versions
    return out


@dataclass(frozen=True)
class TableRef:
    """One table to read: its files (one, or one per year) and what they are."""

    dataset: str
    version: str
    table: str  # as asked: ER_PRS_F, or T_MCOaaB for a yearly table
    files: tuple[Path, ...]
    years: tuple[int, ...] = ()  # the year of each file, for a yearly table

    @property
    def label(self) -> str:
        return f"{self.dataset}.{self.table} ({self.version})"

    @property
    def yearly(self) -> bool:
        return bool(self.years)

    def schema(self) -> pa.Schema:
        """The table's columns (all its files' footers; a yearly table adds ``year``)."""
        schemas = [pq.read_schema(f) for f in self.files]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        if self.yearly and YEAR_COLUMN not in schema.names:
            schema = schema.append(pa.field(YEAR_COLUMN, pa.int16()))
        return schema


def split_name(name: str) -> tuple[str, str]:
    if not isinstance(name, str) or "." not in name:
        raise BadArgument(
            f"name a table as 'dataset.TABLE' (e.g. 'demo-snds.ER_PRS_F'), not {name!r}"
        )
    dataset, table = name.rsplit(".", 1)
    if not dataset or not table or not NAME.match(dataset) or not NAME.match(table):
        raise BadArgument(f"not a table name: {name!r} (expected 'dataset.TABLE')")
    return dataset, table


def choose_version(dataset: str, version: str | None) -> str:
    here = mounted()
    versions = here.get(dataset, [])
    if version is None and versions:
        return versions[-1]  # the newest mounted version
    if version in versions:
        return version
    asked = f"{dataset} {version}" if version else f"dataset {dataset!r}"
    listing = ", ".join(versions) if versions else ", ".join(sorted(here)) or "none"
    granted = permitted()
    if granted is not None and not any(
        d == dataset and (version is None or v == version) for d, v in granted
    ):
        raise DatasetNotPermitted(
            f"{asked} is not granted by this project's permit (mounted here: {listing});"
            " access is requested from the catalogue, by the project lead"
        )
    raise DatasetNotMounted(
        f"{asked} is not mounted in this sandbox (mounted: {listing}); a version the permit"
        " grants is mounted from the HDH panel: My data → Change mounted versions"
    )


def permitted() -> set[tuple[str, str]] | None:
    """``{(dataset, version)}`` the project's permit grants, or None if the control plane
    cannot be asked (no API bridge: outside a sandbox, or the hub is down)."""
    from hdh import _bridge

    plan = _bridge.get("/api/bridge/whoami")
    if not isinstance(plan, dict) or not isinstance(plan.get("permitted"), list):
        return None
    return {
        (str(p.get("dataset")), str(p.get("version")))
        for p in plan["permitted"]
        if isinstance(p, dict)
    }


def _years_wanted(years: object) -> set[int] | None:
    if years is None:
        return None
    items = [years] if isinstance(years, int) else years
    try:
        wanted = {int(y) for y in items}  # type: ignore[union-attr,attr-defined]
    except (TypeError, ValueError):
        raise BadArgument(f"years must be a year or a list of years, not {years!r}") from None
    if not wanted or any(not 1900 <= y <= 2199 for y in wanted):
        raise BadArgument(f"years must be four-digit years such as 2021, not {years!r}")
    return wanted


def resolve(name: str, version: str | None = None, years: object = None) -> TableRef:
    """The files of ``name`` in the chosen version; every refusal is an :class:`HDHError`."""
    dataset, table = split_name(name)
    version = choose_version(dataset, version)
    return _ref(dataset, version, table, _present(dataset, version), years)


def refs(dataset: str, version: str) -> list[TableRef]:
    """Every table of a mounted version (one folder listing): each file, then each yearly
    table (``T_MCOaaB``) over its years."""
    present = _present(dataset, version)
    names = sorted(present) + sorted(
        {f"{m[1]}aa{m[3]}" for stem in present if (m := YEARLY_FILE.fullmatch(stem))}
    )
    return [_ref(dataset, version, table, present, None) for table in names]


def _present(dataset: str, version: str) -> dict[str, Path]:
    return {p.stem: p for p in (data_root() / dataset / version).glob("*.parquet")}


def _ref(
    dataset: str, version: str, table: str, present: dict[str, Path], years: object
) -> TableRef:
    yearly = YEARLY.match(table)
    if yearly is None:
        if years is not None:
            raise BadArgument(
                f"years= is for yearly tables written with 'aa' (e.g. T_MCOaaB), not {table}"
            )
        if table not in present:
            raise UnknownTable(
                f"{dataset} {version} has no table {table!r}; tables: {_listing(present)}"
            )
        return TableRef(dataset, version, table, (present[table],))
    pattern = re.compile(re.escape(yearly["head"]) + r"(\d\d)" + re.escape(yearly["tail"]) + "$")
    found = sorted(
        (2000 + int(m[1]), p) for stem, p in present.items() if (m := pattern.match(stem))
    )
    if not found:
        raise UnknownTable(
            f"{dataset} {version} has no yearly table {table!r}; tables: {_listing(present)}"
        )
    wanted = _years_wanted(years)
    if wanted is not None:
        missing = wanted - {y for y, _ in found}
        if missing:
            have = ", ".join(str(y) for y, _ in found)
            raise UnknownTable(
                f"{dataset} {version} has no {table} for {', '.join(map(str, sorted(missing)))}"
                f" (years present: {have})"
            )
        found = [(y, p) for y, p in found if y in wanted]
    return TableRef(dataset, version, table, tuple(p for _, p in found), tuple(y for y, _ in found))


def _listing(present: dict[str, Path]) -> str:
    names = sorted(present)
    shown = ", ".join(names[:40])
    return shown + (f" … ({len(names)} in all)" if len(names) > 40 else "") if names else "none"
