"""The product's Prometheus metrics: each seam counts what happened, with bounded labels only."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from wadispatch import deadletters, metrics
from wadispatch.engine import Attempts, Prepared
from wadispatch.inbox import apply_events
from wadispatch.providers import Outcome
from wadispatch.reconcile import ReconcileReport
from wadispatch.settings import Settings
from wadispatch.webhooks.events import Inbound, Unknown

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "workers" / "monitoring" / "grafana" / "dashboards" / "wadispatch.json"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """``with Delta("name", label=...) as d: ...`` then ``d.value``: how much the sample grew."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels

    def __enter__(self) -> Delta:
        self.before = value(self.name, **self.labels)
        return self

    def __exit__(self, *_: object) -> None:
        self.value = value(self.name, **self.labels) - self.before


# --- the send path ---------------------------------------------------------------------------------


class FakeTransport:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def send(self, request: Any, adapter: Any) -> Outcome:
        return self.outcome


class FakeCooldowns:
    async def left(self, provider: str, sender: str | None) -> float:
        return 0.0

    def note(self, provider: str, sender: str | None, cooldown: float) -> None:
        pass


class FakeLimiter:
    async def penalize(self, provider: str, sender: str | None, retry_after: float | None) -> float:
        return 2.5


class FakeRecorder:
    async def mark_requested(self, record: Any) -> bool:
        return True

    async def settle(self, change: Any) -> Any:
        return SimpleNamespace(applied=True, early=[])


def attempt(outcome: Outcome, sender: str) -> Any:
    """One message's attempt through the engine's :class:`Attempts`, answered ``outcome``."""

    async def run() -> Any:
        loop = SimpleNamespace(
            loop=asyncio.get_running_loop(),
            in_flight=asyncio.Semaphore(10),
            transport=FakeTransport(outcome),
            cooldowns=lambda limiter: FakeCooldowns(),
        )
        record = SimpleNamespace(
            id="m-1",
            provider="meta",
            sender=sender,
            recipient="+255712345678",
            attempts=1,
            created_at=datetime.now(UTC),
            fallback=None,
            sent_as=None,
            expires_at=None,
        )
        attempts = Attempts(
            0.0, {"m-1": 0.0}, FakeLimiter(), loop, FakeRecorder(), Settings(), random.Random(1)
        )
        prepared = Prepared(adapter=SimpleNamespace(), request=SimpleNamespace())
        return await attempts.run(record, prepared)

    return asyncio.run(run())


def test_a_send_accepted_counts_sent_the_answer_and_its_latency() -> None:
    with (
        Delta("wadispatch_messages_sent_total", provider="meta", sender="111") as sent,
        Delta(
            "wadispatch_provider_responses_total", provider="meta", **{"class": "accepted"}, status="200"
        ) as answers,
        Delta("wadispatch_provider_request_seconds_count", provider="meta") as latency,
    ):
        settled = attempt(Outcome.accepted("wamid.1", 200), "111")
    assert settled.change.to_state.value == "sent"
    assert (sent.value, answers.value, latency.value) == (1, 1, 1)
    assert value("wadispatch_sender_rate_limit", provider="meta", sender="111") == Settings().default_rate


def test_a_send_failed_counts_its_reason() -> None:
    with Delta(
        "wadispatch_messages_failed_total", provider="meta", sender="111", reason="invalid_recipient"
    ) as d:
        attempt(Outcome.permanent("invalid_recipient", status_code=400), "111")
    assert d.value == 1
    assert value(
        "wadispatch_provider_responses_total", provider="meta", **{"class": "permanent"}, status="400"
    )


def test_a_429_counts_the_rate_limit_the_cooldown_and_the_retry() -> None:
    labels = {"provider": "meta", "sender": "222"}
    with (
        Delta("wadispatch_provider_rate_limited_total", **labels) as limited,
        Delta("wadispatch_sender_cooldowns_total", **labels) as cooldowns,
        Delta("wadispatch_messages_retried_total", **labels, reason="rate_limited") as retried,
    ):
        attempt(Outcome.rate_limited(1.0, status_code=429), "222")
    assert (limited.value, cooldowns.value, retried.value) == (1, 1, 1)


def test_a_metric_that_fails_never_raises_into_the_send(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("registry trouble")

    monkeypatch.setattr(metrics.SENT, "labels", broken)
    with Delta("wadispatch_metric_errors_total") as errors:
        settled = attempt(Outcome.accepted("wamid.2", 200), "111")
    assert settled.recorded and settled.change.to_state.value == "sent"
    assert errors.value == 1


def test_senders_past_the_bound_are_labelled_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "SENDERS", metrics._Senders())
    bound = Settings().metrics_max_senders
    labels = [metrics.sender_label("meta", str(number)) for number in range(bound + 5)]
    assert labels[:bound] == [str(number) for number in range(bound)]
    assert set(labels[bound:]) == {metrics.OTHER_SENDER}


# --- webhooks, enqueue, reconcile, dead letters ----------------------------------------------------


class FakeLedger:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def record_webhook_event(self, provider: str, key: str) -> bool:
        fresh = key not in self.seen
        self.seen.add(key)
        return fresh

    def remember_contacts(self, provider: str, pairs: Any) -> None:
        pass

    def contact_names(self, provider: str, names: Any) -> dict[str, str]:
        return {}


class FakeWindows:
    def open_at(self, openings: Any) -> None:
        pass


def test_a_webhook_counts_each_event_by_type_and_outcome_and_its_lag() -> None:
    at = datetime.now(UTC) - timedelta(seconds=30)
    events = [
        Inbound("meta", "wamid.in.1", "111", "+255712345678", at=at),
        Inbound("meta", "wamid.in.1", "111", "+255712345678", at=at),
        Unknown("meta", "x", "a reaction"),
    ]
    inbound = {"provider": "meta", "type": "inbound"}
    with (
        Delta("wadispatch_webhook_events_total", **inbound, outcome="inbound") as applied,
        Delta("wadispatch_webhook_events_total", **inbound, outcome="duplicates") as duplicates,
        Delta(
            "wadispatch_webhook_events_total", provider="meta", type="unknown", outcome="ignored"
        ) as ignored,
        Delta("wadispatch_webhook_lag_seconds_count", **inbound) as lags,
        Delta("wadispatch_webhook_lag_seconds_sum", **inbound) as lag,
    ):
        apply_events(events, ledger=FakeLedger(), windows=FakeWindows(), settings=Settings())
    assert (applied.value, duplicates.value, ignored.value, lags.value) == (1, 1, 1, 2)
    assert 2 * 29 <= lag.value <= 2 * 60


def test_an_enqueue_counts_the_message_and_its_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    from wadispatch import producer

    class Ledger:
        def record_pending(self, request: Any) -> tuple[str, bool]:
            return "m-1", True

    monkeypatch.setattr(producer, "check_configuration", lambda: None)
    monkeypatch.setattr(producer, "publish_message", lambda message_id: True)
    request = {
        "provider": "meta",
        "sender": "111",
        "to": "+255712345678",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick one"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
        },
    }
    with (
        Delta("wadispatch_messages_accepted_total", provider="meta") as accepted,
        Delta("wadispatch_enqueue_seconds_count", call="enqueue") as timed,
    ):
        producer.enqueue(request, ledger=Ledger())  # type: ignore[arg-type]
    assert (accepted.value, timed.value) == (1, 1)


def test_a_reconcile_run_counts_its_actions_by_kind() -> None:
    report = ReconcileReport(republished=3, stuck_failed=2, never_requested=1)
    with (
        Delta("wadispatch_reconciler_actions_total", kind="republished") as republished,
        Delta("wadispatch_reconciler_actions_total", kind="stuck_failed") as stuck,
        Delta("wadispatch_reconciler_actions_total", kind="never_requested") as never,
        Delta("wadispatch_reconciler_runs_total") as runs,
    ):
        metrics.reconciled(report)
        metrics.reconciled(ReconcileReport(dry_run=True, republished=7))
        metrics.reconciled(ReconcileReport(locked_out=True))
    assert (republished.value, stuck.value, never.value, runs.value) == (3, 2, 1, 1)


def test_a_stored_dead_letter_is_counted() -> None:
    class Ledger:
        def record_dead_letter(self, letter: Any) -> int:
            return 7

    letter = deadletters.build_dead_letter("poison", settings=Settings(), args=["x"], task="t", error="e")
    with Delta("wadispatch_dead_letters_total", reason="poison") as stored:
        assert deadletters.store(Ledger(), letter) == 7  # type: ignore[arg-type]
    assert stored.value == 1


# --- names and the dashboard -----------------------------------------------------------------------


def test_every_metric_is_prefixed_and_carries_no_identifying_label() -> None:
    forbidden = {"message_id", "id", "phone", "recipient", "to", "user_id", "user", "campaign_id"}
    for metric in vars(metrics).values():
        if isinstance(metric, metrics.Counter | metrics.Gauge | metrics.Histogram):
            assert metric._name.startswith("wadispatch_"), metric._name
            assert not forbidden & set(metric._labelnames), (metric._name, metric._labelnames)


#: PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "by", "without", "histogram_quantile", "max", "min", "avg",
    "count", "topk", "bottomk", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "clamp_min", "clamp_max", "le", "offset", "vector", "label_replace", "abs", "delta", "deriv",
}  # fmt: skip


def dashboard_exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [expr for value in node.values() for expr in dashboard_exprs(value)]
    if isinstance(node, list):
        return [expr for item in node for expr in dashboard_exprs(item)]
    return []


def metric_names_in(expr: str) -> set[str]:
    """Identifiers of an expression outside ``{...}`` label matchers, ``[...]`` ranges and strings,
    that are not PromQL's own words or label names after ``by``/``without``."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {name for name in names if name not in PROMQL_WORDS and not re.fullmatch(r"\d.*", name)}


def test_the_dashboard_queries_only_metrics_the_product_exports() -> None:
    import json

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 5
    used = set().union(*(metric_names_in(expr) for expr in exprs))
    assert used, exprs
    assert used <= metrics.exported_names(), sorted(used - metrics.exported_names())


def test_the_name_scan_finds_names_and_skips_promql() -> None:
    expr = 'sum by (provider, sender) (rate(wadispatch_messages_sent_total{sender!="x"}[5m]))'
    assert metric_names_in(expr) == {"wadispatch_messages_sent_total"}
    assert "wadispatch_nope_total" not in metrics.exported_names()
    assert "wadispatch_webhook_lag_seconds_bucket" in metrics.exported_names()
    assert "wadispatch_queue_jobs" in metrics.exported_names()


README = ROOT / "README.md"


def readme_promql() -> list[str]:
    """Every PromQL expression README shows: the lines of its ``promql`` blocks (comments left
    out) and its inline code that applies a function to a metric (``rate(...)``, ``sum(...)``)."""
    text = README.read_text(encoding="utf-8")
    exprs = [
        line
        for block in re.findall(r"```promql\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    inline = re.findall(r"`([^`\n]*\b(?:flower|wadispatch)_[a-z_]+[^`\n]*)`", text)
    return exprs + [code for code in inline if re.match(r"\s*[a-z_]+\(", code)]


def flower_metric_names() -> set[str]:
    """The metrics Flower's ``/metrics`` serves (read from its source), with histogram suffixes."""
    import inspect

    from flower import events

    names = set(re.findall(r"'(flower_[a-z_]+)'", inspect.getsource(events)))
    return names | {f"{name}_{suffix}" for name in names for suffix in ("bucket", "count", "sum")}


def test_the_readme_promql_names_only_metrics_the_product_or_flower_exports() -> None:
    exprs = readme_promql()
    assert len(exprs) >= 6
    assert any("flower_events_total" in expr for expr in exprs)
    known = metrics.exported_names() | flower_metric_names()
    used = set().union(*(metric_names_in(expr) for expr in exprs))
    assert used <= known, sorted(used - known)
    assert "flower_events_total" in flower_metric_names()
