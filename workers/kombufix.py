"""A guard around kombu's Redis transport, so that a worker outlives a Redis restart.

When the broker connection is lost, Celery collects it: kombu closes its channels and then drops
the transport's reference to the connection (``Transport.client = None``). A channel whose close
failed half-way (Redis was still down while it restored its unacked messages) keeps pointing at
that transport; so do the messages it delivered, whose jobs are still running. When such a job
ends, its ack (run on the worker's event loop) asks the channel for a Redis client; building the
connection pool again reads ``self.connection.client.hostname`` in ``Channel._connparams`` and
raises ``AttributeError: 'NoneType' object has no attribute 'hostname'`` (kombu#582; still so in
kombu 5.7's ``kombu/transport/redis.py``, ``Channel._connparams``). An AttributeError is not a
connection error, so Celery does not reconnect: the worker logs "Unrecoverable error" and exits.

The guard raises redis' ``ConnectionError`` instead, which kombu counts as a connection error:
the ack is logged as failed ("Couldn't ack") and the worker goes on. Nothing is lost: the job was
put back (or Redis lost it, and the reconciler publishes its pending messages again), and the
ledger's claim makes its second run a no-op for every message it had already settled.
"""

from __future__ import annotations

import functools
from typing import Any

import kombu

#: The kombu major version the guard is for (read up to 5.7.0); a kombu 6 is to be looked at again.
GUARDED_KOMBU_MAJOR = 5


def install() -> bool:
    """Wrap ``kombu.transport.redis.Channel._connparams`` once; True when the guard is in place."""
    if kombu.VERSION.major != GUARDED_KOMBU_MAJOR:
        return False
    try:
        from kombu.transport import redis as redis_transport
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # redis not installed: no Redis transport to guard
        return False
    channel = redis_transport.Channel
    original = channel._connparams
    if getattr(original, "wadispatch_guard", False):
        return True

    @functools.wraps(original)
    def _connparams(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        transport = self.connection
        if transport is None or getattr(transport, "client", None) is None:
            raise RedisConnectionError("the broker connection of this channel was closed (connection lost)")
        return original(self, *args, **kwargs)

    _connparams.wadispatch_guard = True  # type: ignore[attr-defined]
    channel._connparams = _connparams
    return True
