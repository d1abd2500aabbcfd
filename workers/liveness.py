"""Who consumes a queue and how much waits in it: what the reconciler looks at before republishing.

Each worker records itself, every ``WADISPATCH_HEARTBEAT_INTERVAL_SECONDS``, in a Redis sorted set
per queue it consumes (:func:`heartbeat_key`): member its Celery hostname, score the Redis server's
clock, so machines whose clocks differ still agree. A worker stopping cleanly removes itself; one
that died ages out after ``WADISPATCH_HEARTBEAT_TIMEOUT_SECONDS``. Written by a bootstep in the
worker's own timer (:class:`Heartbeat`), it needs no events, no broadcast and no wait: the
reconciler reads it with one round trip (:func:`look`).

The queue's length is that of the Redis lists the Celery transport keeps for it (one per priority
step); jobs a worker has reserved or holds until their countdown sit in the transport's ``unacked``
hash, which is shared by every queue of that Redis database and only reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import bootsteps

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("wadispatch.liveness")

#: A member of a heartbeat set older than this is dropped by the next heartbeat.
FORGET_AFTER_SECONDS = 86_400
#: Celery's Redis transport: its priority steps and the separator of their list names.
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"
UNACKED_KEY = "unacked"


def heartbeat_key(queue: str) -> str:
    """The sorted set of the workers consuming ``queue``."""
    return f"wadispatch:workers:{queue}"


def queue_lists(queue: str) -> list[str]:
    """The Redis lists holding ``queue``'s waiting jobs (the transport keeps one per priority step)."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def server_time(client: Redis) -> float:
    """The Redis server's clock, in seconds."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


def beat(client: Redis, queues: list[str], worker: str) -> None:
    """Record ``worker`` alive now as a consumer of ``queues``."""
    now = server_time(client)
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            key = heartbeat_key(queue)
            pipe.zadd(key, {worker: now})
            pipe.zremrangebyscore(key, "-inf", now - FORGET_AFTER_SECONDS)
            pipe.expire(key, FORGET_AFTER_SECONDS)
        pipe.execute()


def forget(client: Redis, queues: list[str], worker: str) -> None:
    """Remove ``worker`` from the consumers of ``queues`` (it stops)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrem(heartbeat_key(queue), worker)
        pipe.execute()


@dataclass(frozen=True)
class QueueState:
    """A queue seen from Redis at one instant."""

    workers_alive: int
    """Workers heard from within the heartbeat timeout."""
    last_heartbeat_seconds: float | None
    """Seconds since any worker of the queue was last heard from (None: never, or forgotten)."""
    queued_jobs: int
    """Jobs waiting in the queue's lists."""
    unacked_jobs: int
    """Jobs reserved by workers or held until their countdown, every queue of the database."""


def look(client: Redis, queue: str, timeout_seconds: float) -> QueueState:
    """Read ``queue``'s consumers and length in one round trip."""
    now = server_time(client)
    key = heartbeat_key(queue)
    with client.pipeline(transaction=False) as pipe:
        pipe.zcount(key, now - timeout_seconds, "+inf")
        pipe.zrevrange(key, 0, 0, withscores=True)
        for name in queue_lists(queue):
            pipe.llen(name)
        pipe.hlen(UNACKED_KEY)
        alive, latest, *lengths, unacked = pipe.execute()
    last = max(0.0, now - latest[0][1]) if latest else None
    return QueueState(int(alive), last, sum(int(length) for length in lengths), int(unacked))


def redis_client(url: str) -> Redis:
    """A client for the broker's Redis with short timeouts (a run or a heartbeat never hangs)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class Heartbeat(bootsteps.StartStopStep):
    """A worker's consumer step: its heartbeat, from the worker's timer, while it consumes.

    Started after the task consumer (whose queues it names), stopped with it: a worker that lost
    its broker connection sends none until it consumes again.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.client: Redis | None = None
        self.entry: Any = None
        self.queues: list[str] = []
        self.worker = ""

    def start(self, parent: Any) -> None:
        """Send the first heartbeat and schedule the next ones."""
        from wadispatch.settings import get_settings

        broker_url = str(parent.app.conf.broker_url or "")
        if not broker_url.startswith(("redis://", "rediss://", "unix://")):
            return  # another broker: there is no Redis to record liveness in
        self.queues = sorted(queue.name for queue in parent.task_consumer.queues)
        self.worker = parent.hostname
        self.client = redis_client(broker_url)
        self._beat()
        self.entry = parent.timer.call_repeatedly(get_settings().heartbeat_interval_seconds, self._beat)

    def stop(self, parent: Any) -> None:
        """Stop beating and say goodbye (best effort: Redis may be what went away)."""
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None
        if self.client is None:
            return
        try:
            forget(self.client, self.queues, self.worker)
        except Exception as exc:  # redis raises many kinds
            log.debug("heartbeat: could not remove %s: %s", self.worker, type(exc).__name__)
        self.client.close()
        self.client = None

    shutdown = stop

    def _beat(self) -> None:
        if self.client is None:
            return
        try:
            beat(self.client, self.queues, self.worker)
        except Exception as exc:  # Redis down: the next beat tries again
            log.warning("heartbeat: could not record %s alive: %s", self.worker, type(exc).__name__)
