"""The campaigns' Python API: the same operations as ``wadispatch campaign ...``.

    from wadispatch.campaigns import api

    campaign = api.create_campaign("customers.csv", template, provider="meta", sender="1107264639145282")
    pooled = api.create_campaign("customers.csv", template, provider="meta", senders=["1107...", "2208..."])
    api.progress(campaign.id)              # counts, start/end, rates, the sender's limit, 429s, ETA
    api.pause(campaign.id); api.resume(campaign.id); api.cancel(campaign.id)
    api.report(campaign.id, "report.csv")  # one row per row of the file
    api.list_campaigns()

Every function takes an optional ``ledger`` and ``settings`` (default: the configured ones) and
can be called from any process: the ledger is the only shared state. Pause, resume and cancel
are idempotent.
"""

from __future__ import annotations

import csv
import heapq
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

from wadispatch import jsonread, metrics
from wadispatch.campaigns import pace, store
from wadispatch.campaigns.errors import CampaignInputError, UnknownCampaign
from wadispatch.campaigns.fallback import CampaignFallback
from wadispatch.campaigns.ingest import IngestCounts, Target, ingest
from wadispatch.campaigns.live import Live
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.pool import check_senders
from wadispatch.campaigns.reader import FileError, FileFormat, detect_format, read_rows
from wadispatch.campaigns.schedule import Schedule, campaign_timing
from wadispatch.campaigns.senders import SenderProgress, per_sender, pool_limit
from wadispatch.campaigns.template import RowError
from wadispatch.campaigns.timeline import cached_timeline
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.ledger import RUNNING, Ledger, aware, get_ledger, utcnow
from wadispatch.settings import ProviderName, Settings, get_settings
from wadispatch.states import State
from wadispatch.window import Windows, get_windows

log = logging.getLogger("wadispatch.campaigns")

PAUSED, CANCELLED, DONE = "paused", "cancelled", "done"
CANCELLED_REASON = "cancelled"
REPORT_COLUMNS = (
    "row",
    "phone",
    "sender",
    "state",
    "reason",
    "message_id",
    "provider_message_id",
    "provider_error_code",
    "attempts",
    "created_at",
    "updated_at",
    "reply_id",
    "reply_title",
    "replied_at",
    "sent_as",
)

CampaignRecord = store.CampaignRecord


@dataclass(frozen=True)
class CampaignProgress:
    """Where a campaign stands: its record, counts per state and reason, pace, limits and ETA."""

    campaign: CampaignRecord
    states: dict[str, int]
    """Messages per state (``pending``, ``sending``, ``sent``, ``delivered``, ``read``, ``failed``)."""
    failed_reasons: dict[str, int]
    remaining: int
    """Messages still ``pending`` or ``sending``."""
    settled_recently: int
    """Messages settled in the current rate's window (:data:`pace.WINDOW_SECONDS`)."""
    throughput: float | None
    """The current rate: messages settled per second over that window; None before the first
    claim and after the end."""
    limit_rate: float
    """The sender's configured limit as the limiter applies it (declared rate x headroom); a
    pool's: the sum of its senders'."""
    eta_seconds: float | None
    """Remaining / the lower of the current rate and the effective limit; None with a note why."""
    started_at: datetime | None = None
    """The first claim of one of its messages (or its first settle, when none was ever claimed)."""
    finished_at: datetime | None = None
    """When its last message settled, once every row is read and every message settled."""
    duration_seconds: float | None = None
    """From the start to the end (to now while it runs)."""
    average_rate: float | None = None
    """Messages settled / duration."""
    effective_rate: float | None = None
    """What the shared limiter lets the sender send now (the limit x its factor, which 429s halve);
    None when the limiter cannot be read; a pool's: the sum of its senders'."""
    cooldown_seconds: float | None = None
    """The sender's cooldown left after a 429 (None when unknown); a pool's: its longest."""
    rate_limited: int = 0
    """The provider's rate refusals (429s) met by the campaign's messages."""
    retries: int = 0
    """Times one of its messages went back to the queue (a retry), those held back included."""
    held_back: int = 0
    """Of the retries, those the limiter held back without a request (cooldown, missed slot)."""
    workers_alive: int | None = None
    """Workers with a fresh heartbeat on the queue; None when the broker cannot be asked."""
    eta_note: str | None = None
    """Why there is no ETA: ``unknown: no worker running``, ``paused``, ``cancelled``, ``done``..."""
    sent_as_template: int = 0
    """Messages that went as the fallback template (the window was closed), accepted."""
    suppressed_by_keyword: int = 0
    """Messages stopped (``failed``, reason ``suppressed``) because their recipient wrote an
    opt-out keyword after they were queued."""
    senders: tuple[SenderProgress, ...] = ()
    """Per sender (a pool's in pool order): its messages per state and its limit."""
    waiting_for_window: int = 0
    """Pending messages held for the campaign's start or their send window (no job queued yet)."""
    next_release_at: datetime | None = None
    """When the first of those is released."""

    @property
    def expired(self) -> int:
        """Messages failed ``expired``: their validity ended before they could be sent."""
        return self.failed_reasons.get("expired", 0)

    @property
    def terminal(self) -> int:
        return sum(self.states.values()) - self.remaining

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def done(self) -> bool:
        """Every row read and every accepted message settled (or the campaign cancelled and swept)."""
        return self.campaign.finished_reading_at is not None and self.remaining == 0

    def as_json(self) -> dict[str, Any]:
        campaign = self.campaign
        return {
            "id": campaign.id,
            "name": campaign.name,
            "provider": campaign.provider,
            "sender": campaign.sender,
            "senders": list(campaign.senders or ([campaign.sender] if campaign.sender else [])),
            "status": campaign.status,
            "reading": campaign.finished_reading_at is None,
            "rows": {
                "read": campaign.rows_read,
                "accepted": campaign.accepted,
                "invalid": campaign.invalid,
                "duplicate": campaign.duplicate,
                "suppressed": campaign.suppressed,
            },
            "states": self.states,
            "failed_reasons": self.failed_reasons,
            "remaining": self.remaining,
            "started_at": _iso(self.started_at) or None,
            "finished_at": _iso(self.finished_at) or None,
            "duration_seconds": _round(self.duration_seconds, 1),
            "average_rate_per_s": _round(self.average_rate, 2),
            "throughput_per_s": _round(self.throughput, 2),
            "limit_per_s": round(self.limit_rate, 2),
            "effective_limit_per_s": _round(self.effective_rate, 2),
            "cooldown_seconds": _round(self.cooldown_seconds, 1),
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "held_back": self.held_back,
            "workers_alive": self.workers_alive,
            "eta_seconds": _round(self.eta_seconds, 1),
            "eta_note": self.eta_note,
            "sent_as_template": self.sent_as_template,
            "suppressed_by_keyword": self.suppressed_by_keyword,
            "per_sender": [item.as_json() for item in self.senders],
            "waiting_for_window": self.waiting_for_window,
            "next_release_at": _iso(self.next_release_at) or None,
            "expired": self.expired,
            "schedule": {
                "start_at": _iso(campaign.start_at) or None,
                "send_window": campaign.send_window,
                "timezone": campaign.time_zone,
                "valid_for_seconds": campaign.valid_for_seconds,
                "expires_at": _iso(campaign.expires_at) or None,
            },
            "created_at": campaign.created_at.isoformat(),
        }


def create_campaign(
    source: str | Path,
    template: dict[str, Any],
    *,
    provider: str,
    sender: str | None = None,
    senders: list[str] | None = None,
    name: str | None = None,
    phone_column: str = "phone",
    region: str | None = None,
    file_format: FileFormat | None = None,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    on_batch: Callable[[str, IngestCounts], None] | None = None,
    dispatch: Callable[[str, int, int | None], bool] | None = None,
    fallback: dict[str, Any] | None = None,
    start_at: str | datetime | None = None,
    send_window: str | None = None,
    timezone: str | None = None,
    valid_for_seconds: int | None = None,
    expires_at: str | datetime | None = None,
    windows: Windows | None = None,
) -> CampaignRecord:
    """Read a CSV or JSONL file of recipients into a new campaign and queue its sends.

    ``template`` is WhatsApp's interactive object whose texts may carry ``{column}`` placeholders.
    The template, provider, sender, region and the file's header are checked before anything is
    recorded: :class:`~wadispatch.errors.MessageValidationError` (every broken rule, by field path)
    or :class:`CampaignInputError`. Then rows are recorded in batches, each row either a ``pending``
    message or a skipped row (``invalid``, ``duplicate``, ``suppressed``) with its reason; send
    jobs are published by ``wadispatch.campaign_fanout`` tasks while the file is read.
    Returns the campaign when the whole file is read (``on_batch(id, counts)`` after each batch).

    ``senders`` (instead of ``sender``) sends from a pool of the provider's senders: each recipient
    gets one of them, the one it had in an earlier pool campaign when that one is in this pool,
    else the least loaded (:mod:`wadispatch.campaigns.pool`; errors name ``senders[i]``).

    ``dispatch(campaign_id, first_row, last_row)`` publishes a fan-out (default: the Celery task);
    ``False`` means the broker was unreachable: the messages stay pending until :func:`resume`.

    ``fallback``: an approved template sent instead of the interactive message to a recipient
    whose 24-hour window is closed (:class:`wadispatch.templates.FallbackTemplate`); its body
    parameters and quick-reply payloads may carry ``{column}`` placeholders too.

    Timing (README "Schedules and send windows", "Validity"): ``start_at`` (ISO 8601 with its
    offset) holds every message until then; ``send_window`` (``"09:00-20:00"``) sends each message
    only between those times in its recipient's time zone (from the phone number, or
    ``timezone``, an IANA name, for all); ``valid_for_seconds`` (from the start) or
    ``expires_at``: a message not sent by then fails ``expired``. Held messages get no job until
    their time. ``windows``: the 24-hour windows read for held messages whose window closes before
    their opening (default: this process's, from ``settings``).
    """
    settings = settings or get_settings()
    ledger = ledger or get_ledger(settings.database_url)
    dispatch = dispatch or dispatch_fanout
    try:
        jsonread.check(template)
    except jsonread.JsonInputError as exc:
        raise MessageValidationError([FieldError("interactive", str(exc))]) from None
    checked, sender, pool = check_senders(template, provider=provider, sender=sender, senders=senders)
    checked_fallback = None
    if fallback is not None:
        try:
            jsonread.check(fallback)
        except jsonread.JsonInputError as exc:
            raise MessageValidationError([FieldError("fallback", str(exc))]) from None
        # The provider is known good: the template's check above named it.
        checked_fallback = CampaignFallback.parse(fallback, checked, provider=cast(ProviderName, provider))
    timing, timing_errors = campaign_timing(
        start_at=start_at,
        send_window=send_window,
        time_zone_name=timezone,
        valid_for_seconds=valid_for_seconds,
        expires_at=expires_at,
        now=utcnow(),
        default_zone=settings.default_timezone,
    )
    if timing is None:
        raise MessageValidationError(timing_errors)
    normalise = PhoneNormaliser(region or settings.campaign_default_region)
    path = Path(source)
    try:
        file_format = file_format or detect_format(path)
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileError as exc:
        raise CampaignInputError(str(exc)) from None
    except OSError as exc:
        raise CampaignInputError(f"cannot read {path}: {exc.strerror}") from None
    campaign_id = str(uuid.uuid4())
    with handle:
        try:
            columns = checked.columns | (checked_fallback.columns if checked_fallback else frozenset())
            rows = read_rows(handle, file_format, columns | {phone_column})
        except FileError as exc:
            raise CampaignInputError(f"{path.name}: {exc}") from None
        except UnicodeDecodeError:
            raise CampaignInputError(f"{path.name}: not UTF-8 text") from None
        now = utcnow()
        values = {
            "id": campaign_id,
            "name": name or path.stem,
            "provider": provider,
            "sender": sender,
            "senders": list(pool) if pool else None,
            "source": str(path),
            "template": template,
            "fallback": fallback,
            "status": RUNNING,
            "rows_read": 0,
            "accepted": 0,
            "invalid": 0,
            "duplicate": 0,
            "suppressed": 0,
            "created_at": now,
            "updated_at": now,
            "start_at": timing.schedule.start_at,
            "send_window": str(timing.schedule.window) if timing.schedule.window else None,
            "time_zone": timezone,
            "valid_for_seconds": valid_for_seconds,
            "expires_at": timing.expires_at,
        }
        target = Target(
            campaign_id,
            provider,
            sender,
            checked,
            phone_column,
            normalise,
            checked_fallback,
            pool,
            schedule=timing.schedule,
            expires_at=timing.expires_at,
            windows=_windows_for(timing.schedule, windows, settings),
        )
        dispatched_to = 0
        started = False
        counted = 0
        batch_started = time.monotonic()

        def after_batch(counts: IngestCounts) -> None:
            nonlocal dispatched_to, started, counted, batch_started
            started = True
            metrics.accepted_many(
                provider, counts.accepted - counted, "campaign", time.monotonic() - batch_started
            )
            counted, batch_started = counts.accepted, time.monotonic()
            if counts.last_row - dispatched_to >= settings.campaign_fanout_rows:
                dispatch(campaign_id, dispatched_to + 1, counts.last_row)
                dispatched_to = counts.last_row
            if on_batch is not None:
                on_batch(campaign_id, counts)

        # The campaign's row is written with its first batch: a failure before that leaves no
        # campaign behind; after it, the rows already recorded (and maybe sent) are kept.
        try:
            ingest(
                ledger,
                target,
                _decoded(rows),
                batch_size=settings.campaign_batch_size,
                after_batch=after_batch,
                campaign=values,
            )
        except BaseException:
            if started:
                store.finish_reading(ledger, campaign_id)
                dispatch(campaign_id, dispatched_to + 1, None)
            raise
        store.finish_reading(ledger, campaign_id)
        dispatch(campaign_id, dispatched_to + 1, None)
    campaign = get_campaign(campaign_id, ledger=ledger)
    log.info(
        "campaign %s: %d rows read, %d accepted, %d invalid, %d duplicate, %d suppressed",
        campaign_id,
        campaign.rows_read,
        campaign.accepted,
        campaign.invalid,
        campaign.duplicate,
        campaign.suppressed,
    )
    return campaign


def _windows_for(schedule: Schedule | None, windows: Windows | None, settings: Settings) -> Windows | None:
    """The 24-hour windows a campaign with a send window reads (see ``holding.lapse_plan``)."""
    if schedule is None or schedule.window is None:
        return None
    return windows or get_windows(settings)


def dispatch_fanout(campaign_id: str, first_row: int, last_row: int | None) -> bool:
    """Publish a ``wadispatch.campaign_fanout`` task; ``False`` (logged) if the broker is down."""
    from wadispatch.celery import CAMPAIGN_FANOUT_TASK
    from wadispatch.publishing import publish_job

    args = [campaign_id, first_row, last_row]
    return publish_job(CAMPAIGN_FANOUT_TASK, args, about=f"the fan-out of campaign {campaign_id}")


def get_campaign(campaign_id: str, *, ledger: Ledger | None = None) -> CampaignRecord:
    """The campaign's record; :class:`UnknownCampaign` when there is none."""
    campaign = store.get_campaign(ledger or get_ledger(), campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign_id)
    return campaign


def list_campaigns(*, ledger: Ledger | None = None, limit: int = 100) -> list[CampaignRecord]:
    """The latest campaigns, newest first."""
    return store.list_campaigns(ledger or get_ledger(), limit)


def pause(campaign_id: str, *, ledger: Ledger | None = None) -> CampaignRecord:
    """Stop sending: no message of the campaign is claimed from now on; in-flight sends finish.

    Its messages stay ``pending``; their queued jobs are dropped when they come up. Idempotent.
    """
    ledger = ledger or get_ledger()
    get_campaign(campaign_id, ledger=ledger)
    store.set_status(ledger, campaign_id, [RUNNING], PAUSED)
    return get_campaign(campaign_id, ledger=ledger)


def resume(
    campaign_id: str,
    *,
    ledger: Ledger | None = None,
    dispatch: Callable[[str, int, int | None], bool] | None = None,
) -> CampaignRecord:
    """Send again: a paused campaign runs, and its pending messages are queued again.

    On a running campaign it queues the pending messages again too (after a broker outage, say):
    a job queued twice is harmless, the claim sends a message once. Cancelled and done campaigns
    are left as they are.
    """
    ledger = ledger or get_ledger()
    store.set_status(ledger, campaign_id, [PAUSED], RUNNING)
    campaign = get_campaign(campaign_id, ledger=ledger)
    if campaign.status == RUNNING:
        (dispatch or dispatch_fanout)(campaign_id, 1, None)
    return campaign


def cancel(campaign_id: str, *, ledger: Ledger | None = None, wait_seconds: float = 30.0) -> int:
    """End the campaign: every message not sent yet ends ``failed`` with reason ``cancelled``.

    Nothing of the campaign is claimed once this begins; messages in flight finish their attempt,
    and one that comes back to ``pending`` (a retry) is swept too, for up to ``wait_seconds``
    (later sweeps happen on every :func:`progress`). Returns how many messages it cancelled.
    Idempotent: a second call finds nothing left.
    """
    ledger = ledger or get_ledger()
    get_campaign(campaign_id, ledger=ledger)
    store.set_status(ledger, campaign_id, [RUNNING, PAUSED], CANCELLED)
    if get_campaign(campaign_id, ledger=ledger).status != CANCELLED:
        return 0  # done before: nothing was left to cancel
    cancelled = store.fail_pending(ledger, campaign_id, CANCELLED_REASON)
    deadline = time.monotonic() + wait_seconds
    while _in_flight(ledger, campaign_id) and time.monotonic() < deadline:
        time.sleep(0.2)
        cancelled += store.fail_pending(ledger, campaign_id, CANCELLED_REASON)
    return cancelled + store.fail_pending(ledger, campaign_id, CANCELLED_REASON)


def progress(
    campaign_id: str,
    *,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    live: Live | None = None,
) -> CampaignProgress:
    """Counts per state and failure reason, timing, rates, the sender's limit, 429s and an ETA;
    the same per sender (:attr:`CampaignProgress.senders`).

    Marks the campaign ``done`` when every row is read and every message settled. ``live`` reads
    the broker's Redis (workers alive, the limiter): default, that of ``settings``.
    """
    settings = settings or get_settings()
    ledger = ledger or get_ledger(settings.database_url)
    live = live or Live(settings)
    campaign = get_campaign(campaign_id, ledger=ledger)
    if campaign.status == CANCELLED:
        store.fail_pending(ledger, campaign_id, CANCELLED_REASON)
    states: dict[str, int] = {}
    failed_reasons: dict[str, int] = {}
    by_sender: dict[str | None, dict[str, int]] = {}
    for (sender, state, reason), count in store.state_counts(ledger, campaign_id).items():
        states[state] = states.get(state, 0) + count
        sender_states = by_sender.setdefault(sender, {})
        sender_states[state] = sender_states.get(state, 0) + count
        if state == State.FAILED.value:
            failed_reasons[reason or "unknown"] = failed_reasons.get(reason or "unknown", 0) + count
    remaining = states.get(State.PENDING.value, 0) + states.get(State.SENDING.value, 0)
    finished = campaign.finished_reading_at is not None and remaining == 0
    if campaign.status == RUNNING and finished:
        store.set_status(ledger, campaign_id, [RUNNING], DONE)
        campaign = get_campaign(campaign_id, ledger=ledger)
    now = utcnow()
    history = cached_timeline(
        ledger, campaign_id, now - timedelta(seconds=pace.WINDOW_SECONDS), finished=finished
    )
    # A campaign younger than the window settled everything it settled within it.
    young = (
        history.started_at is not None and pace.window_seconds(history.started_at, now) < pace.WINDOW_SECONDS
    )
    in_window = history.settled if young else history.settled_since
    timing = pace.pace(
        started_at=history.started_at,
        last_settle_at=history.last_settle_at,
        settled=history.settled,
        settled_in_window=in_window,
        finished=finished,
        now=now,
    )
    senders = per_sender(campaign, states, by_sender, live)
    limit = pool_limit(senders)
    running = campaign.status == RUNNING
    workers = live.workers_alive() if running and remaining else None
    estimate = pace.eta(
        remaining,
        timing.current_rate,
        limit.effective if limit.effective is not None else limit.declared,
        status=campaign.status,
        workers_alive=workers,
    )
    held, next_release = store.held_summary(ledger, campaign_id) if remaining else (0, None)
    eta_seconds = _eta_with_holds(estimate.seconds, remaining, held, next_release, now)
    return CampaignProgress(
        campaign=campaign,
        states=states,
        failed_reasons=failed_reasons,
        remaining=remaining,
        settled_recently=in_window,
        throughput=timing.current_rate,
        limit_rate=limit.declared,
        eta_seconds=eta_seconds,
        started_at=timing.started_at,
        finished_at=timing.finished_at,
        duration_seconds=timing.duration_seconds,
        average_rate=timing.average_rate,
        effective_rate=limit.effective,
        cooldown_seconds=limit.cooldown_seconds,
        rate_limited=history.rate_limited,
        retries=history.retries,
        held_back=history.held_back,
        workers_alive=workers,
        eta_note=estimate.note,
        sent_as_template=store.sent_as_template(ledger, campaign_id) if campaign.fallback else 0,
        suppressed_by_keyword=(
            store.suppressed_by_keyword(ledger, campaign_id) if failed_reasons.get("suppressed") else 0
        ),
        senders=tuple(senders),
        waiting_for_window=held,
        next_release_at=next_release,
    )


def _eta_with_holds(
    seconds: float | None, remaining: int, held: int, next_release: datetime | None, now: datetime
) -> float | None:
    """The ETA with the held messages going out after their release: their share of the sending
    time starts at the next opening (later windows of a multi-day campaign are not modelled)."""
    if seconds is None or not held or next_release is None or not remaining:
        return seconds
    wait = max(0.0, (next_release - now).total_seconds())
    return max(seconds, wait + seconds * held / remaining)


def estimate_eta(
    remaining: int, throughput: float, limit: float, *, running: bool, workers_alive: int | None = 1
) -> float | None:
    """Seconds to send ``remaining`` at the lower of the observed throughput and the limit. Pure.

    Before anything has settled (throughput 0) the limit alone is used; None when not running or
    when no worker is alive (see :func:`wadispatch.campaigns.pace.eta`, which says why).
    """
    status = RUNNING if running else PAUSED
    return pace.eta(remaining, throughput, limit, status=status, workers_alive=workers_alive).seconds


def report(campaign_id: str, out: str | Path | IO[str], *, ledger: Ledger | None = None) -> int:
    """Write the campaign's CSV report: one row per row of its file, in file order; rows written.

    Columns: :data:`REPORT_COLUMNS`. An accepted row has its message's state (``pending`` ...
    ``failed``) and details; a skipped row has ``state`` ``invalid``, ``duplicate`` or
    ``suppressed``, the reason, and the phone as written (invalid) or normalised. ``sender`` is
    the message's sender (blank on a skipped row).
    """
    ledger = ledger or get_ledger()
    get_campaign(campaign_id, ledger=ledger)
    if isinstance(out, str | Path):
        with Path(out).open("w", encoding="utf-8", newline="") as handle:
            return report(campaign_id, handle, ledger=ledger)
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    written = 0
    for _, line in heapq.merge(_message_lines(ledger, campaign_id), _skipped_lines(ledger, campaign_id)):
        writer.writerow(line)
        written += 1
    return written


# --- suppressions ----------------------------------------------------------------------------------


def suppress(
    recipients: list[str],
    *,
    sender: str | None = None,
    reason: str | None = "opted out",
    region: str | None = None,
    ledger: Ledger | None = None,
) -> int:
    """Put phone numbers on the suppression list (for ``sender``, or every sender); how many were new.

    Numbers are normalised like a campaign's (:class:`CampaignInputError` names a bad one).
    """
    normalise = PhoneNormaliser(region)
    normalised = []
    for recipient in recipients:
        try:
            normalised.append(normalise(recipient))
        except PhoneError as exc:
            raise CampaignInputError(f"{recipient!r}: {exc}") from None
    return store.suppress(
        ledger or get_ledger(), [(sender, r) for r in normalised], reason=reason, source="user"
    )


def unsuppress(recipient: str, *, sender: str | None = None, ledger: Ledger | None = None) -> bool:
    """Take a number off the suppression list (the ``sender`` one, or the all-senders one)."""
    try:
        normalised = PhoneNormaliser(None)(recipient)
    except PhoneError as exc:
        raise CampaignInputError(f"{recipient!r}: {exc}") from None
    return store.unsuppress(ledger or get_ledger(), normalised, sender) > 0


def suppressions(
    *, recipient: str | None = None, sender: str | None = None, ledger: Ledger | None = None
) -> list[store.SuppressionRecord]:
    """The suppression list, newest first (filtered by number and/or sender)."""
    return store.list_suppressions(ledger or get_ledger(), recipient=recipient, sender=sender)


# --- helpers ---------------------------------------------------------------------------------------


def _decoded(rows: Iterator[Any]) -> Iterator[Any]:
    """The rows, ending with a row error instead of an exception where the file stops being UTF-8."""
    number = 0
    try:
        for number, value in rows:
            yield number, value
    except UnicodeDecodeError:
        yield number + 1, RowError("not UTF-8 text from here on: the rest of the file was not read")


def _in_flight(ledger: Ledger, campaign_id: str) -> bool:
    return any(state == State.SENDING.value for _, state, _ in store.state_counts(ledger, campaign_id))


def _message_lines(ledger: Ledger, campaign_id: str) -> Iterator[tuple[int, list[Any]]]:
    for page in store.message_pages(ledger, campaign_id):
        for row in page:
            yield (
                row.campaign_row,
                [
                    row.campaign_row,
                    row.recipient,
                    row.sender or "",
                    row.state,
                    row.reason or "",
                    row.id,
                    row.provider_message_id or "",
                    row.provider_error_code or "",
                    row.attempts,
                    _iso(row.created_at),
                    _iso(row.updated_at),
                    row.reply_id or "",
                    row.reply_title or "",
                    _iso(row.replied_at),
                    row.sent_as or "",
                ],
            )


def _skipped_lines(ledger: Ledger, campaign_id: str) -> Iterator[tuple[int, list[Any]]]:
    for page in store.skipped_pages(ledger, campaign_id):
        for item in page:
            line = [item.row_number, item.recipient or "", "", item.kind, item.reason, *[""] * 10]
            yield item.row_number, line


def _iso(value: datetime | None) -> str:
    return "" if value is None else aware(value).isoformat()


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


__all__ = [
    "CampaignInputError",
    "CampaignProgress",
    "CampaignRecord",
    "UnknownCampaign",
    "cancel",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "pause",
    "progress",
    "report",
    "resume",
    "suppress",
    "suppressions",
    "unsuppress",
]
