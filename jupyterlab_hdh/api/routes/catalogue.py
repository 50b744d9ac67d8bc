"""The catalogue: public and read-only (``/api/catalogue/...``), and the pages the DCAT
export links to (``/catalogue/...``: landing and table pages), with the same answers as
the API routes, so every URL a harvester finds resolves.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from jupyterlab_hdh.api import models
from jupyterlab_hdh.api.deps import Config, Db
from jupyterlab_hdh.catalogue import manager as catalogue
from jupyterlab_hdh.catalogue.dictionary import dictionary_csv
from jupyterlab_hdh.catalogue.records import DatasetRecord, TableRecord

router = APIRouter(tags=["catalogue"])

Format = Annotated[str, Query(pattern="^(json|csv)$")]
#: a table's data dictionary: JSON (``TableRecord``) or, with ``format=csv``, CSV
DICTIONARY: dict[str, Any] = {
    "response_model": TableRecord,
    "responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
}


@router.get("/api/catalogue/datasets", response_model=list[models.DatasetSummaryOut])
def list_datasets(s: Db) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", exclude={"tables"}) for r in catalogue.records(s)]


@router.get("/api/catalogue/datasets/{name}")
def get_dataset(name: str, s: Db) -> models.DatasetOut:
    out: dict[str, Any] = catalogue.get_record(s, name).model_dump(mode="json")
    out["versions"] = catalogue.versions(s, name)
    return models.DatasetOut.model_validate(out)


@router.get("/api/catalogue/datasets/{name}/versions/{version}")
def get_version(name: str, version: str, s: Db) -> DatasetRecord:
    return catalogue.get_record(s, name, version)


@router.get(
    "/api/catalogue/datasets/{name}/versions/{version}/quality",
    response_model=models.QualityReportOut,
    response_model_exclude_unset=True,
)
def get_quality(name: str, version: str, s: Db) -> dict[str, Any]:
    return catalogue.version_row(s, name, version).quality


@router.get("/api/catalogue/datasets/{name}/versions/{version}/tables/{table}", **DICTIONARY)
def get_dictionary(name: str, version: str, table: str, s: Db, format: Format = "json") -> Response:
    record = catalogue.get_record(s, name, version)
    try:
        table_record = record.table(table)
    except KeyError:
        raise catalogue.NotInCatalogue(f"{name} {version} has no table {table!r}") from None
    if format == "csv":
        return PlainTextResponse(dictionary_csv(table_record), media_type="text/csv; charset=utf-8")
    return JSONResponse(table_record.model_dump(mode="json"))


@router.get("/api/catalogue/search")
def search(
    s: Db,
    cfg: Config,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[models.HitOut]:
    try:
        hits = cfg.catalogue.search(s, q, limit)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return [models.HitOut(**asdict(h)) for h in hits]


@router.get(
    "/api/catalogue/dcat.jsonld",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}}},
)
def dcat(s: Db, cfg: Config) -> Response:
    """The catalogue as DCAT (HealthDCAT-AP) in JSON-LD."""
    body = json.dumps(cfg.catalogue.dcat(s, cfg.base_url), ensure_ascii=False, indent=1)
    return Response(body, media_type="application/ld+json")


@router.get(
    "/catalogue",
    summary="DCAT: the catalogue's homepage",
    response_model=list[models.DatasetSummaryOut],
)
def catalogue_home(s: Db) -> list[dict[str, Any]]:
    return list_datasets(s)


@router.get("/catalogue/{name}/{version}", summary="DCAT: a version's landing page")
def catalogue_landing(name: str, version: str, s: Db) -> DatasetRecord:
    return get_version(name, version, s)


@router.get(
    "/catalogue/{name}/{version}/tables/{table}",
    summary="DCAT: a table's access URL (its data dictionary)",
    **DICTIONARY,
)
def catalogue_table(
    name: str, version: str, table: str, s: Db, format: Format = "json"
) -> Response:
    return get_dictionary(name, version, table, s, format)
