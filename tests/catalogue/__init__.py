"""Tests of the catalogue domain layer, and a realistic record set they share."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from jupyterlab_hdh.catalogue.dictionary import data_dictionary
from jupyterlab_hdh.catalogue.records import Agent, DatasetRecord, QualitySummary, TableRecord
from jupyterlab_hdh.data.snds_schemas import UnknownTableError

BASE_URL = "https://hdh.example.org/"

#: Tables of the synthetic SNDS extract; the HDH tables may not be registered yet.
SNDS_TABLES = (
    "IR_BEN_R",
    "ER_PRS_F",
    "ER_PHA_F",
    "ER_CAM_F",
    "IR_IMB_R",
    "KI_CCI_R",
    "IR_PHA_R",
    "T_MCO23A",
    "T_MCO23B",
    "T_MCO23C",
    "HDH_PV_CAS",
    "HDH_DEV_TLM",
)

CNAM = Agent(name="Caisse nationale de l'Assurance Maladie", email="snds@assurance-maladie.example")
ANSM = Agent(
    name="Agence nationale de sécurité du médicament",
    email="pharmacovigilance@ansm.example",
    url="https://ansm.example",
)


def registered_tables(names: tuple[str, ...] = SNDS_TABLES, rows: int = 1000) -> list[TableRecord]:
    """Dictionaries of the tables that have a registered schema (others skipped)."""
    tables = []
    for name in names:
        try:
            tables.append(data_dictionary(name, row_count=rows))
        except UnknownTableError:
            continue
    return tables


def sample_records() -> list[DatasetRecord]:
    """Three dataset versions shaped like HDH's catalogue."""
    snds: dict[str, Any] = dict(
        name="snds-synthetique",
        title="SNDS synthétique — échantillon de bénéficiaires",
        title_en="Synthetic SNDS — beneficiary sample",
        description=(
            "Extrait synthétique du Système national des données de santé : "
            "consommation de soins de ville (DCIR), hospitalisations MCO (PMSI) "
            "et causes médicales de décès."
        ),
        description_en="Synthetic extract of the French national health data system.",
        publisher=CNAM,
        population="Bénéficiaires de l'Assurance Maladie, tous régimes, France entière",
        temporal_start=date(2019, 1, 1),
        temporal_end=date(2023, 12, 31),
        records=1_250_000,
        individuals=10_000,
        tables=registered_tables(),
        coding_systems=["ICD-10", "ATC", "CIP13", "CCAM", "GHM"],
        access_rights="restricted",
        legal_basis=("GDPR art. 6(1)(e) and 9(2)(j); French public health code L1461-3"),
        synthetic=True,
        quality=QualitySummary(passed=47, failed=2, summary="2 contrôles de plausibilité en échec"),
        keywords=["décès", "hospitalisation", "médicament", "SNDS"],
        issued=datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        modified=datetime(2024, 6, 15, 14, 0, tzinfo=UTC),
    )
    return [
        DatasetRecord(version="2024.1", **snds),
        DatasetRecord(
            **{**snds, "version": "2023.2", "modified": None, "quality": None, "title_en": None}
        ),
        DatasetRecord(
            name="pharmacovigilance",
            version="1",
            title="Cas de pharmacovigilance déclarés",
            description="Déclarations d'effets indésirables médicamenteux, codées en MedDRA.",
            publisher=ANSM,
            population="Patients ayant fait l'objet d'une déclaration",
            temporal_start=date(2020, 1, 1),
            temporal_end=date(2022, 12, 31),
            records=5_000,
            individuals=4_200,
            tables=registered_tables(("HDH_PV_CAS", "IR_PHA_R"), rows=5_000),
            coding_systems=["ATC", "MedDRA"],
            legal_basis="GDPR art. 6(1)(e) and 9(2)(i)",
            synthetic=False,
            keywords=["effet indésirable", "pharmacovigilance"],
            issued=datetime(2024, 1, 10, tzinfo=UTC),
        ),
    ]
