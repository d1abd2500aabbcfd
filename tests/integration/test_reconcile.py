"""The reconciler on a real ledger: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import csv
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from wadispatch.campaigns import api, store
from wadispatch.ledger import Ledger, messages, utcnow
from wadispatch.messages import validate_send_request
from wadispatch.reconcile import ReconcileReport, reconcile
from wadispatch.states import State
from wadispatch.webhooks.events import MessageRef

from tests.support import CAMPAIGN_TEMPLATE, button_request, make_settings

pytestmark = pytest.mark.integration

LATER = timedelta(minutes=11)  # past both default thresholds (10 min)
CAMPAIGN_SENDER = "2207264639145282"  # not button_request()'s sender: its own rate limit


class Publisher:
    """Records what the reconciler publishes; ``down=True`` plays a broker that is unreachable."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.published: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, message_ids: list[str]) -> int:
        if self.down:
            return 0
        with self.lock:
            self.published += message_ids
        return len(message_ids)


def new_messages(ledger: Ledger, count: int) -> list[str]:
    requests = [validate_send_request(button_request()) for _ in range(count)]
    return [message_id for message_id, _ in ledger.record_pending_many(requests)]


def stuck_sending(
    ledger: Ledger, count: int, *, requested: bool = True, sent_as: str | None = None
) -> list[str]:
    """``count`` messages a worker claimed and then died with: after their request left
    (``requested``), or while they waited for their slot; ``sent_as="template"``: claimed to go
    as their fallback template."""
    ids = new_messages(ledger, count)
    claimed = ledger.claim_many(ledger.load_pending(ids), sent_as=sent_as)
    assert len(claimed) == count
    if requested:
        progress = ledger.record_progress([(record.id, record.updated_at) for record in claimed], [])
        assert progress.marked == set(ids)
    return ids


def run(ledger: Ledger, publish: Publisher, now: datetime, **settings: object) -> ReconcileReport:
    return reconcile(ledger, make_settings(**settings), publish, now=now)


def race(database_url: str, publish: Publisher, now: datetime, **settings: object) -> list[ReconcileReport]:
    """Two reconcilers started at once, each on its own engine (as on two machines); their reports."""
    reports: list[ReconcileReport] = []
    start = threading.Barrier(2)

    def reconciler() -> None:
        own = Ledger.from_url(database_url)
        try:
            start.wait(timeout=30)
            reports.append(run(own, publish, now, **settings))
        finally:
            own.dispose()

    threads = [threading.Thread(target=reconciler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return reports


def test_pending_untouched_past_the_threshold_is_published_again_once(ledger: Ledger) -> None:
    ids = new_messages(ledger, 3)
    publish = Publisher()
    assert run(ledger, publish, utcnow()).republished == 0  # too fresh
    assert publish.published == []
    now = utcnow() + LATER
    report = run(ledger, publish, now)
    assert (report.republished, report.publish_failed) == (3, 0)
    assert sorted(publish.published) == sorted(ids)
    # Touched: the next run (a minute later) leaves them alone until the threshold passes again.
    assert run(ledger, publish, now + timedelta(minutes=1)).republished == 0
    assert run(ledger, publish, now + LATER).republished == 3
    assert all(ledger.get(message_id).state is State.PENDING for message_id in ids)


def test_a_retry_not_yet_due_is_left_alone(ledger: Ledger) -> None:
    [message_id] = stuck_sending(ledger, 1)
    ledger.transition(
        message_id, State.SENDING, State.PENDING, reason="rate_limited", next_attempt_at=utcnow() + 2 * LATER
    )
    publish = Publisher()
    assert run(ledger, publish, utcnow() + LATER).republished == 0
    assert run(ledger, publish, utcnow() + 3 * LATER).republished == 1


def test_stuck_sending_fails_with_unknown_outcome_by_default(ledger: Ledger) -> None:
    ids = stuck_sending(ledger, 2)
    publish = Publisher()
    assert run(ledger, publish, utcnow() + timedelta(minutes=1)).stuck_failed == 0
    report = run(ledger, publish, utcnow() + LATER)
    assert (report.stuck_failed, report.stuck_requeued, publish.published) == (2, 0, [])
    for message_id in ids:
        record = ledger.get(message_id)
        assert (record.state, record.reason) == (State.FAILED, "unknown_outcome")
        last = ledger.transitions(message_id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (
            State.SENDING,
            State.FAILED,
            "unknown_outcome",
        )
        assert last.detail == {"reconciled": "stuck_sending", "policy": "fail"}


def test_stuck_sending_goes_back_to_pending_and_is_published_under_resend(ledger: Ledger) -> None:
    ids = stuck_sending(ledger, 2)
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, stuck_sending_policy="resend")
    assert (report.stuck_requeued, report.stuck_failed, report.republished) == (2, 0, 0)
    assert sorted(publish.published) == sorted(ids)
    for message_id in ids:
        assert ledger.get(message_id).state is State.PENDING
        last = ledger.transitions(message_id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (
            State.SENDING,
            State.PENDING,
            "unknown_outcome",
        )


def test_resend_never_sends_a_fallback_template_twice(ledger: Ledger) -> None:
    [template] = stuck_sending(ledger, 1, sent_as="template")
    [interactive] = stuck_sending(ledger, 1)
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, stuck_sending_policy="resend")
    assert (report.stuck_requeued, report.stuck_failed, publish.published) == (1, 1, [interactive])
    record = ledger.get(template)
    assert (record.state, record.reason, record.sent_as) == (State.FAILED, "unknown_outcome", "template")


def test_resend_fails_a_message_out_of_attempts(ledger: Ledger) -> None:
    [message_id] = stuck_sending(ledger, 1)  # attempts is now 1
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, stuck_sending_policy="resend", max_attempts=1)
    assert (report.stuck_requeued, report.stuck_failed, publish.published) == (0, 1, [])
    assert ledger.get(message_id).state is State.FAILED


@pytest.mark.parametrize("policy", ["fail", "resend"])
def test_a_dead_workers_claim_that_never_left_is_sent_again_under_any_policy(
    ledger: Ledger, policy: str
) -> None:
    ids = stuck_sending(ledger, 3, requested=False)
    answered_unknown = stuck_sending(ledger, 1)
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, stuck_sending_policy=policy)
    assert report.never_requested == 3
    assert (report.stuck_failed, report.stuck_requeued) == ((1, 0) if policy == "fail" else (0, 1))
    expected = ids if policy == "fail" else ids + answered_unknown
    assert sorted(publish.published) == sorted(expected)
    for message_id in ids:
        record = ledger.get(message_id)
        assert (record.state, record.attempts, record.reason) == (State.PENDING, 0, "worker_lost")
        last = ledger.transitions(message_id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (State.SENDING, State.PENDING, "worker_lost")
        assert last.detail == {"reconciled": "stuck_sending", "requested": False}


def test_a_never_requested_claim_past_the_age_limit_expires_instead_of_being_sent_again(
    ledger: Ledger,
) -> None:
    long_ago = utcnow() - timedelta(hours=3)
    requests = [validate_send_request(button_request())]
    [(old, _)] = ledger.record_pending_many(requests, now=long_ago)
    ledger.claim_many(ledger.load_pending([old]), now=long_ago)
    fresh = stuck_sending(ledger, 1, requested=False)
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, max_age_seconds=3600)
    assert (report.never_requested_expired, report.never_requested) == (1, 1)
    assert publish.published == fresh
    record = ledger.get(old)
    assert (record.state, record.reason, record.attempts) == (State.FAILED, "expired", 0)
    assert "1 never requested and too old (expired)" in report.summary()


def test_a_claim_taken_back_can_no_longer_be_marked_requested(ledger: Ledger) -> None:
    [message_id] = new_messages(ledger, 1)
    [first] = ledger.claim_many(ledger.load_pending([message_id]))
    run(ledger, Publisher(), utcnow() + LATER)  # the first claim's worker looks dead
    [second] = ledger.claim_many(ledger.load_pending([message_id]), now=utcnow() + timedelta(seconds=1))
    # The first worker wakes up: its mark is refused, so its request never leaves.
    assert ledger.record_progress([(first.id, first.updated_at)], []).marked == set()
    assert ledger.record_progress([(second.id, second.updated_at)], []).marked == {message_id}
    # The same mark tried again (its first commit's answer was lost) finds it made: idempotent.
    assert ledger.record_progress([(second.id, second.updated_at)], []).marked == {message_id}
    assert ledger.record_progress([(first.id, first.updated_at)], []).marked == set()
    assert ledger.get(message_id).attempts == 1


def test_settled_messages_are_never_touched(ledger: Ledger) -> None:
    [sent, failed] = stuck_sending(ledger, 2)
    ledger.transition(sent, State.SENDING, State.SENT, provider_message_id="p-1")
    ledger.transition(failed, State.SENDING, State.FAILED, reason="auth")
    report = run(ledger, Publisher(), utcnow() + 10 * LATER, stuck_sending_policy="resend")
    assert report == ReconcileReport()
    assert (ledger.get(sent).state, ledger.get(failed).state) == (State.SENT, State.FAILED)


def test_dry_run_counts_and_changes_nothing(ledger: Ledger) -> None:
    pending = new_messages(ledger, 3)
    sending = stuck_sending(ledger, 2) + stuck_sending(ledger, 1, requested=False)
    publish = Publisher()
    report = reconcile(ledger, make_settings(), publish, now=utcnow() + LATER, dry_run=True)
    assert (report.dry_run, report.republished, report.stuck_failed, report.never_requested) == (
        True,
        3,
        2,
        1,
    )
    assert publish.published == []
    assert {ledger.get(message_id).state for message_id in pending} == {State.PENDING}
    assert {ledger.get(message_id).state for message_id in sending} == {State.SENDING}
    assert run(ledger, publish, utcnow() + LATER).republished == 3  # nothing was touched


def test_a_broker_down_leaves_them_for_the_next_run(ledger: Ledger) -> None:
    new_messages(ledger, 2)
    now = utcnow() + LATER
    report = run(ledger, Publisher(down=True), now)
    assert (report.republished, report.publish_failed) == (0, 2)
    assert run(ledger, Publisher(), now + LATER).republished == 2


def test_a_backlog_larger_than_a_page_is_worked_through_in_pages(ledger: Ledger) -> None:
    ids = new_messages(ledger, 25)
    publish = Publisher()
    report = run(ledger, publish, utcnow() + LATER, reconcile_page_size=4)
    assert report.republished == 25
    assert sorted(publish.published) == sorted(ids)


def test_two_reconcilers_at_once_never_act_on_the_same_message(database_url: str, ledger: Ledger) -> None:
    pending = new_messages(ledger, 300)
    sending = stuck_sending(ledger, 300)
    now = utcnow() + LATER
    publish = Publisher()
    reports = race(database_url, publish, now, reconcile_page_size=50, stuck_sending_policy="resend")
    assert len(reports) == 2
    assert sum(report.republished for report in reports) == 300
    assert sum(report.stuck_requeued for report in reports) == 300
    assert Counter(publish.published) == Counter(pending + sending)  # each id exactly once
    for message_id in sending:
        moves = [t for t in ledger.transitions(message_id) if t.from_state is State.SENDING]
        assert len(moves) == 1


# --- campaigns: paused and cancelled campaigns, long rate-limited backlogs -----------------


def new_campaign(ledger: Ledger, tmp_path: Path, count: int, *, sender: str = CAMPAIGN_SENDER) -> str:
    path = tmp_path / f"campaign-{sender}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([f"+2557{index:08d}", "Ann", str(index)] for index in range(count))
    settings = make_settings(campaign_batch_size=100)
    campaign = api.create_campaign(
        path,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=sender,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,  # the jobs "are queued": only the reconciler publishes here
    )
    assert campaign.accepted == count
    return campaign.id


def campaign_ids(ledger: Ledger, campaign_id: str, state: State) -> list[str]:
    query = select(messages.c.id).where(
        messages.c.campaign_id == campaign_id, messages.c.state == state.value
    )
    with ledger.engine.connect() as conn:
        return sorted(conn.execute(query.order_by(messages.c.campaign_row)).scalars())


def test_a_paused_campaign_is_not_republished_until_it_runs(ledger: Ledger, tmp_path: Path) -> None:
    campaign_id = new_campaign(ledger, tmp_path, 5)
    api.pause(campaign_id, ledger=ledger)
    publish = Publisher()
    now = utcnow() + LATER
    dry = reconcile(ledger, make_settings(), publish, now=now, dry_run=True)
    assert (dry.republished, dry.cancelled) == (0, 0)
    assert run(ledger, publish, now).republished == 0
    assert publish.published == []
    store.set_status(ledger, campaign_id, ["paused"], "running")  # resumed, without its own fan-out
    assert run(ledger, publish, now).republished == 5
    assert sorted(publish.published) == sorted(campaign_ids(ledger, campaign_id, State.PENDING))


def test_pending_of_a_cancelled_campaign_is_failed_cancelled(ledger: Ledger, tmp_path: Path) -> None:
    campaign_id = new_campaign(ledger, tmp_path, 4)
    [back] = campaign_ids(ledger, campaign_id, State.PENDING)[:1]
    claimed = ledger.claim_many(ledger.load_pending([back]))
    assert [record.id for record in claimed] == [back]
    api.cancel(campaign_id, ledger=ledger, wait_seconds=0)  # sweeps 3; `back` is in flight
    ledger.transition(back, State.SENDING, State.PENDING, reason="rate_limited")  # its retry comes back
    publish = Publisher()
    dry = reconcile(ledger, make_settings(), publish, now=utcnow() + LATER, dry_run=True)
    assert (dry.cancelled, dry.republished) == (1, 0)
    report = run(ledger, publish, utcnow())  # no threshold: a cancelled campaign's pending goes at once
    assert (report.cancelled, report.republished, publish.published) == (1, 0, [])
    record = ledger.get(back)
    assert (record.state, record.reason) == (State.FAILED, "cancelled")
    last = ledger.transitions(back)[-1]
    assert (last.from_state, last.to_state, last.reason) == (State.PENDING, State.FAILED, "cancelled")
    assert "cancelled campaigns: 1 pending failed" in report.summary()
    assert run(ledger, publish, utcnow()).cancelled == 0


def test_two_reconcilers_fail_a_cancelled_campaign_once(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    campaign_id = new_campaign(ledger, tmp_path, 400)
    store.set_status(ledger, campaign_id, ["running"], "cancelled")  # cancelled, not swept yet
    reports = race(database_url, Publisher(), utcnow(), reconcile_page_size=50)
    assert len(reports) == 2
    assert sum(report.cancelled for report in reports) == 400
    failed = campaign_ids(ledger, campaign_id, State.FAILED)
    assert len(failed) == 400
    for message_id in failed[:50]:
        assert len([t for t in ledger.transitions(message_id) if t.to_state is State.FAILED]) == 1


def test_a_backlog_behind_the_rate_limit_is_republished_only_once_overdue(
    ledger: Ledger, tmp_path: Path
) -> None:
    # 1,000 messages at 10 msgs/s (9.6 with the headroom) need about 104 s after the threshold.
    settings = {"senders": {f"meta:{CAMPAIGN_SENDER}": {"rate": 10}}, "reconcile_page_size": 300}
    campaign_id = new_campaign(ledger, tmp_path, 1000)
    queued_times = [m.updated_at for m in ledger.all_messages()]
    queued_at = max(queued_times)
    # Rows recorded earlier in the ingest have waited that much longer: 9.6 more per second.
    ingest_seconds = (queued_at - min(queued_times)).total_seconds()
    threshold = timedelta(seconds=600)
    publish = Publisher()
    # At the threshold plus 10 s the first 96 may have been lost (their turn has come); the rest
    # may still be waiting their turn in the queue.
    first = run(ledger, publish, queued_at + threshold + timedelta(seconds=10), **settings).republished
    assert 96 <= first <= 97 + 9.6 * ingest_seconds
    assert len(publish.published) == first
    # Another sender (undeclared: 80/s) is not held back by this one's backlog.
    other = new_messages(ledger, 3)
    later = queued_at + threshold + timedelta(seconds=120)  # 903 / 9.6 = 94 s: the whole backlog is due
    assert run(ledger, publish, later, **settings).republished == 1000 - first + 3
    assert set(other) <= set(publish.published)
    assert Counter(publish.published).most_common(1)[0][1] == 1  # none twice
    assert set(publish.published) - set(other) == set(campaign_ids(ledger, campaign_id, State.PENDING))


# --- webhook events kept until their sends are recorded -------------------------------------


def test_a_kept_status_the_sends_recording_missed_is_applied_and_an_old_one_dropped(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wadispatch.reconcile")
    [crossed, never] = stuck_sending(ledger, 2)
    now = utcnow()
    for wamid, at in (("wamid.crossed", now), ("wamid.never", now - LATER)):
        outcome = ledger.apply_webhook_status(
            "meta", f"{wamid}:delivered", MessageRef(provider_message_ids=(wamid,)), State.DELIVERED, now=at
        )
        assert outcome.kept
    # The send was recorded in the instant the status was kept, so it was not applied with it.
    ledger.transition(crossed, State.SENDING, State.SENT, provider_message_id="wamid.crossed")
    report = run(ledger, Publisher(), now, early_events_keep_seconds=600)
    assert (report.early_events_applied, report.early_events_dropped) == (1, 1)
    assert ledger.get(crossed).state is State.DELIVERED
    assert ledger.get(never).state is State.SENDING  # its id never appeared: nothing applied
    assert ledger.count_early_events() == 0
    assert "dropped 1 meta webhook status event(s) kept for 600 s" in caplog.text
    assert run(ledger, Publisher(), now).early_events_applied == 0
