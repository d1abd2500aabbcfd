"""Sender pools, schedules and send windows, validity, and a template for a closed window.

``messages`` gains ``expires_at`` (not sent by then: ``failed`` / ``expired``), ``held_until``
(no job is queued for it until then: a campaign's start time or the recipient's send window),
``fallback`` (the approved template to send when the 24-hour window is closed) and ``sent_as``
(``template`` when the fallback went instead of the interactive message). ``campaigns`` gains
the pool of senders, the start time, the send window and its time zone, the validity and the
fallback template. ``sender_assignments`` keeps, per provider and recipient, the pool's sender
that writes to them, so a recipient hears from the same number across campaigns.

Revision ID: 0006_campaign_scheduling
Revises: 0005_contacts_and_user_ids
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_campaign_scheduling"
down_revision: str | None = "0005_contacts_and_user_ids"
branch_labels = None
depends_on = None

RECIPIENT_LENGTH = 135
MESSAGE_COLUMNS = (
    ("expires_at", sa.DateTime(timezone=True)),
    ("held_until", sa.DateTime(timezone=True)),
    ("fallback", sa.JSON()),
    ("sent_as", sa.String(16)),
)
CAMPAIGN_COLUMNS = (
    ("senders", sa.JSON()),
    ("start_at", sa.DateTime(timezone=True)),
    ("send_window", sa.String(32)),
    ("time_zone", sa.String(64)),
    ("valid_for_seconds", sa.Integer()),
    ("expires_at", sa.DateTime(timezone=True)),
    ("fallback", sa.JSON()),
)


def upgrade() -> None:
    """Add the columns (all nullable: existing rows keep their meaning) and sender_assignments."""
    with op.batch_alter_table("messages") as batch:
        for name, type_ in MESSAGE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_messages_held_until", "messages", ["held_until"])
    op.create_index("ix_messages_expires_at", "messages", ["expires_at"])
    with op.batch_alter_table("campaigns") as batch:
        for name, type_ in CAMPAIGN_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "sender_assignments",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("recipient", sa.String(RECIPIENT_LENGTH), primary_key=True),
        sa.Column("sender", sa.String(256), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop sender_assignments and the added columns (their values are lost)."""
    op.drop_table("sender_assignments")
    with op.batch_alter_table("campaigns") as batch:
        for name, _ in reversed(CAMPAIGN_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_messages_expires_at", table_name="messages")
    op.drop_index("ix_messages_held_until", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for name, _ in reversed(MESSAGE_COLUMNS):
            batch.drop_column(name)
