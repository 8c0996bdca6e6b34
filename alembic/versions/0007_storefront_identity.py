"""api_keys.storefront: the shop whose orders a key holds, explicit and apart from its label

Revision ID: 7b3e9d1a5c20
Revises: 6a0d2f9c4e81
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "7b3e9d1a5c20"
down_revision: str | None = "6a0d2f9c4e81"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storefront", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_api_keys_storefront", ["storefront"], unique=False)
    # A storefront key named for its shop keeps that shop's orders. One that took the default
    # name shared it with every other such key: it gets a storefront of its own (its earlier
    # orders, under the shared name, stay readable by admins and dispatchers).
    op.execute(
        "UPDATE api_keys SET storefront = CASE WHEN name = 'storefront' THEN 'key-' || id "
        "ELSE name END WHERE CAST(scopes AS TEXT) LIKE '%\"storefront\"%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_storefront")
        batch_op.drop_column("storefront")
