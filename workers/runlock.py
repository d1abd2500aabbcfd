"""One reconciler run at a time per queue: a lock in Redis with a time to live.

``SET key token NX PX ttl`` takes it; the run renews it after every page (only while the token is
still its own) and deletes it at the end (again only its own), so a run that died frees it within
``WADISPATCH_RECONCILE_LOCK_SECONDS``. Redis rather than the ledger: SQLite has no advisory locks,
a lease row would be one more table, and Redis is what the run publishes to anyway.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis import Redis

# Renew or release only a lock still ours: a run that outlived its TTL must not free another's.
_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call({}) end return 0"
_RENEW = _IF_OURS.format("'pexpire', KEYS[1], ARGV[2]")
_RELEASE = _IF_OURS.format("'del', KEYS[1]")


def lock_key(queue: str) -> str:
    """The reconciler's lock of ``queue``."""
    return f"wadispatch:reconcile-lock:{queue}"


class RunLock:
    """The reconciler's lock of one queue, held by one run."""

    def __init__(self, client: Redis, queue: str, ttl_seconds: float) -> None:
        self.client = client
        self.key = lock_key(queue)
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        """Take the lock if it is free; whether this run holds it now."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def holder(self) -> str | None:
        """Who holds the lock (host:pid:nonce), if anyone."""
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def renew(self) -> bool:
        """Extend the lock by its TTL; False if it is no longer ours (it expired)."""
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        """Free the lock if it is still ours."""
        self.client.eval(_RELEASE, 1, self.key, self.token)
