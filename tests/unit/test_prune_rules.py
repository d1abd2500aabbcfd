"""The prune's pure parts: its settings, its cutoffs, its report, and its place in beat's schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from wadispatch.campaigns import api as campaigns_api
from wadispatch.celery import PRUNE_TASK, app
from wadispatch.ledger import PruneKind
from wadispatch.ledger.pruning import ENDED_CAMPAIGN_STATUSES
from wadispatch.prune import RETENTION_SETTINGS, PruneReport, cutoffs
from wadispatch.settings import get_settings

from tests.support import make_settings

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_defaults_keep_each_kind_for_a_while_and_prune_daily() -> None:
    settings = make_settings()
    assert settings.prune_webhook_events_after_days == 14
    assert settings.prune_transitions_after_days == 30
    assert settings.prune_dead_letters_after_days == 30
    assert settings.prune_campaign_errors_after_days == 90
    assert settings.prune_interval_seconds == 86_400
    assert 1000 <= settings.prune_batch_size <= 5000


@pytest.mark.parametrize("days", [1, 6])
def test_webhook_event_keys_must_outlive_the_providers_redelivery(days: int) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(prune_webhook_events_after_days=days)
    [error] = raised.value.errors()
    assert error["loc"] == ("prune_webhook_events_after_days",)
    assert "at least 7 days" in error["msg"]
    assert "or 0 never to prune them" in error["msg"]


@pytest.mark.parametrize("days", [0, 7, 14, 365])
def test_zero_or_a_week_or_more_is_a_valid_webhook_event_retention(days: int) -> None:
    assert make_settings(prune_webhook_events_after_days=days).prune_webhook_events_after_days == days


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("prune_transitions_after_days", -1),
        ("prune_dead_letters_after_days", -1),
        ("prune_campaign_errors_after_days", -1),
        ("prune_batch_size", 0),
        ("prune_batch_size", 10_001),
        ("prune_interval_seconds", 0),
    ],
)
def test_out_of_range_prune_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(**{name: value})
    assert raised.value.errors()[0]["loc"] == (name,)


def test_every_kind_has_its_retention_setting() -> None:
    settings = make_settings()
    assert set(RETENTION_SETTINGS) == set(PruneKind)
    assert all(isinstance(getattr(settings, name), int) for name in RETENTION_SETTINGS.values())


def test_cutoffs_are_now_minus_each_retention_and_zero_prunes_nothing() -> None:
    settings = make_settings(prune_transitions_after_days=0, prune_dead_letters_after_days=1)
    assert cutoffs(settings, NOW) == {
        PruneKind.WEBHOOK_EVENTS: NOW - timedelta(days=14),
        PruneKind.DEAD_LETTERS: NOW - timedelta(days=1),
        PruneKind.CAMPAIGN_ERRORS: NOW - timedelta(days=90),
    }
    forever = {name: 0 for name in RETENTION_SETTINGS.values()}
    assert cutoffs(make_settings(**forever), NOW) == {}


def test_the_report_names_every_kind_and_those_kept_forever() -> None:
    report = PruneReport(
        dry_run=True,
        deleted={PruneKind.WEBHOOK_EVENTS: 12, PruneKind.TRANSITIONS: 3400},
        retention_days={PruneKind.WEBHOOK_EVENTS: 14, PruneKind.TRANSITIONS: 30},
    )
    assert report.lines() == [
        "webhook events   would delete 12 (kept 14 days)",
        "transitions      would delete 3400 (kept 30 days)",
        "dead letters     kept forever (WADISPATCH_PRUNE_DEAD_LETTERS_AFTER_DAYS=0)",
        "campaign errors  kept forever (WADISPATCH_PRUNE_CAMPAIGN_ERRORS_AFTER_DAYS=0)",
    ]
    assert report.as_dict() == {
        "dry_run": True,
        "webhook_events": 12,
        "transitions": 3400,
        "dead_letters": None,
        "campaign_errors": None,
    }
    assert report.summary() == "would delete 12 webhook events, 3400 transitions"
    assert PruneReport().summary() == "deleted nothing (every kind is kept forever)"


def test_beat_runs_the_prune_at_the_configured_interval() -> None:
    [entry] = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == PRUNE_TASK]
    assert entry["schedule"] == get_settings().prune_interval_seconds
    app.loader.import_default_modules()
    assert PRUNE_TASK in app.tasks


def test_the_ledger_knows_the_campaign_statuses_that_end_a_campaign() -> None:
    assert set(ENDED_CAMPAIGN_STATUSES) == {campaigns_api.DONE, campaigns_api.CANCELLED}
