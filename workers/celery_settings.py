"""wadispatch's Celery settings: the package's defaults, a deployment's module, the environment.

Three layers, later ones winning:

1. the defaults below;
2. a deployment's own settings module, named by ``WADISPATCH_CELERY_CONFIG`` (a module such as
   ``celeryconfig`` importable from the current folder, or the path of a ``.py`` file): its
   lower-case names are Celery settings. The repository's ``celeryconfig.py`` is a commented
   example. Nothing is read from a module the variable does not name, so a web app's own
   ``celeryconfig.py`` never changes wadispatch's broker, queue or serializer;
3. ``WADISPATCH_CELERY_<SETTING NAME IN UPPER CASE>``, e.g.
   ``WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER=8``; dicts and lists take JSON.

The broker is ``WADISPATCH_REDIS_URL`` (or ``REDIS_URL``) unless a layer above sets ``broker_url``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from wadispatch.errors import ConfigurationError
from wadispatch.settings import Settings, get_settings

DEPLOYMENT_MODULE_VARIABLE = "WADISPATCH_CELERY_CONFIG"
OVERRIDE_PREFIX = "WADISPATCH_CELERY_"


def celery_config(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Celery configuration of this process: defaults, then the deployment's module, then
    the ``WADISPATCH_CELERY_*`` overrides."""
    environ = os.environ if environ is None else environ
    config = defaults(settings or get_settings())
    deployment = environ.get(DEPLOYMENT_MODULE_VARIABLE)
    if deployment:
        config.update(module_settings(load_deployment_module(deployment)))
    return {name: _override(name, value, environ) for name, value in config.items()}


def __getattr__(name: str) -> Any:
    # ``CONFIG`` is what the app's lazy ``config_from_object`` reads: computed when the app is
    # first configured, so importing this module reads no environment.
    if name == "CONFIG":
        return celery_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_deployment_module(name: str) -> ModuleType:
    """Import the module ``WADISPATCH_CELERY_CONFIG`` names: a dotted name or a ``.py`` path."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            spec = importlib.util.spec_from_file_location("wadispatch_deployment_celeryconfig", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        return _import_from_current_folder(name)
    except Exception as exc:
        raise ConfigurationError(
            f"{DEPLOYMENT_MODULE_VARIABLE}={name!r}: cannot load it ({type(exc).__name__}: {exc})"
        ) from exc


def _import_from_current_folder(name: str) -> ModuleType:
    """Import ``name`` with the current folder first on ``sys.path`` for the time of the import.

    ``wadispatch worker`` and ``celery -A wadispatch`` run from a console script, whose
    ``sys.path`` does not hold the folder they start in: without this, a ``celeryconfig.py`` beside
    them could not be named by its module name.
    """
    folder = os.getcwd()
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def module_settings(module: ModuleType) -> dict[str, Any]:
    """The Celery settings a module defines: its public lower-case names that are not modules,
    functions or classes."""
    return {
        name: value
        for name, value in vars(module).items()
        if name.islower()
        and not name.startswith("_")
        and not isinstance(value, ModuleType | type)
        and not callable(value)
    }


def _override(name: str, value: Any, environ: Mapping[str, str]) -> Any:
    variable = f"{OVERRIDE_PREFIX}{name.upper()}"
    raw = environ.get(variable)
    if raw is None:
        return value
    try:
        if value is None:
            # A setting whose default is None (no limit) takes JSON (a number, or null for none);
            # anything else is taken as the text it is (a URL, a name).
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        if isinstance(value, bool):
            if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(value, int):
            return int(raw)
        if isinstance(value, float):
            return float(raw)
        if isinstance(value, dict | list):
            return json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}={raw!r}: {exc}") from None
    return raw


def defaults(settings: Settings) -> dict[str, Any]:
    """wadispatch's own Celery settings, before a deployment's module and the environment."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # A worker whose broker is gone keeps trying to reconnect however long it takes (Celery's
        # default gives up after 100 tries, about 50 minutes, and exits): Redis being down for a
        # while is an outage to ride out, not a reason for every worker to stop.
        "broker_connection_max_retries": None,
        # Jobs carry only message ids; JSON keeps them readable in Flower and safe to decode.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # The ledger is the record of every message: no result backend to fill or expire.
        "task_ignore_result": True,
        # Ack after the attempt, and requeue a job whose worker died mid-send: the ledger's atomic
        # pending → sending claim turns the redelivery into a no-op instead of a second send.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A job is a batch of up to 100 messages whose sends run concurrently: one reserved job per
        # thread keeps the pool fed, more would let the first worker hoard what others could send.
        "worker_prefetch_multiplier": 1,
        # Redis redelivers an unacked job after visibility_timeout. Retry countdowns are capped well
        # below it (WADISPATCH_BACKOFF_CAP_SECONDS, default 300 s) and the claim guards against the
        # duplicate anyway. Short socket timeouts keep a producer from hanging when Redis is down.
        # Keepalive and a 10 s health check find a half-open broker connection (a Redis that went
        # away without closing it) within about 20 s rather than the default 51 s.
        "broker_transport_options": {
            "visibility_timeout": 3600,
            "socket_connect_timeout": 5,
            "socket_timeout": 10,
            "socket_keepalive": True,
            "health_check_interval": 10,
        },
        # A producer whose broker is down gives up publishing quickly: the message stays pending in
        # the ledger and is published again later, so the caller never waits long.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "task_default_queue": settings.queue,
        "task_routes": {"wadispatch.*": {"queue": settings.queue}},
        # Events on, so Flower shows tasks without extra flags.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # An attempt is one HTTP call bounded by the client's timeouts; these only catch a stuck thread.
        "task_soft_time_limit": 60,
        "task_time_limit": 90,
        "worker_hijack_root_logger": True,
        # Beat runs the reconciler every WADISPATCH_RECONCILE_INTERVAL_SECONDS (README "Recovery").
        # Runs do not expire: one queued behind a long campaign's jobs still runs, and runs that
        # piled up while no worker was up find nothing left to do after the first.
        # It also prunes the ledger every WADISPATCH_PRUNE_INTERVAL_SECONDS (README "Pruning").
        "beat_schedule": {
            "wadispatch-reconcile": {
                "task": "wadispatch.reconcile",
                "schedule": settings.reconcile_interval_seconds,
            },
            # Campaign messages whose start or send window has come (README "Schedules and send
            # windows"). Like the reconciler's, runs do not expire: one queued behind a campaign's
            # backlog still runs, and those piled up after it find nothing left to release.
            "wadispatch-release-held": {
                "task": "wadispatch.release_held",
                "schedule": settings.release_interval_seconds,
            },
            "wadispatch-prune": {
                "task": "wadispatch.prune",
                "schedule": settings.prune_interval_seconds,
            },
        },
        # The worker's consumer stores poison jobs (undecodable, unknown task, invalid) as dead letters.
        "worker_consumer": "wadispatch.tasks.poison:DeadLetteringConsumer",
    }
