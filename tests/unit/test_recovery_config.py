"""The recovery pieces are wired into Celery: beat's schedule and the worker's consumer."""

from __future__ import annotations

from celery.utils.imports import symbol_by_name
from wadispatch.celery import RECONCILE_TASK, app
from wadispatch.settings import get_settings
from wadispatch.tasks.poison import DeadLetteringConsumer


def test_beat_runs_the_reconciler_at_the_configured_interval() -> None:
    [entry] = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == RECONCILE_TASK]
    assert entry["schedule"] == get_settings().reconcile_interval_seconds
    app.loader.import_default_modules()
    assert RECONCILE_TASK in app.tasks


def test_the_worker_uses_the_dead_lettering_consumer() -> None:
    assert symbol_by_name(app.conf.worker_consumer) is DeadLetteringConsumer


# --- the reconciler's allowance for a backlog behind the rate limit ---------------------------------


def test_a_message_is_overdue_only_past_the_threshold_plus_its_turn() -> None:
    from datetime import UTC, datetime, timedelta

    from wadispatch.reconcile import is_overdue

    touched = datetime(2026, 1, 1, tzinfo=UTC)
    at = touched + timedelta(seconds=700)
    assert is_overdue(touched, 0, at, 600, 10.0)  # nothing ahead: the threshold alone
    assert is_overdue(touched, 999, at, 600, 10.0)  # 99.9 s for those ahead: still just overdue
    assert not is_overdue(touched, 1000, at, 600, 10.0)  # 100 s: its turn may not have come
    assert not is_overdue(touched, 0, touched + timedelta(seconds=600), 600, 10.0)  # strictly longer
    assert is_overdue(touched, 10**6, at, 600, 0.0)  # no limit: no allowance
