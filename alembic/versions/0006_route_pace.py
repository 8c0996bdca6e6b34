"""plan_routes.pace: how much slower than the travel model a van drives today

Revision ID: 6a0d2f9c4e81
Revises: c5a1e0d7f3b2
Create Date: 2026-11-22 18:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "6a0d2f9c4e81"
down_revision: str | None = "c5a1e0d7f3b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_routes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pace", sa.Float(), nullable=False, server_default="1.0"))


def downgrade() -> None:
    with op.batch_alter_table("plan_routes", schema=None) as batch_op:
        batch_op.drop_column("pace")
