"""messages.requested_at: set just before an attempt's request leaves.

Nullable and empty on existing rows: a message claimed before the upgrade has no request time,
as for one still waiting for its slot.

Revision ID: 0002_messages_requested_at
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_messages_requested_at"
down_revision: str | None = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column("messages", sa.Column("requested_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop the column (SQLite rebuilds the table)."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("requested_at")
