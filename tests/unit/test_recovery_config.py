"""The recovery pieces are wired into Celery: beat's schedule and the worker's consumer."""

from __future__ import annotations

from celery.utils.imports import symbol_by_name

import celeryconfig
from tasks.poison import DeadLetteringConsumer
from workers.app import RECONCILE_TASK, app


def test_beat_runs_the_reconciler_at_the_configured_interval() -> None:
    [entry] = [entry for entry in celeryconfig.beat_schedule.values() if entry["task"] == RECONCILE_TASK]
    assert entry["schedule"] == celeryconfig._settings.reconcile_interval_seconds
    app.loader.import_default_modules()
    assert RECONCILE_TASK in app.tasks


def test_the_worker_uses_the_dead_lettering_consumer() -> None:
    assert symbol_by_name(app.conf.worker_consumer) is DeadLetteringConsumer
