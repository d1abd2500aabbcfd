"""early_events: webhook statuses and replies that came before their message's send was recorded.

Kept until the send records the message's provider id, then applied in the same transaction (or
dropped, logged, once older than ``WADISPATCH_EARLY_EVENTS_KEEP_SECONDS``).

Revision ID: 0004_early_events
Revises: 0003_messages_sender_queue_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_early_events"
down_revision: str | None = "0003_messages_sender_queue_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and its indexes."""
    op.create_table(
        "early_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(36)),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_early_events_provider_message_id", "early_events", ["provider", "provider_message_id"]
    )
    op.create_index("ix_early_events_message_id", "early_events", ["message_id"])
    op.create_index("ix_early_events_received_at", "early_events", ["received_at"])


def downgrade() -> None:
    """Drop the table (and its indexes)."""
    op.drop_table("early_events")
