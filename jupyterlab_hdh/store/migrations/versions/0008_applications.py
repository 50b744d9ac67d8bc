"""The access desk: applications and the committee's opinions; a permit's compute profile;
when an amendment added a member to a permit; a notification's page.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("permits") as batch:
        batch.add_column(sa.Column("compute_profile", sa.String(32), nullable=True))
    with op.batch_alter_table("permit_members") as batch:
        batch.add_column(sa.Column("covered_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("link", sa.String(300), nullable=True))
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("project_slug", sa.String(39), nullable=False, index=True),
        sa.Column("applicant", sa.String(100), nullable=False, index=True),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("public_interest", sa.Text(), nullable=False),
        sa.Column("methodology", sa.Text(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=True),
        sa.Column("compute_profile", sa.String(32), nullable=True),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decision_reference", sa.String(200), nullable=True),
        sa.Column("decision_text", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("permit_id", sa.Integer(), sa.ForeignKey("permits.id"), nullable=True),
    )
    op.create_table(
        "application_opinions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "application_id",
            sa.Integer(),
            sa.ForeignKey("applications.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("member", sa.String(100), nullable=False),
        sa.Column("opinion", sa.String(24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("application_id", "member", "round"),
    )


def downgrade() -> None:
    op.drop_table("application_opinions")
    op.drop_table("applications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("link")
    with op.batch_alter_table("permit_members") as batch:
        batch.drop_column("covered_at")
    with op.batch_alter_table("permits") as batch:
        batch.drop_column("compute_profile")
