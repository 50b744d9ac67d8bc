"""Pydantic models of the airlock's routes (``routes/egress.py``, ``routes/bridge.py``):
the bodies a caller sends and the answers it gets, kept apart from the ORM.

What a sandbox writes (a title, a file's path, context and controls, a reason) is short
and typed here (bounds from ``egress.manager``, which checks them again for every caller);
a refusal is a 422 with a one-line ``detail`` naming the field, before anything changes.

The answers mirror the views of ``egress.manager`` (``get_request``, ``list_requests``,
``notifications``) and ``egress.release`` field for field; a key a view leaves out for
some viewers (a file's ``provenance``) is declared with a default and left out of the
answer too (the routes use ``response_model_exclude_unset``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from jupyterlab_hdh.egress.manager import (
    CONTROLS_MAX,
    DESCRIPTION_MAX,
    DOF_MAX,
    PATH_MAX,
    POPULATION_MAX,
    REASON_MAX,
    TITLE_MAX,
    VARIABLE_MAX,
    VARIABLES_MAX,
)

# --- bodies ---------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: str) -> str:
    if _CONTROL.search(value) or any(c in value for c in "\t\n\r"):
        raise ValueError("must be one line, without tabs or control characters")
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not hold control characters")
    return value


OneLine = AfterValidator(_one_line)
NoControl = AfterValidator(_no_control)
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), OneLine]
WorkspacePath = Annotated[str, Field(min_length=1, max_length=PATH_MAX), OneLine]
Population = Annotated[str, Field(max_length=POPULATION_MAX), OneLine]
VariableName = Annotated[str, Field(min_length=1, max_length=VARIABLE_MAX), OneLine]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX), NoControl]
Controls = Annotated[str, Field(max_length=CONTROLS_MAX), NoControl]
WithdrawReason = Annotated[str, Field(max_length=REASON_MAX), NoControl]


class RequestIn(_Body):
    project: str = Field(max_length=100)
    title: Title


class BridgeRequestIn(_Body):
    title: Title


class ContextIn(_Body):
    """What a reviewer needs to know about an output (its text: ``CONTEXT_MAX`` in all)."""

    population: Population | None = None
    variables: (
        Annotated[list[VariableName], Field(max_length=VARIABLES_MAX)] | VariableName | None
    ) = None
    degrees_of_freedom: Annotated[StrictInt, Field(ge=0, le=DOF_MAX)] | None = None
    description: Description | None = None


class FileIn(_Body):
    path: WorkspacePath
    role: Literal["output", "supporting", "code"] = "output"
    # an object (population, variables, degrees_of_freedom, description), or free text
    context: ContextIn | Description | None = None
    controls: Controls = ""


class ReasonIn(_Body):
    reason: str = Field(default="", max_length=10_000)


class WithdrawIn(_Body):
    """The author's reason to withdraw (also what a sandbox may send)."""

    reason: WithdrawReason = ""


class VoteIn(_Body):
    path: str = Field(max_length=1024)
    decision: Literal["approve", "changes", "reject"]
    exception_reason: str | None = Field(default=None, max_length=10_000)


class ExceptionIn(_Body):
    path: str = Field(max_length=1024)
    reason: str = Field(max_length=10_000)


class CommentIn(_Body):
    body: str = Field(max_length=10_000)
    visibility: Literal["public", "private"] = "public"
    path: str | None = Field(default=None, max_length=1024)


class ReadIn(_Body):
    ids: list[int] | None = None  # None: all


def file_context(value: ContextIn | str | None) -> dict[str, Any] | None:
    """Free text (the JupyterLab panel sends a text box) is the context's description."""
    if isinstance(value, str):
        return {"description": value} if value.strip() else None
    return None if value is None else value.model_dump(exclude_unset=True)


# --- answers --------------------------------------------------------------------------------------


class _RequestHead(BaseModel):
    id: int
    project: str
    title: str
    author: str
    state: str
    round: int
    created_at: str | None
    updated_at: str | None
    decided_by: str | None


class RequestSummaryOut(_RequestHead):
    """A request in a list (``manager.list_requests``), with the review queue's fields for
    the caller."""

    files: int = Field(description="how many files the request holds")
    submitted_at: str | None = Field(
        description="when the current round entered review (null: never submitted)"
    )
    reviewers: list[str] = Field(
        description="the reviewers who voted in this round, names only (never their decisions);"
        " empty for project members"
    )
    awaiting_me: bool = Field(
        description="the caller is a reviewer of this request and an output file that still"
        " takes votes has none of theirs"
    )


class VoteOut(BaseModel):
    reviewer: str
    decision: str
    sha256: str
    at: str | None


class ExceptionOut(BaseModel):
    reviewer: str
    reason: str
    sha256: str


class FileOut(BaseModel):
    """A file of a request, as its viewer may see it (votes blinded until both are in)."""

    path: str
    role: str
    sha256: str
    size: int
    mtime: str | None
    snapshot_at: str | None
    added_by: str
    context: dict[str, Any] | None = Field(
        description="population, variables, degrees_of_freedom, description (as given)"
    )
    controls: str
    check_status: str | None
    check_report: dict[str, Any] | None = Field(
        description="the automated checks' report (``hdh.disclosure``): open, its keys vary with"
        " the kind of file; for project members, the redacted form (``redacted: true``)"
    )
    vote_count: int
    votes: list[VoteOut]
    exceptions: list[ExceptionOut]
    provenance: list[dict[str, Any]] | None = Field(
        default=None,
        description="reviewers and operators only (absent for others): the file, then the"
        " audited executions and notebook saves before its snapshot, each an object with its"
        " ``kind`` (file, execution, notebook) and that kind's fields",
    )


class CommentOut(BaseModel):
    author: str
    visibility: str
    path: str | None
    body: str
    round: int
    at: str | None


class ReleasedOut(BaseModel):
    name: str = Field(description="the outbox name (and the download address's last part)")
    filename: str = Field(description="the name to save it under")
    path: str
    sha256: str
    done: bool


class RequestOut(_RequestHead):
    """A request as ``actor`` sees it (``manager.get_request``)."""

    files: list[FileOut]
    comments: list[CommentOut]
    viewer: str = Field(description="how the caller sees it: member, reviewer or operator")
    released: list[ReleasedOut]


class ReleaseOut(RequestOut):
    release_complete: bool = Field(description="every file was copied to the outbox")


class VoteResultOut(BaseModel):
    path: str
    decision: str
    sha256: str
    state: str = Field(description="the request's state after the vote")


class ExceptionResultOut(BaseModel):
    path: str
    reason: str
    sha256: str


class CommentResultOut(BaseModel):
    author: str
    visibility: str
    path: str | None


class ReleasedFileOut(BaseModel):
    name: str
    filename: str
    path: str
    sha256: str


class NotificationOut(BaseModel):
    id: int
    request_id: int | None
    link: str | None = Field(
        default=None, description="the page it is about, under the control plane's URL"
    )
    kind: str
    subject: str
    body: str
    created_at: str | None
    read_at: str | None


class MarkedOut(BaseModel):
    marked: int


class ChecksOut(BaseModel):
    checks: dict[str, Any] = Field(
        description="every setting of the disclosure checks (``airlock.toml``'s [checks],"
        " ``hdh.disclosure.config.CheckConfig``) by name: thresholds, lists, switches"
    )
