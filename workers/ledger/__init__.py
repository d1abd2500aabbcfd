"""The ledger: every message and every state change, the system of record.

SQLAlchemy Core on SQLite (WAL) by default, or PostgreSQL. One job per module:

- :mod:`.schema`: every table (campaigns' included) and the SQL helpers that name their columns;
- :mod:`.writer`: the one writer of message states and of the transitions log;
- :mod:`.lifecycle`: messages recorded, claimed, settled and read back;
- :mod:`.webhooks` (webhook events), :mod:`.apikeys`, :mod:`.recovery`, :mod:`.deadletters`;
- :mod:`.pruning`: batched deletes of what is past its retention;
- :mod:`.database`: the engine and write transactions; :mod:`.records`: what the ledger returns.

:class:`Ledger` joins them into the one object the rest of the product holds.
"""

from __future__ import annotations

import os
import threading

from wadispatch.ledger.apikeys import ApiKeyRecord, ApiKeys
from wadispatch.ledger.database import normalise_database_url
from wadispatch.ledger.deadletters import DeadLetter, DeadLetters
from wadispatch.ledger.lifecycle import MessageLifecycle
from wadispatch.ledger.pruning import PruneKind, Pruning
from wadispatch.ledger.records import Change, MessageRecord, TransitionRecord, aware, utcnow
from wadispatch.ledger.recovery import RecoveryQueries
from wadispatch.ledger.schema import (
    RUNNING,
    SUPPRESS_ALL_SENDERS,
    api_keys,
    campaign_allows_sending,
    campaign_row_errors,
    campaigns,
    dead_letters,
    in_state,
    messages,
    metadata,
    sender_assignments,
    suppressions,
    transitions,
    webhook_events,
)
from wadispatch.ledger.webhooks import WebhookEvents, WebhookOutcome

__all__ = [
    "RUNNING",
    "SUPPRESS_ALL_SENDERS",
    "ApiKeyRecord",
    "Change",
    "DeadLetter",
    "Ledger",
    "MessageRecord",
    "PruneKind",
    "TransitionRecord",
    "WebhookOutcome",
    "api_keys",
    "aware",
    "campaign_allows_sending",
    "campaign_row_errors",
    "campaigns",
    "dead_letters",
    "get_ledger",
    "in_state",
    "messages",
    "metadata",
    "normalise_database_url",
    "sender_assignments",
    "suppressions",
    "transitions",
    "utcnow",
    "webhook_events",
]


class Ledger(MessageLifecycle, WebhookEvents, ApiKeys, RecoveryQueries, DeadLetters, Pruning):
    """The system of record: messages and their transitions, webhook events, API keys, the
    reconciler's queries, dead letters and pruning, on one database."""


_ledgers: dict[tuple[int, str], Ledger] = {}
_ledgers_lock = threading.Lock()


def get_ledger(url: str | None = None) -> Ledger:
    """The ledger of this process for ``url`` (default: the configured database)."""
    if url is None:
        from wadispatch.settings import get_settings

        url = get_settings().database_url
    key = (os.getpid(), url)
    with _ledgers_lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = Ledger.from_url(url)
        return ledger
