"""SQLAlchemy ORM models of the control plane's state.

Owns the table definitions only; behaviour lives in the services (audit,
governance, data, catalogue). The schema is created and evolved by the
Alembic migrations in ``migrations/``, never by ``create_all`` outside tests of
the migrations themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Role(StrEnum):
    """A person's role on the platform (``users.role``); members compare equal to the text."""

    RESEARCHER = "researcher"
    REVIEWER = "reviewer"
    COMMITTEE = "committee"
    DATA_CONTROLLER = "data_controller"
    ADMIN = "admin"


ROLES = tuple(r.value for r in Role)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """Installation-wide facts, e.g. the fingerprint of the pseudonymisation keys."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditHead(Base):
    """One row: the sequence number and hash of the last audit event (the chain's lock)."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """An append-only, hash-chained record of something that happened."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(500))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed as stored
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "scrypt$n$r$p$salt_hex$hash_hex" (governance.accounts); None: no local login
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True, default=None)
    # where the airlock's notifications are e-mailed (None: in-app only, or the SMTP config's)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, default=None)
    # when an administrator disabled the account (None: active); a disabled user can neither
    # log in to the hub nor use an API token (governance.accounts)
    disabled_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, default=None
    )
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A bearer token for the control-plane API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[User] = relationship(back_populates="tokens")


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset", order_by="DatasetVersion.number"
    )


class DatasetVersion(Base):
    """One immutable, versioned Parquet dataset and its catalogue record."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number"),
        UniqueConstraint("dataset_id", "content_sha256"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="current")  # current | superseded
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)  # what it was made from (a path, or "vN")
    source_sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(32))
    optout_seq: Mapped[int] = mapped_column(Integer)  # opt-outs applied: every id <= this
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # catalogue metadata
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)  # files, rows, sha256
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset: Mapped[Dataset] = relationship(back_populates="versions")

    @property
    def label(self) -> str:
        return f"v{self.number}"


class OptOut(Base):
    """A person who objected: only the pseudonym is kept, never the raw identifier."""

    __tablename__ = "optouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    key_fingerprint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


PROJECT_ROLES = ("lead", "member")


class Project(Base):
    """A research project: the unit of a sandbox (JupyterHub named server = slug)."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(39), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    members: Mapped[list[ProjectMember]] = relationship(
        back_populates="project", order_by="ProjectMember.id"
    )
    permits: Mapped[list[Permit]] = relationship(back_populates="project", order_by="Permit.id")


class ProjectMember(Base):
    """A user's membership of a project, with their role in it (lead or member)."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(16))  # one of PROJECT_ROLES
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    added_by: Mapped[str] = mapped_column(String(200))
    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


permit_members = Table(
    "permit_members",
    Base.metadata,
    Column("permit_id", ForeignKey("permits.id"), primary_key=True),
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    # when an amendment added this member (NULL: covered since the permit was issued)
    Column("covered_at", DateTime(timezone=True), nullable=True),
)

permit_datasets = Table(
    "permit_datasets",
    Base.metadata,
    Column("permit_id", ForeignKey("permits.id"), primary_key=True),
    Column("dataset_version_id", ForeignKey("dataset_versions.id"), primary_key=True),
)


class Permit(Base):
    """An authorisation: these members may open this project, with exactly these dataset
    versions mounted, until ``expires_at`` (or until revoked). Never updated except to record
    its revocation; the status is derived from the timestamps."""

    __tablename__ = "permits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    # the compute profile its sandboxes run with (None: the installation's default)
    compute_profile: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
    project: Mapped[Project] = relationship(back_populates="permits")
    members: Mapped[list[User]] = relationship(secondary=permit_members, order_by="User.name")
    dataset_versions: Mapped[list[DatasetVersion]] = relationship(
        secondary=permit_datasets, order_by="DatasetVersion.id"
    )


class MountSelection(Base):
    """A dataset version a member chose to mount in their sandbox of a project.

    Only versions of the project's active permit are ever mounted: a selection outside it is
    ignored. Without a selection for a dataset, its newest permitted version is mounted."""

    __tablename__ = "mount_selections"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), primary_key=True
    )
    selected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- the airlock (egress review, issue 4) -------------------------------------------------------


class EgressRequest(Base):
    """A request to take files out of one project's workspace (see ``egress.manager``)."""

    __tablename__ = "egress_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(32), index=True)  # egress.states.STATES
    round: Mapped[int] = mapped_column(Integer, default=0)  # times submitted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    project: Mapped[Project] = relationship()
    files: Mapped[list[EgressFile]] = relationship(
        back_populates="request", order_by="EgressFile.id", cascade="all, delete-orphan"
    )


class EgressFile(Base):
    """One file of a request: a snapshot (content-addressed blob) of a workspace file."""

    __tablename__ = "egress_files"
    __table_args__ = (UniqueConstraint("request_id", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("egress_requests.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))  # relative to the project workspace
    role: Mapped[str] = mapped_column(String(16))  # output | supporting | code
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)  # a trained model can be over 2 GiB
    mtime: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    snapshot_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(100))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    controls: Mapped[str] = mapped_column(Text)
    check_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    check_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    request: Mapped[EgressRequest] = relationship(back_populates="files")
    votes: Mapped[list[EgressVote]] = relationship(
        order_by="EgressVote.id", cascade="all, delete-orphan"
    )


class EgressVote(Base):
    """A reviewer's vote on one file, bound to the hash it was cast on."""

    __tablename__ = "egress_votes"
    __table_args__ = (UniqueConstraint("file_id", "reviewer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("egress_files.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(16))  # approve | changes | reject
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EgressException(Base):
    """A reviewer's reasoned exception to a failing automated check on one file's content."""

    __tablename__ = "egress_exceptions"
    __table_args__ = (UniqueConstraint("file_id", "reviewer", "sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(
        ForeignKey("egress_files.id", ondelete="CASCADE"), index=True
    )
    reviewer: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EgressComment(Base):
    """A comment on a request or one of its files; private ones are for reviewers only."""

    __tablename__ = "egress_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("egress_requests.id"), index=True)
    file_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    author: Mapped[str] = mapped_column(String(100))
    visibility: Mapped[str] = mapped_column(String(16))  # private | public
    body: Mapped[str] = mapped_column(Text)
    round: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EgressOutbox(Base):
    """One file to copy to the outbox for a release (the transactional outbox)."""

    __tablename__ = "egress_outbox"
    __table_args__ = (UniqueConstraint("request_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("egress_requests.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))  # the request file's workspace path
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(400))  # <sha256>-<basename>
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Notification(Base):
    """An in-app notification (of the airlock or the access desk); ``egress.notify`` e-mails
    rows whose ``emailed_at`` is NULL."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100), index=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("egress_requests.id"), nullable=True, index=True
    )
    # the page it is about, under the control plane's URL (``ui/applications/3``), when it is
    # not an airlock request's
    link: Mapped[str | None] = mapped_column(String(300), nullable=True, default=None)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- the access desk (applications, issue 14) ---------------------------------------------------


class Application(Base):
    """A request for access to data: a new project, a renewal or an amendment of a project's
    permit, judged by the committee's opinions and the authority's decision
    (``governance.applications``)."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # new | renewal | amendment
    project_slug: Mapped[str] = mapped_column(String(39), index=True)
    applicant: Mapped[str] = mapped_column(String(100), index=True)  # the project's lead
    submitted_by: Mapped[str] = mapped_column(String(200))  # the applicant, or an operator
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    public_interest: Mapped[str] = mapped_column(Text)
    methodology: Mapped[str] = mapped_column(Text)
    datasets: Mapped[list[str]] = mapped_column(JSON)  # NAME or NAME/vN
    members: Mapped[list[str]] = mapped_column(JSON)  # user names, the applicant excluded
    duration_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compute_profile: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)  # times submitted
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decision_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    permit_id: Mapped[int | None] = mapped_column(ForeignKey("permits.id"), nullable=True)
    opinions: Mapped[list[ApplicationOpinion]] = relationship(
        back_populates="application", order_by="ApplicationOpinion.id"
    )
    permit: Mapped[Permit | None] = relationship()


class ApplicationOpinion(Base):
    """A committee member's opinion on one round of an application."""

    __tablename__ = "application_opinions"
    __table_args__ = (UniqueConstraint("application_id", "member", "round"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    member: Mapped[str] = mapped_column(String(100))
    opinion: Mapped[str] = mapped_column(String(24))  # favourable | unfavourable | changes
    text: Mapped[str] = mapped_column(Text)
    round: Mapped[int] = mapped_column(Integer)
    recorded_by: Mapped[str] = mapped_column(String(200))  # the member, or an operator
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    application: Mapped[Application] = relationship(back_populates="opinions")


# --- linkage of a study's own cohort (issue 14) -------------------------------------------------


class Linkage(Base):
    """A study cohort linked to the hub's pseudonyms for one permit (``jupyterlab_hdh.linkage``).

    Holds no identifier: the SHA-256 of the source file (a second run of the same file for
    the same permit is refused), the counts and the report by identifier quality. The linked
    table is ``<datasets>/.linkage/permit-<permit id>/<name>.parquet``."""

    __tablename__ = "linkages"
    __table_args__ = (
        UniqueConstraint("permit_id", "name"),
        UniqueConstraint("permit_id", "input_sha256"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("permits.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    input_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    key_fingerprint: Mapped[str] = mapped_column(String(32))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    permit: Mapped[Permit] = relationship()
