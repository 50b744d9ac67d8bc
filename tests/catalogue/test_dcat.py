"""DCAT-AP / HealthDCAT-AP JSON-LD export and its SHACL validation."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib import namespace as rdf_namespaces
from rdflib.term import Node

from jupyterlab_hdh.catalogue.dcat import (
    PARQUET_FILE_TYPE,
    shapes_graph,
    to_graph,
    to_jsonld,
    validate_dcat,
)
from jupyterlab_hdh.catalogue.records import DatasetRecord

from . import BASE_URL, sample_records

HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
DPV = Namespace("https://w3id.org/dpv#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
# Plain namespaces: pytest's collection probes module attributes, and rdflib's
# closed namespaces warn on every unknown name it asks for.
DCAT = Namespace(str(rdf_namespaces.DCAT))
DCTERMS = Namespace(str(rdf_namespaces.DCTERMS))
FOAF = Namespace(str(rdf_namespaces.FOAF))
RDF = Namespace(str(rdf_namespaces.RDF))
XSD = Namespace(str(rdf_namespaces.XSD))


@pytest.fixture(scope="module")
def records() -> list[DatasetRecord]:
    return sample_records()


@pytest.fixture(scope="module")
def export(records: list[DatasetRecord]) -> dict[str, Any]:
    return to_jsonld(records, BASE_URL)


def literal(graph: Graph, subject: Node | None, predicate: URIRef) -> Literal:
    """The single literal value of ``predicate`` on ``subject`` (asserts it is one)."""
    value = graph.value(subject, predicate)
    assert isinstance(value, Literal), f"{predicate} on {subject}: {value!r}"
    return value


def test_realistic_export_conforms(export: dict[str, Any]) -> None:
    shapes_graph()  # parse the shapes outside the timed part
    started = time.perf_counter()
    conforms, report = validate_dcat(export)
    elapsed = time.perf_counter() - started
    print(f"validate_dcat: {elapsed:.3f}s for {len(export['dcat:dataset'])} datasets")
    assert conforms, report
    assert elapsed < 10


def test_larger_catalogue_validates_quickly(records: list[DatasetRecord]) -> None:
    many = [records[0].model_copy(update={"version": f"2024.{i}"}) for i in range(1, 41)] + records[
        2:
    ]
    document = to_jsonld(many, BASE_URL)
    shapes_graph()
    started = time.perf_counter()
    conforms, report = validate_dcat(document)
    elapsed = time.perf_counter() - started
    distributions = sum(len(r.tables) for r in many)
    print(f"validate_dcat: {elapsed:.2f}s for {len(many)} datasets, {distributions} distributions")
    assert conforms, report
    assert elapsed < 30


def test_export_is_plain_json_and_deterministic(records: list[DatasetRecord]) -> None:
    first = json.dumps(to_jsonld(records, BASE_URL), sort_keys=True)
    again = json.dumps(to_jsonld(list(reversed(records)), BASE_URL.rstrip("/")), sort_keys=True)
    assert first == again


def test_round_trip_counts_with_rdflib(
    export: dict[str, Any], records: list[DatasetRecord]
) -> None:
    graph = to_graph(json.loads(json.dumps(export)))
    catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
    assert len(catalogs) == 1
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {URIRef(r.identifier(BASE_URL)) for r in records}
    assert set(graph.objects(catalogs[0], DCAT.dataset)) == datasets
    for record in records:
        subject = URIRef(record.identifier(BASE_URL))
        distributions = list(graph.objects(subject, DCAT.distribution))
        assert len(distributions) == len(record.tables)
        for distribution in distributions:
            assert graph.value(distribution, DCTERMS["format"]) == URIRef(PARQUET_FILE_TYPE)
            assert graph.value(distribution, DCAT.accessURL) is not None
        assert graph.value(subject, HEALTH.numberOfRecords) == Literal(
            record.records, datatype=XSD.nonNegativeInteger
        )
        assert int(literal(graph, subject, HEALTH.numberOfUniqueIndividuals)) == record.individuals
        issued = literal(graph, subject, DCTERMS.issued)
        assert issued.datatype == XSD.dateTime and issued.toPython() == record.issued
        period = graph.value(subject, DCTERMS.temporal)
        assert graph.value(period, RDF.type) == DCTERMS.PeriodOfTime
        assert literal(graph, period, DCAT.startDate).toPython() == record.temporal_start
        assert literal(graph, period, DCAT.endDate).toPython() == record.temporal_end
        titles = {
            (t.language, str(t))
            for t in graph.objects(subject, DCTERMS["title"])
            if isinstance(t, Literal)
        }
        assert ("fr", record.title) in titles
        if record.title_en:
            assert ("en", record.title_en) in titles
        keywords = {str(k) for k in graph.objects(subject, DCAT.keyword)}
        assert keywords == set(record.keywords)
        assert len(list(graph.objects(subject, HEALTH.hasCodingSystem))) == len(
            record.coding_systems
        )
        assert graph.value(subject, DCTERMS.accessRights) == URIRef(record.access_rights_uri)
        publisher = graph.value(subject, DCTERMS.publisher)
        assert graph.value(publisher, RDF.type) == FOAF.Agent
        assert str(graph.value(publisher, FOAF.name)) == record.publisher.name


def test_health_extras(export: dict[str, Any], records: list[DatasetRecord]) -> None:
    graph = to_graph(export)
    snds = URIRef(records[0].identifier(BASE_URL))
    assert URIRef("https://www.wikidata.org/entity/P494") in set(
        graph.objects(snds, HEALTH.hasCodingSystem)
    )
    assert graph.value(snds, HEALTH.populationCoverage) is not None
    assert graph.value(snds, DQV.hasQualityAnnotation) is not None
    measurements = list(graph.objects(snds, DQV.hasQualityMeasurement))
    assert sorted(int(literal(graph, m, DQV.value)) for m in measurements) == [2, 47]
    legal_basis = graph.value(snds, DPV.hasLegalBasis)
    assert "9(2)(j)" in str(graph.value(legal_basis, DCTERMS.description))
    assert graph.value(snds, DCTERMS.type) is not None  # synthetic flag
    not_synthetic = URIRef(records[2].identifier(BASE_URL))
    assert graph.value(not_synthetic, DCTERMS.type) is None
    themes = set(graph.objects(snds, DCAT.theme))
    assert URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL") in themes


def test_missing_title_does_not_conform(export: dict[str, Any]) -> None:
    broken = copy.deepcopy(export)
    del broken["dcat:dataset"][0]["dct:title"]
    conforms, report = validate_dcat(broken)
    assert not conforms
    assert "MinCountConstraintComponent" in report
    assert "dct:title" in report
    assert broken["dcat:dataset"][0]["@id"] in report


def test_missing_distribution_access_url_does_not_conform(export: dict[str, Any]) -> None:
    broken = copy.deepcopy(export)
    del broken["dcat:dataset"][0]["dcat:distribution"][0]["dcat:accessURL"]
    conforms, report = validate_dcat(broken)
    assert not conforms
    assert "dcat:accessURL" in report


@pytest.mark.parametrize(
    "mutate, named",
    [
        (lambda d: d.update({"dct:issued": "2024-13-45T99:00:00"}), "dct:issued"),
        (lambda d: d["dct:temporal"].update({"dcat:startDate": "01/01/2019"}), "dcat:startDate"),
        (lambda d: d.update({"healthdcatap:numberOfRecords": "-5"}), "numberOfRecords"),
    ],
    ids=["issued", "start-date", "negative-count"],
)
def test_malformed_values_do_not_conform(export: dict[str, Any], mutate: Any, named: str) -> None:
    broken = copy.deepcopy(export)
    mutate(broken["dcat:dataset"][0])
    conforms, report = validate_dcat(broken)
    assert not conforms
    assert named in report


def test_untyped_contact_point_does_not_conform(export: dict[str, Any]) -> None:
    broken = copy.deepcopy(export)
    broken["dcat:dataset"][0]["dcat:contactPoint"]["@type"] = "foaf:Person"
    conforms, report = validate_dcat(broken)
    assert not conforms
    assert "vcard:Kind" in report


def test_not_json_ld_is_reported_not_raised() -> None:
    conforms, report = validate_dcat({"@context": 42})
    assert not conforms
    assert "JSON-LD" in report


def test_empty_catalogue_conforms() -> None:
    conforms, report = validate_dcat(to_jsonld([], BASE_URL))
    assert conforms, report


def test_duplicate_versions_rejected(records: list[DatasetRecord]) -> None:
    with pytest.raises(ValueError, match="same"):
        to_jsonld([records[0], records[0]], BASE_URL)
