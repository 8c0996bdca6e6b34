"""live plans: every open wave's stops on their vans, and the hours those routes book

Revision ID: 8c4f1a2b6d93
Revises: 7b3e9d1a5c20
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import fulfill.db
from alembic import op

revision: str = "8c4f1a2b6d93"
down_revision: str | None = "7b3e9d1a5c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live_rev", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("polished_rev", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("polish_until", fulfill.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "live_stops",
        sa.Column("fulfillment_id", sa.String(length=36), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("van_code", sa.String(length=32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fulfillment_id"], ["fulfillments.id"]),
        sa.ForeignKeyConstraint(["wave_id"], ["waves.id"]),
        sa.PrimaryKeyConstraint("fulfillment_id"),
    )
    op.create_index(
        "ix_live_stops_wave_van", "live_stops", ["wave_id", "van_code", "position"], unique=False
    )
    op.create_table(
        "live_routes",
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("van_code", sa.String(length=32), nullable=False),
        sa.Column("depart_at", fulfill.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("return_at", fulfill.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["wave_id"], ["waves.id"]),
        sa.PrimaryKeyConstraint("wave_id", "van_code"),
    )


def downgrade() -> None:
    op.drop_table("live_routes")
    op.drop_index("ix_live_stops_wave_van", table_name="live_stops")
    op.drop_table("live_stops")
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.drop_column("polish_until")
        batch_op.drop_column("polished_rev")
        batch_op.drop_column("live_rev")
