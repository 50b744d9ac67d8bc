"""Pydantic models at the API edge (requests and responses), kept apart from the ORM."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from jupyterlab_hdh.catalogue.records import DatasetRecord


class ErrorOut(BaseModel):
    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str


# --- the catalogue ------------------------------------------------------------------------------

if TYPE_CHECKING:

    class DatasetSummaryOut(BaseModel):
        """A current dataset version in the catalogue's list: its record without the tables."""

else:
    #: made from the record's own fields (``catalogue.records.DatasetRecord``, all but
    #: ``tables``), so the two never drift apart
    DatasetSummaryOut = create_model(
        "DatasetSummaryOut",
        __doc__="A current dataset version in the catalogue's list: its record without the tables.",
        **{
            name: (f.annotation, f)
            for name, f in DatasetRecord.model_fields.items()
            if name != "tables"
        },
    )


class VersionRowOut(BaseModel):
    """One version of a dataset, current or superseded."""

    version: str
    status: str
    created_at: str
    records: int | None
    individuals: int | None
    content_sha256: str


class DatasetOut(DatasetRecord):
    """The current version's record, and every version of the dataset."""

    versions: list[VersionRowOut]


class QualityReportOut(BaseModel):
    """A version's data-quality report (``data/quality.py``): one result per check, each an
    object with the check's own fields (``check_id``, ``status``, ``violated``, ``pct``…),
    and the summary (``passed``, ``failed``…). Open: reports of older versions may carry
    other keys, which are passed on as they are."""

    model_config = ConfigDict(extra="allow")

    generated_at: str | None = None
    control_file: str | None = None
    tables: list[str] | None = None
    checks: list[dict[str, Any]] | None = None
    summary: dict[str, Any] | None = None


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


class PermitMoveOut(BaseModel):
    permit: int
    new_permit: int | None = Field(description="The re-issued permit, or null if it was revoked")
    outcome: str


class ReapplyOut(BaseModel):
    outcomes: dict[str, str]
    permits: list[PermitMoveOut] = Field(
        default_factory=list,
        description="Active permits moved to the versions without the opted-out persons",
    )


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


# --- projects and permits -----------------------------------------------------------------------


class ProjectIn(BaseModel):
    slug: str = Field(
        min_length=1, max_length=39, description="Lowercase letters, digits, '-' (the sandbox name)"
    )
    title: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=5000)


class MemberIn(BaseModel):
    user: str = Field(min_length=1, max_length=100)
    role: Literal["member", "lead"] = "member"


class MemberOut(BaseModel):
    user: str
    role: str


class MountOut(BaseModel):
    dataset: str
    version: str
    path: str


class PermittedOut(MountOut):
    mounted: bool


class PermitIn(BaseModel):
    members: list[str] = Field(min_length=1, max_length=200)
    datasets: list[str] = Field(
        min_length=1, max_length=100, description="NAME (its current version) or NAME/vN"
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When it ends (with a UTC offset); or give days"
    )
    days: int | None = Field(default=None, ge=1, le=3660, description="Valid for N days from now")
    compute_profile: str | None = Field(
        default=None, description="cpu, gpu or spark (default: the installation's)"
    )


class AmendIn(BaseModel):
    """A change to an active permit (at least one field)."""

    add_members: list[str] = Field(default_factory=list, max_length=200)
    remove_members: list[str] = Field(default_factory=list, max_length=200)
    add_datasets: list[str] = Field(
        default_factory=list, max_length=100, description="NAME (its current version) or NAME/vN"
    )
    remove_datasets: list[str] = Field(
        default_factory=list, max_length=100, description="NAME (every version) or NAME/vN"
    )
    expires_at: AwareDatetime | None = Field(default=None, description="A new end")
    days: int | None = Field(default=None, ge=1, le=3660, description="Or: N days from now")
    compute_profile: str | None = Field(default=None, description="A new compute profile")


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class PermitOut(BaseModel):
    id: int
    project: str
    status: str
    issued_by: str
    issued_at: str
    expires_at: str
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None
    compute_profile: str | None = Field(
        default=None, description="the compute profile its sandboxes run with (None: default)"
    )
    members: list[str]
    mounts: list[MountOut] = Field(description="what a member mounts by default (newest version)")
    datasets: list[MountOut] = Field(description="every dataset version the permit grants")


class ProjectOut(BaseModel):
    slug: str
    title: str
    purpose: str
    created_at: str
    created_by: str
    members: list[MemberOut]
    permits: list[PermitOut]


class AccessOut(BaseModel):
    user: str
    project: str
    permit: int
    expires_at: str
    mounts: list[MountOut] = Field(description="what this member's sandbox mounts")
    permitted: list[PermittedOut] = Field(
        description="every dataset version the permit grants, and whether it is mounted"
    )


class MountsIn(BaseModel):
    versions: list[str] = Field(
        max_length=100,
        description="NAME/vN of each version to mount; empty: the newest of each dataset",
    )


class AccessDeniedOut(BaseModel):
    detail: str
    reason: str
