"""DCAT-AP / HealthDCAT-AP export of the catalogue, and its SHACL validation.

Owns the JSON-LD serialisation of ``DatasetRecord``s as a ``dcat:Catalog``
(one ``dcat:Dataset`` per dataset version, one ``dcat:Distribution`` per
table) and ``validate_dcat``, which checks an export against the shipped
DCAT-AP 3.0.1 SHACL shapes (``shapes/``, CC-BY 4.0, see its ORIGIN.md) plus
HDH's own stricter shapes (``shapes/hdh-dcat-extra.ttl``: typed dates and
counts, which DCAT-AP leaves as plain literals).

Mapping choices
    * Titles and descriptions are language-tagged: French always, English
      when the record has a translation.
    * Objects that DCAT-AP's range shapes require to be typed (themes, access
      rights, formats, coding systems) are emitted as typed nodes, because the
      validator sees only this document, not the EU vocabularies.
    * ``dct:type`` flags synthetic data (as Health-RI does) with the EU
      dataset-type concept ``SYNTHETIC_DATA``.
    * Coding systems use Wikidata property URIs when known (ICD-10 = P494),
      otherwise an HDH URI under the base URL; each is a ``dct:Standard``.
    * The data-quality outcome is a ``dqv:QualityAnnotation`` (text) plus two
      ``dqv:QualityMeasurement``s (checks passed, checks failed).
    * The legal basis is a ``dpv:LegalBasis`` node carrying the text.

Validation parses the shapes once per process (``functools.cache``); a
catalogue of a few datasets validates in about a second.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import pyshacl
from rdflib import Graph
from rdflib.namespace import SH

from jupyterlab_hdh.catalogue.records import (
    DATA_THEME_BASE,
    Agent,
    DatasetRecord,
    QualitySummary,
    normalise_base_url,
)

__all__ = [
    "CONTEXT",
    "PARQUET_FILE_TYPE",
    "PARQUET_MEDIA_TYPE",
    "SHAPE_FILES",
    "shapes_graph",
    "to_graph",
    "to_jsonld",
    "validate_dcat",
]

SHAPES_PACKAGE = "jupyterlab_hdh.catalogue.shapes"
#: Shape files combined into one shapes graph: the DCAT-AP constraints, the
#: DCAT-AP range (class) constraints, which re-use the same property-shape
#: IRIs and so merge into them, and HDH's extra datatype checks.
SHAPE_FILES = (
    "dcat-ap-3.0.1-SHACL.ttl",
    "dcat-ap-3.0.1-ranges.ttl",
    "hdh-dcat-extra.ttl",
)

PARQUET_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/PARQUET"
PARQUET_MEDIA_TYPE = "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet"
SYNTHETIC_DATASET_TYPE = (
    "http://publications.europa.eu/resource/authority/dataset-type/SYNTHETIC_DATA"
)
DATA_THEME_SCHEME = "http://publications.europa.eu/resource/authority/data-theme"

#: Labels of the EU data themes (the shapes require a ``skos:prefLabel`` on each concept).
DATA_THEME_LABELS: dict[str, tuple[str, str]] = {
    "AGRI": (
        "Agriculture, pêche, sylviculture et alimentation",
        "Agriculture, fisheries, forestry and food",
    ),
    "ECON": ("Économie et finances", "Economy and finance"),
    "EDUC": ("Éducation, culture et sport", "Education, culture and sport"),
    "ENER": ("Énergie", "Energy"),
    "ENVI": ("Environnement", "Environment"),
    "GOVE": ("Gouvernement et secteur public", "Government and public sector"),
    "HEAL": ("Santé", "Health"),
    "INTR": ("Questions internationales", "International issues"),
    "JUST": (
        "Justice, système juridique et sécurité publique",
        "Justice, legal system and public safety",
    ),
    "OP_DATPRO": ("Données provisoires", "Provisional data"),
    "REGI": ("Régions et villes", "Regions and cities"),
    "SOCI": ("Population et société", "Population and society"),
    "TECH": ("Science et technologie", "Science and technology"),
    "TRAN": ("Transports", "Transport"),
}

#: Wikidata properties identifying coding systems (HealthDCAT-AP asks for Wikidata URIs).
WIKIDATA_CODING_SYSTEMS: dict[str, str] = {
    "ICD-10": "https://www.wikidata.org/entity/P494",
    "CIM-10": "https://www.wikidata.org/entity/P494",
    "ATC": "https://www.wikidata.org/entity/P267",
}

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatap": "http://data.europa.eu/r5r/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dqv": "http://www.w3.org/ns/dqv#",
    "oa": "http://www.w3.org/ns/oa#",
    "dpv": "https://w3id.org/dpv#",
    "healthdcatap": "http://healthdataportal.eu/ns/health#",
    "dct:issued": {"@type": "xsd:dateTime"},
    "dct:modified": {"@type": "xsd:dateTime"},
    "dcat:startDate": {"@type": "xsd:date"},
    "dcat:endDate": {"@type": "xsd:date"},
    "healthdcatap:numberOfRecords": {"@type": "xsd:nonNegativeInteger"},
    "healthdcatap:numberOfUniqueIndividuals": {"@type": "xsd:nonNegativeInteger"},
    "dcat:accessURL": {"@type": "@id"},
    "dcat:landingPage": {"@type": "@id"},
    "vcard:hasEmail": {"@type": "@id"},
    "foaf:homepage": {"@type": "@id"},
    "dqv:isMeasurementOf": {"@type": "@id"},
    "oa:motivatedBy": {"@type": "@id"},
}


def _text(french: str, english: str | None) -> list[dict[str, str]]:
    values = [{"@value": french, "@language": "fr"}]
    if english:
        values.append({"@value": english, "@language": "en"})
    return values


def _theme(code: str) -> dict[str, Any]:
    french, english = DATA_THEME_LABELS.get(code, (code, code))
    return {
        "@id": DATA_THEME_BASE + code,
        "@type": "skos:Concept",
        "skos:inScheme": {"@id": DATA_THEME_SCHEME},
        "skos:prefLabel": [
            {"@value": french, "@language": "fr"},
            {"@value": english, "@language": "en"},
        ],
    }


def _datetime(value: datetime) -> str:
    return value.isoformat()


def _slug(text: str) -> str:
    """URI-safe slug of a name: ``"Agence de sécurité"`` → ``"agence-de-securite"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.casefold()).strip("-") or "x"


def _agent(agent: Agent, node_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": node_id, "@type": "foaf:Agent", "foaf:name": agent.name}
    if agent.url:
        node["foaf:homepage"] = agent.url
    return node


def _contact_point(agent: Agent) -> dict[str, Any]:
    return {
        "@type": ["vcard:Kind", "vcard:Organization"],
        "vcard:fn": agent.name,
        "vcard:hasEmail": f"mailto:{agent.email}",
    }


def _coding_system(name: str, base: str) -> dict[str, Any]:
    uri = WIKIDATA_CODING_SYSTEMS.get(name.upper(), f"{base}/id/coding-system/{_slug(name)}")
    return {"@id": uri, "@type": "dct:Standard", "dct:title": name}


def _quality(quality: QualitySummary, dataset_id: str, base: str) -> dict[str, Any]:
    text = quality.summary or (
        f"{quality.passed} contrôles qualité réussis, {quality.failed} en échec."
    )
    return {
        "dqv:hasQualityAnnotation": {
            "@type": "dqv:QualityAnnotation",
            "oa:hasTarget": {"@id": dataset_id},
            "oa:motivatedBy": "dqv:qualityAssessment",
            "oa:hasBody": {
                "@type": "oa:TextualBody",
                "rdf:value": {"@value": text, "@language": "fr"},
            },
        },
        "dqv:hasQualityMeasurement": [
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": f"{base}/id/quality-metric/{metric}",
                "dqv:value": {"@value": str(value), "@type": "xsd:nonNegativeInteger"},
            }
            for metric, value in (
                ("checks-passed", quality.passed),
                ("checks-failed", quality.failed),
            )
        ],
    }


def _distribution(record: DatasetRecord, table_index: int, base_url: str) -> dict[str, Any]:
    table = record.tables[table_index]
    page = record.table_page(base_url, table.name)
    node: dict[str, Any] = {
        "@id": f"{record.identifier(base_url)}/distribution/{table.name}",
        "@type": "dcat:Distribution",
        "dct:title": {"@value": f"{table.name} — {table.title}".rstrip(" —"), "@language": "fr"},
        "dcat:accessURL": page,
        "dct:format": {"@id": PARQUET_FILE_TYPE, "@type": "dct:MediaTypeOrExtent"},
        "dcat:mediaType": {"@id": PARQUET_MEDIA_TYPE, "@type": "dct:MediaType"},
        "dct:conformsTo": {
            "@id": f"{page}#schema",
            "@type": "dct:Standard",
            "dct:title": f"Table Schema {table.name}",
        },
        "dct:accessRights": {"@id": record.access_rights_uri, "@type": "dct:RightsStatement"},
    }
    if table.description:
        node["dct:description"] = {"@value": table.description, "@language": "fr"}
    return node


def _dataset(record: DatasetRecord, base_url: str) -> dict[str, Any]:
    base = normalise_base_url(base_url)
    dataset_id = record.identifier(base)
    node: dict[str, Any] = {
        "@id": dataset_id,
        "@type": "dcat:Dataset",
        "dct:title": _text(record.title, record.title_en),
        "dct:description": _text(record.description, record.description_en),
        "dct:identifier": dataset_id,
        "dcat:version": record.version,
        "dcat:landingPage": {"@id": record.landing_page(base), "@type": "foaf:Document"},
        "dct:publisher": _agent(
            record.publisher, f"{base}/id/agent/{_slug(record.publisher.name)}"
        ),
        "dcat:contactPoint": _contact_point(record.publisher),
        "dct:accessRights": {"@id": record.access_rights_uri, "@type": "dct:RightsStatement"},
        "dcat:theme": [_theme(code) for code in record.theme],
        "dct:issued": _datetime(record.issued),
        "dcat:distribution": [_distribution(record, i, base) for i in range(len(record.tables))],
    }
    if record.keywords:
        node["dcat:keyword"] = [{"@value": k, "@language": "fr"} for k in record.keywords]
    if record.modified is not None:
        node["dct:modified"] = _datetime(record.modified)
    if record.temporal_start or record.temporal_end:
        period: dict[str, Any] = {"@type": "dct:PeriodOfTime"}
        if record.temporal_start:
            period["dcat:startDate"] = record.temporal_start.isoformat()
        if record.temporal_end:
            period["dcat:endDate"] = record.temporal_end.isoformat()
        node["dct:temporal"] = period
    if record.synthetic:
        node["dct:type"] = {
            "@id": SYNTHETIC_DATASET_TYPE,
            "@type": "skos:Concept",
            "skos:prefLabel": [
                {"@value": "Données synthétiques", "@language": "fr"},
                {"@value": "Synthetic data", "@language": "en"},
            ],
        }
    if record.population:
        node["healthdcatap:populationCoverage"] = {"@value": record.population, "@language": "fr"}
    if record.records is not None:
        node["healthdcatap:numberOfRecords"] = str(record.records)
    if record.individuals is not None:
        node["healthdcatap:numberOfUniqueIndividuals"] = str(record.individuals)
    if record.coding_systems:
        node["healthdcatap:hasCodingSystem"] = [
            _coding_system(name, base) for name in record.coding_systems
        ]
    if record.legal_basis:
        node["dpv:hasLegalBasis"] = {
            "@type": "dpv:LegalBasis",
            "dct:description": {"@value": record.legal_basis, "@language": "en"},
        }
    if record.quality is not None:
        node.update(_quality(record.quality, dataset_id, base))
    return node


def to_jsonld(
    records: Sequence[DatasetRecord],
    base_url: str,
    *,
    catalog_title: str = "Catalogue du Health Data Hub",
    catalog_description: str = (
        "Jeux de données de santé pseudonymisés accessibles dans l'environnement "
        "sécurisé du Health Data Hub."
    ),
    catalog_publisher: Agent | None = None,
    catalog_modified: datetime | None = None,
) -> dict[str, Any]:
    """The catalogue as a JSON-LD document (a ``dcat:Catalog`` with its datasets).

    ``catalog_publisher`` defaults to the publisher of the first record (or a
    generic HDH agent for an empty catalogue). Output is deterministic: records
    are exported sorted by (name, version).
    """
    base = normalise_base_url(base_url)
    ordered = sorted(records, key=lambda r: r.key)
    keys = [r.key for r in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("two records share the same (name, version)")
    publisher = catalog_publisher or (
        ordered[0].publisher
        if ordered
        else Agent(name="Health Data Hub", email="contact@hdh.invalid")
    )
    datasets = [_dataset(r, base) for r in ordered]
    catalog: dict[str, Any] = {
        "@id": f"{base}/id/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _text(catalog_title, None),
        "dct:description": _text(catalog_description, None),
        "dct:publisher": _agent(publisher, f"{base}/id/agent/{_slug(publisher.name)}"),
        "foaf:homepage": {"@id": f"{base}/catalogue", "@type": "foaf:Document"},
        "dcat:themeTaxonomy": {
            "@id": DATA_THEME_SCHEME,
            "@type": "skos:ConceptScheme",
            "dct:title": {"@value": "Data theme", "@language": "en"},
        },
        "dcat:dataset": datasets,
    }
    if catalog_modified is not None:
        catalog["dct:modified"] = _datetime(catalog_modified)
    return {"@context": dict(CONTEXT), **catalog}


def to_graph(jsonld: dict[str, Any]) -> Graph:
    """Parse a JSON-LD document (with an inline ``@context``) into an rdflib graph."""
    graph = Graph()
    graph.parse(data=json.dumps(jsonld), format="json-ld")
    return graph


@cache
def shapes_graph() -> Graph:
    """The combined SHACL shapes graph, parsed once per process.

    The published 3.0.1 files list a few ``sh:property`` IRIs that neither file
    defines (5 once merged: the generator dropped their definitions but not
    the references); pyshacl rejects such a shapes graph, so those dangling
    references are removed. Every defined constraint is kept.
    """
    graph = Graph()
    base = resources.files(SHAPES_PACKAGE)
    for name in SHAPE_FILES:
        graph.parse(data=base.joinpath(name).read_text("utf-8"), format="turtle")
    dangling = [
        (shape, prop)
        for shape, prop in graph.subject_objects(SH.property)
        if (prop, SH.path, None) not in graph
    ]
    for shape, prop in dangling:
        graph.remove((shape, SH.property, prop))
    return graph


def validate_dcat(jsonld: dict[str, Any]) -> tuple[bool, str]:
    """Validate a JSON-LD export against DCAT-AP 3.0.1 (+ HDH extras).

    Returns ``(conforms, report_text)``; the report names each violated shape,
    focus node and path. A document that is not valid JSON-LD returns
    ``(False, reason)`` rather than raising.
    """
    try:
        data = to_graph(jsonld)
    except Exception as error:  # rdflib raises many types on malformed input
        return False, f"not valid JSON-LD: {error}"
    conforms, _report_graph, report_text = pyshacl.validate(
        data,
        shacl_graph=shapes_graph(),
        inference="none",
        abort_on_first=False,
        allow_warnings=True,
        advanced=False,
    )
    return bool(conforms), str(report_text)
