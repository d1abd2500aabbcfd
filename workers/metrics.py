"""Prometheus metrics of the product: what was accepted, sent, failed and throttled, and why.

Every metric is named ``wadispatch_*`` and carries only bounded labels: provider, sender (the
business number messages go from), reason, outcome class, HTTP status, webhook event type and
outcome, reconciler action. Never a message id, a recipient's phone number or a user id.

The code that does the work calls the small functions below at the point where something happened
(an attempt settled, a webhook event applied, a reconciler run ended, ...). None of them ever
raises: a metric that cannot be counted is logged at DEBUG and counted in
``wadispatch_metric_errors_total``, and the send goes on.

Values that are cheaper to read when asked than to keep up to date (the queue's length, the
limiter's current rate factor) are computed at scrape time by the collectors
:class:`QueueCollector` and :class:`SenderRateCollector`.

Exposition: the API serves ``/metrics`` (:func:`metrics_response`); a worker serves its own on
``WADISPATCH_METRICS_PORT`` (:func:`serve_worker_metrics`). README "Monitoring" lists them all.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wadispatch.settings import Settings

log = logging.getLogger("wadispatch.metrics")

P = ParamSpec("P")

#: The sender label of senders past the bound (``WADISPATCH_METRICS_MAX_SENDERS``).
OTHER_SENDER = "other"
#: Longest value a free-text label (a reason) keeps.
LABEL_MAX = 40

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86_400.0)

# --- enqueue ---------------------------------------------------------------------------------------
ACCEPTED = Counter(
    "wadispatch_messages_accepted_total",
    "Messages accepted by enqueue and campaigns (recorded pending; idempotent repeats not counted).",
    ["provider"],
)
ENQUEUE_SECONDS = Histogram(
    "wadispatch_enqueue_seconds",
    "Time of one enqueue call (validate, record, publish).",
    ["call"],
    buckets=_LATENCY_BUCKETS,
)
# --- sends -----------------------------------------------------------------------------------------
SENT = Counter("wadispatch_messages_sent_total", "Messages the provider accepted.", ["provider", "sender"])
FAILED = Counter(
    "wadispatch_messages_failed_total",
    "Messages failed for good by a send attempt, by reason.",
    ["provider", "sender", "reason"],
)
RETRIED = Counter(
    "wadispatch_messages_retried_total",
    "Send attempts that ended in a retry later, by reason.",
    ["provider", "sender", "reason"],
)
PROVIDER_RESPONSES = Counter(
    "wadispatch_provider_responses_total",
    "Provider answers by outcome class (accepted, rate_limited, transient, permanent) and HTTP status.",
    ["provider", "class", "status"],
)
PROVIDER_SECONDS = Histogram(
    "wadispatch_provider_request_seconds",
    "Time from a provider request leaving to its answer.",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
# --- the limiter -----------------------------------------------------------------------------------
RATE_LIMITED = Counter(
    "wadispatch_provider_rate_limited_total",
    "Provider 429s (rate-limited answers) per sender.",
    ["provider", "sender"],
)
COOLDOWNS = Counter(
    "wadispatch_sender_cooldowns_total",
    "Cooldowns a 429 started for a sender (every worker then holds the sender back).",
    ["provider", "sender"],
)
THROTTLED = Counter(
    "wadispatch_messages_throttled_total",
    "Messages the limiter held back without a request (deferred for a slot, or cooling down).",
    ["provider", "sender"],
)
LIMITER_WAIT = Histogram(
    "wadispatch_limiter_wait_seconds",
    "Wait for a granted rate-limit slot.",
    ["provider", "sender"],
    buckets=_WAIT_BUCKETS,
)
DECLARED_RATE = Gauge(
    "wadispatch_sender_rate_limit",
    "The declared rate of a sender (messages/s; WADISPATCH_SENDERS or the default).",
    ["provider", "sender"],
)
# --- webhooks --------------------------------------------------------------------------------------
WEBHOOK_EVENTS = Counter(
    "wadispatch_webhook_events_total",
    "Webhook events applied, by type and outcome.",
    ["provider", "type", "outcome"],
)
WEBHOOK_LAG = Histogram(
    "wadispatch_webhook_lag_seconds",
    "Now minus the event's own time (events that carry one: inbound messages, replies).",
    ["provider", "type"],
    buckets=_LAG_BUCKETS,
)
OPT_OUTS = Counter(
    "wadispatch_opt_outs_total",
    "Opt-out keywords that put their writer on the suppression list.",
    ["provider", "scope"],
)
OPT_OUT_STOPPED = Counter(
    "wadispatch_opt_out_stopped_messages_total",
    "Queued campaign messages an opt-out keyword stopped (failed, reason suppressed).",
    ["provider"],
)
# --- recovery --------------------------------------------------------------------------------------
RECONCILER_ACTIONS = Counter(
    "wadispatch_reconciler_actions_total",
    "Messages and events each reconciler run acted on (or held back), by kind.",
    ["kind"],
)
RECONCILER_RUNS = Counter(
    "wadispatch_reconciler_runs_total", "Reconciler runs that did their work (not dry runs)."
)
DEAD_LETTERS = Counter(
    "wadispatch_dead_letters_total", "Jobs kept in the dead-letter store, by reason.", ["reason"]
)
METRIC_ERRORS = Counter(
    "wadispatch_metric_errors_total", "Metric updates that failed (logged at DEBUG; never raised)."
)

#: Kinds of reconciler action, each a field of ``ReconcileReport``.
RECONCILER_KINDS = (
    "republished",
    "publish_failed",
    "never_requested",
    "stuck_failed",
    "stuck_requeued",
    "cancelled",
    "held_back",
    "held_back_stuck",
    "early_events_applied",
    "early_events_dropped",
)

#: Names of the metrics the collectors compute at scrape time (not in the module's globals).
COLLECTED = (
    "wadispatch_queue_jobs",
    "wadispatch_workers_alive",
    "wadispatch_sender_allowed_rate",
    "wadispatch_campaigns",
    "wadispatch_campaign_messages",
)


def never_raises(function: Callable[P, None]) -> Callable[P, None]:
    """A metric update that logs and counts its own failure instead of raising into its caller."""

    @functools.wraps(function)
    def safe(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception as exc:
            log.debug("could not update a metric in %s: %r", function.__name__, exc)
            with contextlib.suppress(Exception):
                METRIC_ERRORS.inc()

    return safe


# --- bounded labels --------------------------------------------------------------------------------


class _Senders:
    """The senders given their own label value: those declared in the settings, then the first
    ``limit`` others seen by this process; later ones are all ``other``."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def label(self, provider: str, sender: str | None) -> str:
        from wadispatch.settings import get_settings

        key = (provider, sender or "")
        if key in self.seen:
            return key[1]
        settings = get_settings()
        with self.lock:
            declared = f"{provider}:{key[1]}" in settings.senders
            if declared or len(self.seen) < settings.metrics_max_senders:
                self.seen.add(key)
                return key[1]
        return OTHER_SENDER

    def known(self) -> list[tuple[str, str]]:
        with self.lock:
            return sorted(self.seen)


SENDERS = _Senders()


def sender_label(provider: str, sender: str | None) -> str:
    """The label value of a sender: itself, or ``other`` past ``WADISPATCH_METRICS_MAX_SENDERS``."""
    return SENDERS.label(provider, sender)


def _cut(value: str | None) -> str:
    return (value or "")[:LABEL_MAX]


# --- the seams -------------------------------------------------------------------------------------


@never_raises
def accepted(providers: Iterable[str], call: str, seconds: float) -> None:
    """Messages newly accepted by one ``enqueue`` / ``enqueue_many`` call that took ``seconds``."""
    for provider in providers:
        ACCEPTED.labels(provider=provider).inc()
    ENQUEUE_SECONDS.labels(call=call).observe(seconds)


@never_raises
def accepted_many(provider: str, count: int, call: str, seconds: float) -> None:
    """``count`` messages of one provider accepted by one call (a campaign's batch of rows)."""
    if count > 0:
        ACCEPTED.labels(provider=provider).inc(count)
    ENQUEUE_SECONDS.labels(call=call).observe(seconds)


@never_raises
def limiter_waited(provider: str, sender: str | None, seconds: float) -> None:
    """A slot was granted ``seconds`` ahead."""
    LIMITER_WAIT.labels(provider=provider, sender=sender_label(provider, sender)).observe(max(0.0, seconds))


@never_raises
def throttled(provider: str, sender: str | None, count: int = 1) -> None:
    """``count`` messages held back by the limiter without a request."""
    THROTTLED.labels(provider=provider, sender=sender_label(provider, sender)).inc(count)


@never_raises
def provider_answered(provider: str, kind: str, status_code: int | None, seconds: float) -> None:
    """A provider request's answer (``kind``: the outcome class) after ``seconds``."""
    status = str(status_code) if status_code is not None else "none"
    PROVIDER_RESPONSES.labels(provider=provider, **{"class": kind}, status=status).inc()
    PROVIDER_SECONDS.labels(provider=provider).observe(seconds)


@never_raises
def rate_limited(provider: str, sender: str | None, cooldown: float) -> None:
    """A provider answered 429 and the sender cools down ``cooldown`` seconds."""
    label = sender_label(provider, sender)
    RATE_LIMITED.labels(provider=provider, sender=label).inc()
    if cooldown > 0:
        COOLDOWNS.labels(provider=provider, sender=label).inc()


@never_raises
def settled(
    provider: str, sender: str | None, to_state: str, reason: str | None, settings: Settings | None = None
) -> None:
    """A send attempt's recorded result: ``sent``, ``failed`` (with its reason) or ``pending``
    (a retry, with its reason); with ``settings``, the sender's declared rate too."""
    label = sender_label(provider, sender)
    if settings is not None and label != OTHER_SENDER:
        declared = settings.sender_limit(provider, sender).rate
        DECLARED_RATE.labels(provider=provider, sender=label).set(declared)
    if to_state == "sent":
        SENT.labels(provider=provider, sender=label).inc()
    elif to_state == "failed":
        FAILED.labels(provider=provider, sender=label, reason=_cut(reason or "failed")).inc()
    elif to_state == "pending":
        RETRIED.labels(provider=provider, sender=label, reason=_cut(reason or "retry")).inc()


@never_raises
def webhook_event(provider: str, event_type: str, outcome: str, at: datetime | None = None) -> None:
    """One webhook event applied with this outcome; ``at``: when it happened, if it says."""
    WEBHOOK_EVENTS.labels(provider=provider, type=event_type, outcome=outcome).inc()
    if at is not None:
        lag = (datetime.now(UTC) - at).total_seconds()
        WEBHOOK_LAG.labels(provider=provider, type=event_type).observe(max(0.0, lag))


@never_raises
def opted_out(provider: str, scope: str, stopped: int) -> None:
    """An opt-out keyword put its writer on the suppression list and stopped ``stopped`` queued
    campaign messages."""
    OPT_OUTS.labels(provider=provider, scope=scope).inc()
    if stopped:
        OPT_OUT_STOPPED.labels(provider=provider).inc(stopped)


@never_raises
def reconciled(report: Any) -> None:
    """A reconciler run's ``ReconcileReport`` (dry runs and locked-out runs count nothing)."""
    if report.dry_run or report.locked_out:
        return
    RECONCILER_RUNS.inc()
    for kind in RECONCILER_KINDS:
        count = getattr(report, kind)
        if count:
            RECONCILER_ACTIONS.labels(kind=kind).inc(count)


@never_raises
def dead_lettered(reason: str) -> None:
    """A job was stored in the dead-letter store."""
    DEAD_LETTERS.labels(reason=_cut(reason)).inc()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (monotonic)."""

    def __enter__(self) -> Timer:
        self.started = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self.started


# --- computed at scrape time -----------------------------------------------------------------------


class QueueCollector(Collector):
    """The queue's depth and its consumers, read from Redis when scraped (one round trip).

    ``queued``: jobs waiting in the queue's lists; ``unacked``: jobs reserved by workers or held
    until their countdown (deferred and retrying messages; every queue of the Redis database).
    Served by the API only, so that a sum over the scraped processes counts the queue once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    def reset(self) -> None:
        """Forget the Redis client (the settings changed)."""
        self._client = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from wadispatch import liveness

        try:
            if self._client is None:
                self._client = liveness.redis_client(self.settings.redis_url)
            state = liveness.look(self._client, self.settings.queue, self.settings.heartbeat_timeout_seconds)
        except Exception as exc:  # a scrape without the queue's numbers, not a failed scrape
            log.debug("could not read the queue for metrics: %r", exc)
            METRIC_ERRORS.inc()
            return
        jobs = GaugeMetricFamily(
            "wadispatch_queue_jobs",
            "Jobs in the broker: queued, or unacked (reserved or deferred).",
            labels=["state"],
        )
        jobs.add_metric(["queued"], state.queued_jobs)
        jobs.add_metric(["unacked"], state.unacked_jobs)
        yield jobs
        yield GaugeMetricFamily(
            "wadispatch_workers_alive",
            "Workers with a fresh heartbeat on the queue.",
            value=state.workers_alive,
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing at registration: no Redis round trip when the collector is registered."""
        return iter(())


class SenderRateCollector(Collector):
    """The rate each sender this process has sent for may use now: declared rate x headroom x the
    limiter's current factor (cut on repeated 429s, or set to the rate learned from a burst of them,
    recovering over time), one Redis read per sender when scraped. Senders past the label bound
    are not shown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._limiter: Any = None

    def reset(self) -> None:
        """Forget the limiter (the settings changed)."""
        self._limiter = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "wadispatch_sender_allowed_rate",
            "Rate (messages/s) the shared limiter allows a sender now: declared x headroom x factor.",
            labels=["provider", "sender"],
        )
        try:
            for provider, sender in SENDERS.known():
                declared = self.settings.sender_limit(provider, sender).rate * self.settings.rate_headroom
                factor = self._factor(provider, sender)
                family.add_metric([provider, sender], declared * factor)
        except Exception as exc:
            log.debug("could not read the limiter for metrics: %r", exc)
            METRIC_ERRORS.inc()
        yield family

    def _factor(self, provider: str, sender: str) -> float:
        if not self.settings.rate_limiting:
            return 1.0
        if self._limiter is None:
            from wadispatch.ratelimit import RedisLimiter

            self._limiter = RedisLimiter(self.settings.redis_url, self.settings)
        return float(self._limiter.state(provider, sender or None).factor)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing at registration (no Redis round trip)."""
        return iter(())


class CampaignCollector(Collector):
    """Campaigns by status, and the messages of the running and paused ones by state, read from
    the ledger when scraped (two grouped counts; no campaign id in a label). Served by the API only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def reset(self) -> None:
        """Nothing kept between scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from wadispatch.campaigns.store import campaign_figures
        from wadispatch.ledger import get_ledger

        try:
            statuses, states = campaign_figures(get_ledger(self.settings.database_url))
        except Exception as exc:  # a scrape without the campaigns, not a failed scrape
            log.debug("could not read the campaigns for metrics: %r", exc)
            METRIC_ERRORS.inc()
            return
        campaigns = GaugeMetricFamily("wadispatch_campaigns", "Campaigns by status.", labels=["status"])
        for status in ("running", "paused", "done", "cancelled"):
            campaigns.add_metric([status], statuses.get(status, 0))
        yield campaigns
        progress = GaugeMetricFamily(
            "wadispatch_campaign_messages",
            "Messages of the running and paused campaigns, by state (their progress).",
            labels=["state"],
        )
        for state in ("pending", "sending", "sent", "delivered", "read", "failed"):
            progress.add_metric([state], states.get(state, 0))
        yield progress

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing at registration (no query)."""
        return iter(())


_collectors: dict[str, QueueCollector | SenderRateCollector | CampaignCollector] = {}
_register_lock = threading.Lock()


def watch_queue(settings: Settings) -> None:
    """Report the queue's depth at scrape time (the API's process), on these settings."""
    _collect("queue", QueueCollector, settings)


def watch_campaigns(settings: Settings) -> None:
    """Report campaigns and their messages' states at scrape time (the API's process)."""
    _collect("campaigns", CampaignCollector, settings)


def watch_sender_rates(settings: Settings) -> None:
    """Report each sender's allowed rate at scrape time (a worker's process)."""
    _collect("sender_rate", SenderRateCollector, settings)


def _collect(
    name: str, kind: type[QueueCollector | SenderRateCollector | CampaignCollector], settings: Settings
) -> QueueCollector | SenderRateCollector | CampaignCollector:
    """The process's one collector of this kind, registered once; later settings replace the
    earlier ones (each app made in a process reads its own Redis)."""
    with _register_lock:
        collector = _collectors.get(name)
        if collector is None:
            collector = _collectors[name] = kind(settings)
            REGISTRY.register(collector)
        elif collector.settings is not settings:
            collector.settings = settings
            collector.reset()
        return collector


def exported_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every metric name the product exports, as PromQL sees it (counters with ``_total``,
    histograms with ``_bucket``/``_sum``/``_count``), the scrape-time ones included."""
    names = set(COLLECTED)
    for metric in (value for value in globals().values() if isinstance(value, Counter | Gauge | Histogram)):
        for family in metric.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


# --- exposition ------------------------------------------------------------------------------------


def metrics_response(accept: str | None = None) -> tuple[bytes, str]:
    """The registry in the format the scraper's ``Accept`` header asks for (Prometheus' text
    format, or OpenMetrics), and its content type."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


_server_started = False


def serve_worker_metrics(settings: Settings) -> bool:
    """Serve this process's metrics on ``WADISPATCH_METRICS_PORT`` (no-op when unset, or when
    already serving); returns whether it serves. A port taken is logged, never fatal."""
    global _server_started
    if settings.metrics_port is None or _server_started:
        return _server_started
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        log.warning("not serving metrics on port %s: %s", settings.metrics_port, exc)
        return False
    watch_sender_rates(settings)
    _server_started = True
    log.info("serving metrics on %s:%s/metrics", settings.metrics_host, settings.metrics_port)
    return True
