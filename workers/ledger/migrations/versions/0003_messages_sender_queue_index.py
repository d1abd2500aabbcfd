"""An index on messages (state, provider, sender, updated_at, id) for the reconciler.

It pages through one sender's stale ``pending`` messages in the order they were queued; without
this index every page scanned all senders' pending messages (and sorted their ties).

Revision ID: 0003_messages_sender_queue_index
Revises: 0002_messages_requested_at
"""

from __future__ import annotations

from alembic import op

revision = "0003_messages_sender_queue_index"
down_revision: str | None = "0002_messages_requested_at"
branch_labels = None
depends_on = None

INDEX = "ix_messages_state_sender_updated_at"


def upgrade() -> None:
    """Create the index."""
    op.create_index(INDEX, "messages", ["state", "provider", "sender", "updated_at", "id"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index(INDEX, table_name="messages")
