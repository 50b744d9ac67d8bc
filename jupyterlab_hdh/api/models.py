"""Pydantic models at the API edge (requests and responses), kept apart from the ORM."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    detail: str


class IngestRequest(BaseModel):
    source: str = Field(
        description="Folder of the extract, relative to the data directory's incoming/ folder",
        min_length=1,
        max_length=500,
    )
    identifiers: Literal["auto", "raw", "pseudonymised"] = "auto"
    title: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=5000)
    controller: str | None = Field(default=None, max_length=300)
    contact: str | None = Field(default=None, max_length=254)
    population: str | None = Field(default=None, max_length=1000)
    synthetic: bool | None = None


class VersionOut(BaseModel):
    dataset: str
    version: str
    status: str
    records: int | None
    individuals: int | None
    content_sha256: str
    quality: dict[str, Any]


class OptOutRequest(BaseModel):
    identifier: str = Field(
        min_length=1, max_length=40, description="The person's raw NIR-like identifier"
    )


class OptOutOut(BaseModel):
    register_id: int
    added: bool


class ReapplyOut(BaseModel):
    outcomes: dict[str, str]


class HitOut(BaseModel):
    kind: str
    dataset: str
    version: str
    table: str | None
    variable: str | None
    score: float
    snippet: str
    field: str


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    broken_seq: int | None
    reason: str


class AuditEventOut(BaseModel):
    seq: int
    ts: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    hash: str
