"""Baseline: the ledger as the release before migrations created it (commit ea5aa00).

Those ledgers have these tables and no ``alembic_version``; :mod:`wadispatch.ledger.revisions`
recognises them and stamps them with this revision before upgrading.

Revision ID: 0001_baseline
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision: str | None = None
branch_labels = None
depends_on = None

#: BIGINT keys on PostgreSQL; SQLite's INTEGER PRIMARY KEY is its rowid (and autoincrements).
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index of the baseline."""
    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(256)),
        sa.Column("recipient", sa.String(32)),
        sa.Column("conversation_id", sa.String(36)),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("provider_error_code", sa.String(64)),
        sa.Column("provider_error_message", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_id", sa.String(256)),
        sa.Column("reply_title", sa.String(256)),
        sa.Column("replied_at", sa.DateTime(timezone=True)),
        sa.Column("campaign_id", sa.String(36)),
        sa.Column("campaign_row", sa.Integer()),
    )
    op.create_index("ix_messages_state_updated_at", "messages", ["state", "updated_at"])
    op.create_index("ix_messages_provider_message_id", "messages", ["provider", "provider_message_id"])
    op.create_index("ux_messages_campaign_recipient", "messages", ["campaign_id", "recipient"], unique=True)
    op.create_index("ix_messages_campaign_row", "messages", ["campaign_id", "campaign_row"])

    op.create_table(
        "transitions",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("detail", sa.JSON()),
    )
    op.create_index("ix_transitions_message_id", "transitions", ["message_id"])

    op.create_table(
        "webhook_events",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("event_key", sa.String(255), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(255)),
        sa.Column("task", sa.String(255)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_encoding", sa.String(16), nullable=False),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column("args", sa.JSON()),
        sa.Column("headers", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
    )

    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(256)),
        sa.Column("source", sa.String(1024)),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("finished_reading_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "campaign_row_errors",
        sa.Column("campaign_id", sa.String(36), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("row_number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(64)),
        sa.Column("reason", sa.Text(), nullable=False),
    )

    op.create_table(
        "suppressions",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(256), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(256)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_suppressions_sender_recipient", "suppressions", ["sender", "recipient"], unique=True)
    op.create_index("ix_suppressions_recipient", "suppressions", ["recipient"])


def downgrade() -> None:
    """Drop every table of the baseline (and so every row of the ledger)."""
    for table in (
        "suppressions",
        "campaign_row_errors",
        "campaigns",
        "dead_letters",
        "api_keys",
        "webhook_events",
        "transitions",
        "messages",
    ):
        op.drop_table(table)
