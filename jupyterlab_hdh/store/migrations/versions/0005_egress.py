"""The airlock: egress requests, their files, votes, exceptions, comments, outbox; notifications.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "egress_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False, index=True
        ),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "egress_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("egress_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", TZ, nullable=False),
        sa.Column("snapshot_at", TZ, nullable=False),
        sa.Column("added_by", sa.String(100), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("controls", sa.Text(), nullable=False),
        sa.Column("check_status", sa.String(16), nullable=True),
        sa.Column("check_report", sa.JSON(), nullable=True),
        sa.UniqueConstraint("request_id", "path"),
    )
    op.create_table(
        "egress_votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "file_id", sa.Integer(), sa.ForeignKey("egress_files.id"), nullable=False, index=True
        ),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("file_id", "reviewer"),
    )
    op.create_table(
        "egress_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "file_id",
            sa.Integer(),
            sa.ForeignKey("egress_files.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("file_id", "reviewer", "sha256"),
    )
    op.create_table(
        "egress_comments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("egress_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("file_path", sa.String(1024), nullable=True),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "egress_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("egress_requests.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("done_at", TZ, nullable=True),
        sa.UniqueConstraint("request_id", "name"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_name", sa.String(100), nullable=False, index=True),
        sa.Column(
            "request_id",
            sa.Integer(),
            sa.ForeignKey("egress_requests.id"),
            nullable=True,
            index=True,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.Column("emailed_at", TZ, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "notifications",
        "egress_outbox",
        "egress_comments",
        "egress_exceptions",
        "egress_votes",
        "egress_files",
        "egress_requests",
    ):
        op.drop_table(table)
