"""Build the catalogue record of a dataset version from what ingestion measured.

Owns the mapping from an ingested version (tables and row counts, statistics,
quality report, the controller's description) to a validated
:class:`DatasetRecord`, stored as JSON with the version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jupyterlab_hdh.catalogue.dictionary import data_dictionary
from jupyterlab_hdh.catalogue.records import Agent, DatasetRecord, QualitySummary
from jupyterlab_hdh.data import snds_schemas

#: Code systems a table's presence implies.
CODING_SYSTEMS_BY_TEMPLATE = {
    "T_MCOaaB": ("ICD-10", "GHM"),
    "T_MCOaaD": ("ICD-10",),
    "T_MCOaaA": ("CCAM",),
    "IR_IMB_R": ("ICD-10",),
    "KI_CCI_R": ("ICD-10",),
    "ER_PHA_F": ("CIP13", "ATC"),
    "IR_PHA_R": ("CIP13", "ATC"),
    "ER_CAM_F": ("CCAM",),
    "HDH_PV_CAS": ("ATC", "MedDRA"),
}


def _coding_systems(tables: list[str]) -> list[str]:
    found: list[str] = []
    for table in tables:
        for system in CODING_SYSTEMS_BY_TEMPLATE.get(snds_schemas.resolve(table).template, ()):
            if system not in found:
                found.append(system)
    return found


def _quality_summary(quality: dict[str, Any]) -> QualitySummary:
    summary = quality.get("summary", {})
    failed = [c["check_id"] for c in quality.get("checks", []) if c.get("status") == "failed"]
    text = (
        f"{summary.get('passed', 0)} checks passed, {summary.get('failed', 0)} failed"
        + (f" ({', '.join(failed[:10])})" if failed else "")
        + f", {summary.get('not_applicable', 0)} not applicable"
    )
    return QualitySummary(
        passed=summary.get("passed", 0), failed=summary.get("failed", 0), summary=text
    )


def build_record(name: str, number: int, built: Any, desc: Any) -> dict[str, Any]:
    """The catalogue record of a freshly ingested version, as JSON-ready data."""
    tables = list(built.manifest["tables"])
    now = datetime.now(UTC)
    synthetic = bool(desc.synthetic)
    title = desc.title or (f"{name} (extrait SNDS synthétique)" if synthetic else name)
    description = desc.description or (
        ("Extrait synthétique au format SNDS, sans donnée réelle. " if synthetic else "")
        + f"Tables : {', '.join(tables)}."
    )
    record = DatasetRecord(
        name=name,
        version=f"v{number}",
        title=title,
        description=description,
        publisher=Agent(name=desc.controller, email=desc.contact),
        population=desc.population
        or f"{built.stats.get('individuals', 0):,} bénéficiaires de l'assurance maladie".replace(
            ",", " "
        ),
        temporal_start=built.stats.get("temporal_start"),
        temporal_end=built.stats.get("temporal_end"),
        records=built.stats.get("records"),
        individuals=built.stats.get("individuals"),
        tables=[data_dictionary(t, built.manifest["tables"][t]["rows"]) for t in tables],
        coding_systems=_coding_systems(tables),
        access_rights="restricted",
        legal_basis=desc.legal_basis,
        synthetic=synthetic,
        quality=_quality_summary(built.quality),
        keywords=list(desc.keywords) or ["SNDS", "DCIR", "PMSI"],
        issued=now,
        modified=now,
    )
    return record.model_dump(mode="json")


def rebuild_record(previous: dict[str, Any], number: int, built: Any) -> dict[str, Any]:
    """The record of a version derived from ``previous`` (e.g. opt-outs applied)."""
    record = DatasetRecord.model_validate(previous)
    now = datetime.now(UTC)
    counts = {t: v["rows"] for t, v in built.manifest["tables"].items()}
    updated = record.model_copy(
        update={
            "version": f"v{number}",
            "records": built.stats.get("records"),
            "individuals": built.stats.get("individuals"),
            "tables": [t.model_copy(update={"rows": counts.get(t.name)}) for t in record.tables],
            "quality": _quality_summary(built.quality),
            "modified": now,
        }
    )
    return DatasetRecord.model_validate(updated.model_dump()).model_dump(mode="json")
