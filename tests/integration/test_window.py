"""The 24-hour window with real parts: a provider's window error closes the pair, later messages to
it fail fast with no provider request, an inbound message reopens it. SQLite always, PostgreSQL
when set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_support import Api, published, signature_headers, webhook_url
from tests.integration.test_pipeline import SENDERS, wait_for
from tests.support import button_request

pytestmark = pytest.mark.integration

PROVIDERS = ["briq", "bird", "zixflow", "wacr", "meta"]
CLOSED = "+255700000999"
OPEN = "+255712345678"


@pytest.fixture
def closed_window(sim: httpx.Client) -> Iterator[str]:
    """The simulator refuses ``CLOSED`` with each provider's window error; restored after."""
    saved = sim.get("/_sim/config").json()
    sim.put("/_sim/config", json={"window_closed_recipients": [CLOSED]}).raise_for_status()
    yield CLOSED
    sim.put("/_sim/config", json=saved).raise_for_status()


def send(api: Api, provider: str, to: str) -> str:
    body = {
        key: value
        for key, value in button_request(provider, sender=SENDERS[provider], to=to).items()
        if value
    }
    answer = api.client.post("/v1/messages/interactive", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["message_id"]


def settled(api: Api, message_id: str) -> dict[str, Any] | None:
    body = api.client.get(f"/v1/messages/{message_id}").json()
    return body if body["state"] not in ("pending", "sending") else None


def requests_made(sim: httpx.Client) -> int:
    return sim.get("/_sim/stats", params={"log": 0}).json()["requests_total"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_closed_window_fails_fast_with_no_provider_request(
    provider: str, api: Api, closed_window: str, sim: httpx.Client, start_worker, database_url: str
) -> None:
    start_worker(database_url, **api.worker_env)
    first_id = send(api, provider, CLOSED)
    first = wait_for(lambda: settled(api, first_id), timeout=30)
    # The provider's window error: failed at once, never retried, and the pair is known closed.
    assert (first["state"], first["reason"], first["attempts"]) == ("failed", "window_closed", 1), first
    assert requests_made(sim) == 1
    assert api.windows.state((provider, SENDERS[provider], CLOSED)) == "closed"

    later = [send(api, provider, CLOSED) for _ in range(3)]
    other = send(api, provider, OPEN)
    results = {
        message_id: wait_for(lambda m=message_id: settled(api, m), timeout=30)
        for message_id in [*later, other]
    }
    for message_id in later:
        message = results[message_id]
        assert (message["state"], message["reason"], message["attempts"]) == ("failed", "window_closed", 0)
        assert [t["to_state"] for t in message["transitions"]] == ["pending", "failed"]
        assert message["transitions"][-1]["detail"]["provider_request"] is False
    assert results[other]["state"] == "sent"  # only that pair is closed
    assert requests_made(sim) == 2  # the first window error and the other recipient's message

    # Every window failure is reported to the user's code on its own.
    events = [args for task, args in published(api.settings.redis_url, api.settings.event_queue)]
    assert sorted(args[0] for args in events) == sorted([first_id, *later])
    assert {args[1]["type"] for args in events} == {"window_closed"}
    assert CLOSED[1:] not in str(events)


def test_an_inbound_message_reopens_a_closed_window(
    api: Api, closed_window: str, sim: httpx.Client, start_worker, database_url: str
) -> None:
    start_worker(database_url, **api.worker_env)
    first = send(api, "meta", CLOSED)
    assert wait_for(lambda: settled(api, first), timeout=30)["reason"] == "window_closed"
    assert api.windows.state(("meta", SENDERS["meta"], CLOSED)) == "closed"

    # The customer writes: Meta posts the inbound message, the window opens.
    inbound = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": SENDERS["meta"],
                            },
                            "messages": [
                                {
                                    "from": CLOSED[1:],
                                    "id": "wamid.inbound-1",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "hello again"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    raw = httpx.Request("POST", "http://x", json=inbound).content
    url = webhook_url(api.url, "meta")
    answer = httpx.post(url, content=raw, headers=signature_headers("meta", raw, url))
    assert answer.json()["outcomes"] == {"inbound": 1}
    assert api.windows.state(("meta", SENDERS["meta"], CLOSED)) == "open"

    sim.put("/_sim/config", json={"window_closed_recipients": []}).raise_for_status()
    again = send(api, "meta", CLOSED)
    assert wait_for(lambda: settled(api, again), timeout=30)["state"] == "sent"
    assert requests_made(sim) == 2
