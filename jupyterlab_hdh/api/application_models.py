"""Pydantic models of the access desk's routes (``routes/applications.py``): the bodies a
caller sends and the answers it gets, kept apart from the ORM.

A body is bounded here (the limits of ``governance.applications`` and
``governance.projects``), and an unknown field is refused, before anything changes; the
domain checks every value again for every caller (a slug, a dataset, an account) and says
what is wrong in one line.

The answers mirror :func:`~jupyterlab_hdh.governance.applications.view` and
:func:`~jupyterlab_hdh.governance.applications.summary` field for field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from jupyterlab_hdh.governance.applications import (
    MAX_DAYS,
    OPINION_MAX,
    REFERENCE_MAX,
    TEXT_MAX,
    Draft,
    Revision,
)
from jupyterlab_hdh.governance.projects import PURPOSE_MAX, TITLE_MAX

# --- bodies ---------------------------------------------------------------------------------------

Kind = Literal["new", "renewal", "amendment"]
OpinionKind = Literal["favourable", "unfavourable", "changes_requested"]
DecisionKind = Literal["favourable", "unfavourable"]
UserName = Annotated[str, Field(min_length=1, max_length=100)]
DatasetSpec = Annotated[str, Field(min_length=1, max_length=200)]
Datasets = Annotated[
    list[DatasetSpec],
    Field(max_length=100, description="NAME (its current version) or NAME/vN"),
]
Members = Annotated[
    list[UserName],
    Field(max_length=200, description="researchers with an account (the applicant aside)"),
]
Title = Annotated[str, Field(max_length=TITLE_MAX)]
Purpose = Annotated[str, Field(max_length=PURPOSE_MAX)]
LongText = Annotated[str, Field(max_length=TEXT_MAX)]
Days = Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)]
Profile = Annotated[str, Field(max_length=32, description="cpu, gpu or spark")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationIn(_Body):
    """An application: a ``new`` project, the ``renewal`` of a project's permit, or an
    ``amendment`` of its active permit (what it adds; no duration)."""

    kind: Kind
    project: str = Field(
        min_length=1, max_length=39, description="the project's slug (a new one for 'new')"
    )
    title: Title
    purpose: Purpose
    public_interest: LongText
    methodology: LongText
    datasets: Datasets = Field(default_factory=list)
    members: Members = Field(default_factory=list)
    duration_days: Days | None = Field(
        default=None, description="how long the permit lasts (none for an amendment)"
    )
    compute_profile: Profile | None = Field(
        default=None, description="cpu, gpu or spark (default: cpu; an amendment: unchanged)"
    )
    applicant: UserName | None = Field(
        default=None,
        description="who applies (default: the caller); only an administrator applies for someone",
    )

    def draft(self) -> Draft:
        return Draft(
            kind=self.kind,
            project=self.project,
            title=self.title,
            purpose=self.purpose,
            public_interest=self.public_interest,
            methodology=self.methodology,
            datasets=tuple(self.datasets),
            members=tuple(self.members),
            duration_days=self.duration_days,
            compute_profile=self.compute_profile,
        )


class RevisionIn(_Body):
    """The applicant's answer to a request for changes (a field left out: unchanged)."""

    title: Title | None = None
    purpose: Purpose | None = None
    public_interest: LongText | None = None
    methodology: LongText | None = None
    datasets: Datasets | None = None
    members: Members | None = None
    duration_days: Days | None = None
    compute_profile: Profile | None = None
    note: str = Field(default="", max_length=OPINION_MAX, description="what changed, and why")

    def revision(self) -> Revision:
        return Revision(
            title=self.title,
            purpose=self.purpose,
            public_interest=self.public_interest,
            methodology=self.methodology,
            datasets=None if self.datasets is None else tuple(self.datasets),
            members=None if self.members is None else tuple(self.members),
            duration_days=self.duration_days,
            compute_profile=self.compute_profile,
            note=self.note,
        )


class OpinionIn(_Body):
    opinion: OpinionKind
    text: str = Field(max_length=OPINION_MAX)
    member: UserName | None = Field(
        default=None,
        description="the committee member whose opinion it is (default: the caller); only an"
        " administrator records one for someone",
    )


class DecisionIn(_Body):
    """The authority's decision; a favourable one issues the permit."""

    decision: DecisionKind
    reference: str = Field(max_length=REFERENCE_MAX, description="the decision's reference")
    text: str = Field(default="", max_length=TEXT_MAX)


# --- answers --------------------------------------------------------------------------------------


class OpinionOut(BaseModel):
    member: str | None = Field(
        description="who gave it; null for the applicant's team (unless it is the viewer's)"
    )
    opinion: str
    text: str
    round: int
    at: str | None


class ApplicationSummaryOut(BaseModel):
    """One line of the list."""

    id: int
    kind: str
    project: str
    applicant: str
    title: str
    state: str = Field(description="submitted, changes_requested, approved, rejected or withdrawn")
    round: int
    submitted_at: str | None
    updated_at: str | None
    decision_reference: str | None
    permit: int | None = Field(description="the permit a favourable decision issued")


class ApplicationOut(BaseModel):
    """An application as the caller may see it."""

    id: int
    kind: str
    project: str
    applicant: str
    submitted_by: str = Field(description="the applicant, or the operator who filed it")
    title: str
    purpose: str
    public_interest: str
    methodology: str
    datasets: list[str]
    members: list[str]
    duration_days: int | None
    compute_profile: str | None
    state: str = Field(description="submitted, changes_requested, approved, rejected or withdrawn")
    round: int = Field(description="times submitted")
    submitted_at: str | None
    updated_at: str | None
    opinions: list[OpinionOut]
    decision: str | None
    decision_reference: str | None
    decision_text: str | None
    decided_by: str | None
    decided_at: str | None
    permit: int | None = Field(description="the permit a favourable decision issued")
    actions: list[str] = Field(
        description="what the caller may do now: revise, withdraw, opinion, decide"
    )
