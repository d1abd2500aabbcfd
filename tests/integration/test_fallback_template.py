"""A closed 24-hour window answered with the message's fallback template, with real parts (the
HTTP API, a worker, the simulator's Meta, its webhooks): refused by the provider, reported by a
status webhook after the provider accepted the message (as Meta does), then known
closed; the template's quick-reply tap recorded as the message's reply; a template refused too
ends failed after one request. SQLite always, PostgreSQL when set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_support import Api, webhook_url
from tests.integration.test_pipeline import SENDERS
from tests.support import button_request, wait_for

pytestmark = pytest.mark.integration

CLOSED = "+255700000888"
TEMPLATE = {
    "name": "order_ready",
    "language": "en_US",
    "body_parameters": ["Asha"],
    "quick_replies": ["yes", "no"],
}


@pytest.fixture
def closed_window(sim: httpx.Client, api: Api) -> Iterator[str]:
    """The simulator refuses interactive messages to ``CLOSED`` for a closed window, and posts
    Meta's status webhooks to the API (no taps until a test asks); restored after."""
    saved = sim.get("/_sim/config").json()
    knobs = {
        "window_closed_recipients": [CLOSED],
        "callbacks": True,
        "reply_share": 0.0,
        "callback_delay_ms": 5,
        "webhook_urls": {"meta": webhook_url(api.url, "meta")},
    }
    sim.put("/_sim/config", json=knobs).raise_for_status()
    yield CLOSED
    sim.put("/_sim/config", json=saved).raise_for_status()


def send(api: Api) -> str:
    body = button_request("meta", sender=SENDERS["meta"], to=CLOSED, fallback=TEMPLATE)
    answer = api.client.post("/v1/messages/interactive", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["message_id"]


def message(api: Api, message_id: str) -> dict[str, Any]:
    return api.client.get(f"/v1/messages/{message_id}").json()


def replied(api: Api, message_id: str) -> dict[str, Any] | None:
    body = message(api, message_id)
    return body if body["reply"] else None


def sent_types(sim: httpx.Client) -> list[str]:
    log = sim.get("/_sim/stats").json()["accepted_log"]
    return [entry["body"]["type"] for entry in log]


def test_a_closed_window_is_answered_with_the_template_and_its_tap_is_the_reply(
    api: Api, closed_window: str, sim: httpx.Client, start_worker, database_url: str
) -> None:
    start_worker(database_url, **api.worker_env)

    # Refused by the provider: the template goes in the next attempt.
    first_id = send(api)
    first = wait_for(
        lambda: (body := message(api, first_id))["state"] in ("sent", "delivered", "read") and body
    )
    assert (first["sent_as"], first["attempts"], first["reason"]) == ("template", 2, None), first
    details = [transition["detail"] or {} for transition in first["transitions"]]
    assert any(detail.get("next") == "the fallback template goes instead" for detail in details)
    assert api.windows.state(("meta", SENDERS["meta"], CLOSED)) == "closed"

    # Now known closed: the template goes at once, no interactive request; the person taps a button.
    sim.put("/_sim/config", json={"reply_share": 1.0}).raise_for_status()
    second_id = send(api)
    second = wait_for(lambda: replied(api, second_id), timeout=30)
    assert (second["sent_as"], second["attempts"]) == ("template", 1), second
    assert second["transitions"][1]["detail"] == {"sent_as": "template", "window": "known closed"}
    assert second["reply"]["id"] in ("yes", "no") and second["reply"]["title"] == second["reply"]["id"]
    assert sent_types(sim) == ["template", "template"]  # the log keeps accepted sends only
    assert sim.get("/_sim/stats", params={"log": 0}).json()["requests_total"] == 3
    # The tap is the person writing: their window is open again.
    assert api.windows.state(("meta", SENDERS["meta"], CLOSED)) == "open"


def test_a_template_refused_too_ends_failed_after_one_request(
    api: Api, closed_window: str, sim: httpx.Client, start_worker, database_url: str
) -> None:
    answers = {"provider": "meta", "answers": [{"kind": "window_closed"}, {"kind": "invalid"}]}
    sim.post("/_sim/script", json=answers).raise_for_status()
    start_worker(database_url, **api.worker_env)

    message_id = send(api)
    settled = wait_for(lambda: (body := message(api, message_id))["state"] == "failed" and body, timeout=30)

    assert (settled["reason"], settled["sent_as"], settled["attempts"]) == ("invalid", "template", 2)
    assert settled["transitions"][-1]["detail"]["sent_as"] == "template"
    assert sim.get("/_sim/stats", params={"log": 0}).json()["requests_total"] == 2


def test_a_closed_window_reported_after_the_send_is_answered_with_the_template(
    api: Api, closed_window: str, sim: httpx.Client, start_worker, database_url: str
) -> None:
    # As Meta's Cloud API does: the interactive message is accepted, then reported failed (131047).
    sim.put("/_sim/config", json={"window_closed_by_webhook": True, "reply_share": 1.0}).raise_for_status()
    start_worker(database_url, **api.worker_env)

    message_id = send(api)
    settled = wait_for(lambda: replied(api, message_id), timeout=30)

    assert (settled["state"], settled["sent_as"], settled["attempts"], settled["reason"]) == (
        "read",
        "template",
        2,
        None,
    )
    moves = [(t["from_state"], t["to_state"]) for t in settled["transitions"]]
    assert moves[:4] == [(None, "pending"), ("pending", "sending"), ("sending", "sent"), ("sent", "pending")]
    back = settled["transitions"][3]["detail"]
    assert back["provider_code"] == "131047" and back["next"] == "the fallback template goes instead"
    assert sent_types(sim) == ["interactive", "template"]
    assert settled["reply"]["id"] in ("yes", "no")
    # The tap is the person writing: their window is open again.
    assert api.windows.state(("meta", SENDERS["meta"], CLOSED)) == "open"
