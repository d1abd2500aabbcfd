"""Options for wadispatch's own Redis clients (the limiter, the windows): a lost connection is retried.

After Redis restarts, every pooled connection is dead. Without retries the first command on each
one fails, and a send that asked the limiter for a slot would count an attempt that never reached
the provider. With these options a dead connection costs a reconnect: the command is retried on
``ConnectionError``/``TimeoutError`` with a short exponential backoff (about 2.5 s in all, enough for
a Redis that restarts, short enough that a Redis that is down gives up and the send is put off), and
a connection idle for ``HEALTH_CHECK_SECONDS`` is checked with a PING before it is used.

A retried command may already have run before its reply was lost (a timeout): for the limiter that
takes one more slot than needed, which only slows the sender a little.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

#: Retries of one command after a connection error, and the backoff between them (seconds).
RETRIES = 5
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 1.0
#: A pooled connection idle this long is PINGed before its next command.
HEALTH_CHECK_SECONDS = 10


def retry_options(*, asynchronous: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis`` / ``redis.asyncio`` clients and pools."""
    backoff = ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=BACKOFF_BASE_SECONDS)
    retry_class = redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry
    return {
        "retry": retry_class(backoff, RETRIES),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "socket_keepalive": True,
    }
