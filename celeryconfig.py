"""Celery settings for wadispatch. Every value can be overridden from the environment.

An override is ``WADISPATCH_CELERY_<SETTING NAME IN UPPER CASE>``, e.g.
``WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER=8``; dicts take JSON. The broker is
``WADISPATCH_REDIS_URL`` (or ``REDIS_URL``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from workers.settings import get_settings

_settings = get_settings()


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"WADISPATCH_CELERY_{name.upper()}")
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, dict | list):
            return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"WADISPATCH_CELERY_{name.upper()}={raw!r}: {exc}") from None
    return raw


broker_url = _env("broker_url", _settings.redis_url)
broker_connection_retry_on_startup = _env("broker_connection_retry_on_startup", True)

# Jobs carry only a message id; JSON keeps them readable in Flower and safe to decode.
task_serializer = _env("task_serializer", "json")
result_serializer = _env("result_serializer", "json")
accept_content = _env("accept_content", ["json"])

# The ledger is the record of every message: no result backend to fill or expire.
task_ignore_result = _env("task_ignore_result", True)

# Ack after the attempt, and requeue a job whose worker died mid-send: the ledger's atomic
# pending → sending claim turns the redelivery into a no-op instead of a second send.
task_acks_late = _env("task_acks_late", True)
task_reject_on_worker_lost = _env("task_reject_on_worker_lost", True)

# A job is a batch of up to 100 messages whose sends run concurrently: one reserved job per
# thread keeps the pool fed, more would let the first worker hoard what others could send.
worker_prefetch_multiplier = _env("worker_prefetch_multiplier", 1)

# Redis redelivers an unacked job after visibility_timeout. Retry countdowns are capped well
# below it (WADISPATCH_BACKOFF_CAP_SECONDS, default 300 s) and the claim guards against the
# duplicate anyway. Short socket timeouts keep a producer from hanging when Redis is down.
broker_transport_options = _env(
    "broker_transport_options",
    {"visibility_timeout": 3600, "socket_connect_timeout": 5, "socket_timeout": 10},
)
# A producer whose broker is down gives up publishing quickly: the message stays pending in the
# ledger and is published again later, so the caller never waits long.
task_publish_retry_policy = _env(
    "task_publish_retry_policy",
    {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
)

task_default_queue = _env("task_default_queue", _settings.queue)
task_routes = {"wadispatch.*": {"queue": _settings.queue}}

# Events on, so Flower shows tasks without extra flags.
worker_send_task_events = _env("worker_send_task_events", True)
task_send_sent_event = _env("task_send_sent_event", True)

# An attempt is one HTTP call bounded by the client's timeouts; these only catch a stuck thread.
task_soft_time_limit = _env("task_soft_time_limit", 60)
task_time_limit = _env("task_time_limit", 90)

worker_hijack_root_logger = _env("worker_hijack_root_logger", True)

# --- Recovery (README "Recovery", "Dead letters") ----------------------------------------------
# Beat runs the reconciler every WADISPATCH_RECONCILE_INTERVAL_SECONDS. Runs do not expire: one
# queued behind a long campaign's jobs still runs, and runs that piled up while no worker was up
# find nothing left to do after the first.
beat_schedule = _env(
    "beat_schedule",
    {
        "wadispatch-reconcile": {
            "task": "wadispatch.reconcile",
            "schedule": _settings.reconcile_interval_seconds,
        }
    },
)
# The worker's consumer stores poison jobs (undecodable, unknown task, invalid) as dead letters.
worker_consumer = _env("worker_consumer", "tasks.poison:DeadLetteringConsumer")
