"""Linkage of a study's own cohort to the hub's pseudonyms, scoped to one permit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "permit_id", sa.Integer(), sa.ForeignKey("permits.id"), nullable=False, index=True
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("key_fingerprint", sa.String(32), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("permit_id", "name"),
        sa.UniqueConstraint("permit_id", "input_sha256"),
    )


def downgrade() -> None:
    op.drop_table("linkages")
