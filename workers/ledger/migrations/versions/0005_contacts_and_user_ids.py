"""contacts (business-scoped user id ↔ phone number), and recipient columns wide enough for one.

A recipient may be a business-scoped user id (``US.ENT.`` and up to 128 characters): messages'
and suppressions' ``recipient`` grow from 32 to 135 characters (on SQLite, whose lengths are not
enforced, the tables are rebuilt so that the schema says so too).

Revision ID: 0005_contacts_and_user_ids
Revises: 0004_early_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_contacts_and_user_ids"
down_revision: str | None = "0004_early_events"
branch_labels = None
depends_on = None

RECIPIENT_LENGTH = 135


def upgrade() -> None:
    """Create contacts; widen the recipient columns."""
    op.create_table(
        "contacts",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(RECIPIENT_LENGTH), primary_key=True),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contacts_provider_phone", "contacts", ["provider", "phone"])
    for table, nullable in (("messages", True), ("suppressions", False)):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "recipient",
                existing_type=sa.String(32),
                type_=sa.String(RECIPIENT_LENGTH),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    """Narrow the recipient columns back (fails if a longer recipient is stored); drop contacts."""
    for table, nullable in (("messages", True), ("suppressions", False)):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "recipient",
                existing_type=sa.String(RECIPIENT_LENGTH),
                type_=sa.String(32),
                existing_nullable=nullable,
            )
    op.drop_table("contacts")
