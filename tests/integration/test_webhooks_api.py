"""Provider webhooks against the running API: each provider's samples move the ledger, signatures
guard it, a webhook delivered twice changes it once, replies from the simulator land on the right
message, and the user's event tasks are published. SQLite always, PostgreSQL when set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from wadispatch.campaigns.store import list_suppressions
from wadispatch.ledger import Change, Ledger, webhook_events
from wadispatch.messages import validate_send_request
from wadispatch.states import State

from tests.api_support import URL_SECRETS, Api, published, signature_headers, webhook_url
from tests.integration.test_pipeline import SENDERS, wait_for
from tests.support import button_request, list_request

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "webhooks"
PROVIDERS = ["briq", "bird", "zixflow", "wacr", "meta"]
#: The provider message id each provider's samples are about.
SAMPLE_MESSAGE_ID = {
    "bird": "4a968dd619f54d9582440d15aaa791ec",
    "briq": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    "meta": "wamid.HBgMMjU1NzEyMzQ1Njc4FQIAERgSNjE0QkY1OUE2RjM1QkIyMjlEAA==",
    "wacr": "wamid.HBgMOTE5OTk5OTk5OTk5FQIAERgSMEE5QjlCNEM3RTI2RjE4RDk5AA==",
    "zixflow": "f8df74d1-11fa-4485-b164-b9a65358f4fc",
}
#: The sender handle the samples' inbound messages name (the window's key).
SAMPLE_SENDER = {
    "bird": "0181d0bb76c54g9aae4309s822d35ba5",
    "briq": "1107264639145282",
    "meta": "1107264639145282",
    "wacr": None,
    "zixflow": "phone-1",
}


#: The samples' replies were written at 2026-01-01T00:00:30Z; the window counts 24 hours from
#: when the person wrote, so the tests post them as written at this run's start.
STARTED = datetime.now(UTC).replace(microsecond=0)


def sample(provider: str, name: str) -> bytes:
    raw = (SAMPLES / provider / f"{name}.json").read_bytes()
    iso = STARTED.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raw = raw.replace(b"2026-01-01T00:00:30.000Z", iso.encode())
    return raw.replace(b'"1767225630"', f'"{int(STARTED.timestamp())}"'.encode())


def post(api: Api, provider: str, raw: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    url = webhook_url(api.url, provider)
    signed = signature_headers(provider, raw, url) if headers is None else headers
    return httpx.post(url, content=raw, headers=signed, timeout=15)


def sent_message(ledger: Ledger, provider: str, provider_message_id: str) -> str:
    """A message the provider accepted as ``provider_message_id`` (state ``sent``)."""
    request = validate_send_request(button_request(provider, sender=SENDERS[provider]))
    message_id, _ = ledger.record_pending(request)
    ledger.transition(message_id, State.PENDING, State.SENDING)
    ledger.transition(message_id, State.SENDING, State.SENT, provider_message_id=provider_message_id)
    return message_id


def stored_events(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(webhook_events)).scalar_one()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_providers_samples_move_the_ledger_once(provider: str, api: Api) -> None:
    message_id = sent_message(api.ledger, provider, SAMPLE_MESSAGE_ID[provider])

    def outcome(name: str) -> dict[str, int]:
        answer = post(api, provider, sample(provider, name))
        assert answer.status_code == 200, answer.text
        return answer.json()["outcomes"]

    # read may come without delivered; a late delivered or sent never moves it back.
    assert outcome("status_read") == {"statuses": 1}
    assert outcome("status_delivered") == {"unchanged": 1}
    if (SAMPLES / provider / "status_sent.json").exists():
        assert outcome("status_sent") == {"unchanged": 1}
    record = api.ledger.get(message_id)
    assert record.state is State.READ
    assert [t.to_state for t in api.ledger.transitions(message_id)][-1] is State.READ

    assert outcome("reply_button") == {"replies": 1}
    record = api.ledger.get(message_id)
    assert (record.reply_id, record.reply_title) == ("no", "No") and record.replied_at is not None
    # The reply opened the 24-hour window of that (sender, recipient).
    assert api.windows.state((provider, SAMPLE_SENDER[provider], "+255712345678")) == "open"

    # The same webhooks again, one after the other and at once: nothing changes.
    transitions = len(api.ledger.transitions(message_id))
    events = stored_events(api.ledger)
    assert outcome("reply_button") == {"duplicates": 1}
    assert outcome("status_read") == {"duplicates": 1}
    raw = sample(provider, "reply_list")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(api, provider, raw), range(4)))
    outcomes = sorted(json.dumps(answer.json()["outcomes"]) for answer in answers)
    assert outcomes == sorted([json.dumps({"replies": 1})] + [json.dumps({"duplicates": 1})] * 3)
    assert len(api.ledger.transitions(message_id)) == transitions
    assert stored_events(api.ledger) == events + 1
    assert api.ledger.get(message_id).reply_id == "airtime"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_status_keeps_the_providers_reason(provider: str, api: Api) -> None:
    message_id = sent_message(api.ledger, provider, SAMPLE_MESSAGE_ID[provider])
    answer = post(api, provider, sample(provider, "status_failed"))
    assert answer.json()["outcomes"] == {"statuses": 1}
    record = api.ledger.get(message_id)
    assert (record.state, record.reason) == (State.FAILED, "undeliverable")
    # Meta's error_data.details, which Meta asks to rely on (titles are being deprecated)
    said = (
        "Message could not be delivered to the recipient." if provider == "meta" else "Message undeliverable"
    )
    assert record.provider_error_message == said and record.provider_error_code
    last = api.ledger.transitions(message_id)[-1]
    assert (last.from_state, last.to_state, last.reason) == (State.SENT, State.FAILED, "undeliverable")
    # The user's status task got the message id, the new state and the metadata; no phone number.
    events = [args for task, args in published(api.settings.redis_url, api.settings.event_queue)]
    assert [(args[0], args[1]["type"], args[1]["state"]) for args in events] == [
        (message_id, "status", "failed")
    ]
    assert "255712345678" not in json.dumps(events)


def test_an_opt_out_in_a_status_puts_the_recipient_on_the_suppression_list(api: Api) -> None:
    raw = sample("meta", "failures/opted_out")
    wamid = json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    message_id = sent_message(api.ledger, "meta", wamid)
    assert post(api, "meta", raw).json()["outcomes"] == {"statuses": 1}
    record = api.ledger.get(message_id)
    assert (record.state, record.reason, record.provider_error_code) == (State.FAILED, "opted_out", "131050")
    [entry] = list_suppressions(api.ledger)
    assert (entry.sender, entry.recipient, entry.source) == (SENDERS["meta"], record.recipient, "provider")


def test_meta_131049_is_a_recipient_limit_not_an_opt_out(api: Api) -> None:
    raw = sample("meta", "failures/recipient_limited")
    wamid = json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    message_id = sent_message(api.ledger, "meta", wamid)
    assert post(api, "meta", raw).json()["outcomes"] == {"statuses": 1}
    record = api.ledger.get(message_id)
    assert (record.state, record.reason, record.provider_error_code) == (
        State.FAILED,
        "recipient_limited",
        "131049",
    )
    assert list_suppressions(api.ledger) == []


def test_a_user_named_by_user_id_alone_gets_the_window_of_the_phone_the_ledger_learned(api: Api) -> None:
    """A webhook naming both the phone and the business-scoped user id teaches the ledger the
    pair; a later message naming only the user id (a username user) opens both windows."""
    path = Path(__file__).parents[1] / "samples" / "provider-webhooks" / "meta_docs_username_only.json"
    username_only = json.loads(path.read_text())
    value = username_only["entry"][0]["changes"][0]["value"]
    user_id, sender, now = value["contacts"][0]["user_id"], value["metadata"]["phone_number_id"], STARTED
    for message in value["messages"]:
        message["timestamp"] = str(int(now.timestamp()))
    both = json.loads(json.dumps(username_only))
    named = both["entry"][0]["changes"][0]["value"]
    named["contacts"][0]["wa_id"] = "15551234567"
    for message in named["messages"]:
        message["from"] = "15551234567"
        message["id"] += "-both"
    assert post(api, "meta", json.dumps(both).encode()).status_code == 200
    phone_pair, user_pair = ("meta", sender, "+15551234567"), ("meta", sender, user_id)
    assert api.windows.state(phone_pair) == api.windows.state(user_pair) == "open"
    assert api.ledger.contact_names("meta", [user_id]) == {user_id: "+15551234567"}

    api.windows.close([phone_pair, user_pair])
    assert post(api, "meta", json.dumps(username_only).encode()).status_code == 200
    assert api.windows.state(user_pair) == "open"
    assert api.windows.state(phone_pair) == "open"  # through the pair the ledger learned


def inbound_text(provider: str) -> tuple[bytes, tuple[str, str, str]]:
    """A plain inbound text message (not a reply) written now, and the window pair it opens."""
    if provider == "meta":
        path = Path(__file__).parents[1] / "samples" / "provider-webhooks" / "meta_pywa_message.json"
        body = json.loads(path.read_text())["text"]
        value = body["entry"][0]["changes"][0]["value"]
        value["messages"][0]["timestamp"] = str(int(STARTED.timestamp()))
        value["messages"][0]["id"] = f"wamid.inbound-{STARTED.timestamp()}"
        return json.dumps(body).encode(), ("meta", value["metadata"]["phone_number_id"], "+972987654321")
    body = json.loads(sample("bird", "reply_button"))
    body.pop("replyTo")
    body |= {"id": f"inbound-{STARTED.timestamp()}", "type": "text", "content": {"text": {"text": "hi"}}}
    return json.dumps(body).encode(), ("bird", SAMPLE_SENDER["bird"], "+255712345678")


@pytest.mark.parametrize("provider", ["meta", "bird"])
def test_a_replayed_inbound_message_is_a_duplicate_and_does_not_reopen_the_window(
    provider: str, api: Api
) -> None:
    """The same signed inbound body posted again (a replay, or the provider's redelivery) is
    counted a duplicate: the window closed in between stays closed."""
    raw, pair = inbound_text(provider)
    first = post(api, provider, raw)
    assert (first.status_code, first.json()["outcomes"]) == (200, {"inbound": 1})
    assert api.windows.state(pair) == "open"

    api.windows.close([pair])
    again = post(api, provider, raw)
    assert (again.status_code, again.json()["outcomes"]) == (200, {"duplicates": 1})
    assert api.windows.state(pair) == "closed"


def test_a_replayed_reply_does_not_reopen_the_window(api: Api) -> None:
    sent_message(api.ledger, "meta", SAMPLE_MESSAGE_ID["meta"])
    pair = ("meta", SAMPLE_SENDER["meta"], "+255712345678")
    assert post(api, "meta", sample("meta", "reply_button")).json()["outcomes"] == {"replies": 1}
    api.windows.close([pair])
    assert post(api, "meta", sample("meta", "reply_button")).json()["outcomes"] == {"duplicates": 1}
    assert api.windows.state(pair) == "closed"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_or_missing_signatures_get_401_and_change_nothing(provider: str, api: Api) -> None:
    message_id = sent_message(api.ledger, provider, SAMPLE_MESSAGE_ID[provider])
    raw = sample(provider, "status_read")
    if provider in URL_SECRETS:
        attempts = [
            httpx.post(f"{api.url}/webhooks/{provider}", content=raw, timeout=15),
            httpx.post(f"{api.url}/webhooks/{provider}/not-the-secret", content=raw, timeout=15),
        ]
    else:
        other = sample(provider, "status_sent")
        attempts = [
            post(api, provider, raw, headers={}),
            post(
                api, provider, raw, headers=signature_headers(provider, other, webhook_url(api.url, provider))
            ),
            post(
                api,
                provider,
                raw,
                headers={
                    name: value[:-4] + "abcd"
                    for name, value in signature_headers(
                        provider, raw, webhook_url(api.url, provider)
                    ).items()
                },
            ),
        ]
    for answer in attempts:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_signature"
    assert api.ledger.get(message_id).state is State.SENT
    assert len(api.ledger.transitions(message_id)) == 3
    assert stored_events(api.ledger) == 0
    assert post(api, provider, raw).json()["outcomes"] == {"statuses": 1}  # the same body, signed
    assert api.ledger.get(message_id).state is State.READ


def test_a_status_before_the_send_is_recorded_is_kept_and_applied_when_it_is(api: Api) -> None:
    request = validate_send_request(button_request("zixflow", sender=SENDERS["zixflow"]))
    message_id, _ = api.ledger.record_pending(request)
    [claimed] = api.ledger.claim_many(api.ledger.load_pending([message_id]))
    body = json.loads(sample("zixflow", "status_delivered"))
    raw = json.dumps({**body, "post_back_data": message_id}).encode()
    answer = post(api, "zixflow", raw)
    assert (answer.status_code, answer.json()["outcomes"]) == (200, {"kept": 1})
    assert post(api, "zixflow", raw).json()["outcomes"] == {"duplicates": 1}  # a redelivery
    assert api.ledger.get(message_id).state is State.SENDING
    assert api.ledger.count_early_events() == 1
    # The worker records the send's answer: the kept status is applied in the same write.
    sent = Change(
        message_id=message_id,
        from_state=State.SENDING,
        to_state=State.SENT,
        attempt=claimed.attempts,
        provider_message_id=body["request_id"],
    )
    progress = api.ledger.record_progress([], [sent])
    assert [(event.kind, event.message.state, event.changed) for event in progress.early] == [
        ("status", State.DELIVERED, True)
    ]
    assert api.ledger.get(message_id).state is State.DELIVERED
    states = [transition.to_state for transition in api.ledger.transitions(message_id)]
    assert states == [State.PENDING, State.SENDING, State.SENT, State.DELIVERED]
    assert api.ledger.count_early_events() == 0


def test_a_post_back_field_longer_than_any_message_id_is_not_a_500(api: Api) -> None:
    body = json.loads(sample("zixflow", "status_delivered"))
    raw = json.dumps({**body, "post_back_data": "x" * 300}).encode()
    answer = post(api, "zixflow", raw)
    # Kept under the provider's id only: the post-back names none of our messages.
    assert (answer.status_code, answer.json()["outcomes"]) == (200, {"kept": 1})


@pytest.fixture
def early_failures(sim: httpx.Client, api: Api) -> Iterator[dict[str, Any]]:
    """The simulator fails every message in a status callback posted long before it answers the
    send (callbacks 30 ms apart, answers after 700 ms); its config is restored after."""
    saved = sim.get("/_sim/config").json()
    changes = {
        "callbacks": True,
        "webhook_urls": {provider: webhook_url(api.url, provider) for provider in PROVIDERS},
        "failed_share": 1.0,
        "callback_delay_ms": 30,
        "latency": "fixed",
        "latency_ms": 700,
    }
    sim.put("/_sim/config", json=changes).raise_for_status()
    yield changes
    sim.put("/_sim/config", json=saved).raise_for_status()


def test_a_failed_status_posted_while_the_send_is_in_flight_ends_it_failed(
    api: Api, early_failures: dict[str, Any], sim: httpx.Client, start_worker, database_url: str
) -> None:
    start_worker(
        database_url,
        **api.worker_env,
        WADISPATCH_ZIXFLOW_POST_BACK_URL=early_failures["webhook_urls"]["zixflow"],
    )
    ids: dict[str, str] = {}
    for provider in PROVIDERS:
        body = {
            key: value for key, value in button_request(provider, sender=SENDERS[provider]).items() if value
        }
        answer = api.client.post("/v1/messages/interactive", json=body)
        assert answer.status_code == 202, answer.text
        ids[provider] = answer.json()["message_id"]

    def all_failed() -> bool:
        return all(api.ledger.get(message_id).state is State.FAILED for message_id in ids.values())

    wait_for(all_failed, timeout=60, interval=0.2)
    for provider, message_id in ids.items():
        record = api.ledger.get(message_id)
        assert record.provider_error_code, provider
        transitions = api.ledger.transitions(message_id)
        assert [t.to_state for t in transitions][-2:] == [State.SENT, State.FAILED], provider
        # The failure was posted before the worker had the send's answer: kept, then applied in
        # the very write that recorded the send.
        assert transitions[-1].at == transitions[-2].at, provider
    assert api.ledger.count_early_events() == 0
    assert sim.get("/_sim/stats").json()["callbacks"].get("failed", 0) == 0


def test_unknown_events_malformed_bodies_and_unknown_providers(api: Api) -> None:
    unknown = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "account_update", "value": {}}]}],
        }
    ).encode()
    answer = post(api, "meta", unknown)
    assert (answer.status_code, answer.json()["outcomes"]) == (200, {"ignored": 1})
    answer = post(api, "meta", b"{oops")
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_json")
    assert "line 1" in answer.json()["message"]
    answer = httpx.post(f"{api.url}/webhooks/telegram", content=b"{}", timeout=15)
    assert (answer.status_code, answer.json()["error"]) == (404, "unknown_provider")
    big = b'{"object": "' + b"x" * 5000 + b'"}'
    assert post(api, "meta", big).status_code == 413
    a_reply_to_nothing = sample("meta", "reply_button")
    # It may answer a message whose send is not recorded yet: kept (until its send, or expiry).
    assert post(api, "meta", a_reply_to_nothing).json()["outcomes"] == {"kept": 1}


def test_meta_subscription_check(api: Api) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}
    assert httpx.get(f"{api.url}/webhooks/meta", params=params).status_code == 403
    answer = httpx.get(f"{api.url}/webhooks/meta", params={**params, "hub.verify_token": "verify-me"})
    assert (answer.status_code, answer.text) == (200, "1158201444")


# --- replies simulated end to end --------------------------------------------------------------------


@pytest.fixture
def sim_callbacks(sim: httpx.Client, api: Api) -> Iterator[dict[str, Any]]:
    """The simulator posts its status and reply callbacks to the API; its config is restored after."""
    saved = sim.get("/_sim/config").json()
    changes = {
        "callbacks": True,
        "webhook_urls": {provider: webhook_url(api.url, provider) for provider in PROVIDERS},
        "read_share": 1.0,
        "reply_share": 1.0,
        "failed_share": 0.0,
        "callback_delay_ms": 400,
    }
    sim.put("/_sim/config", json=changes).raise_for_status()
    yield changes
    sim.put("/_sim/config", json=saved).raise_for_status()


def test_simulated_replies_are_recorded_on_the_messages_they_answer(
    api: Api, sim_callbacks: dict[str, Any], sim: httpx.Client, start_worker, database_url: str
) -> None:
    start_worker(
        database_url,
        **api.worker_env,
        WADISPATCH_ZIXFLOW_POST_BACK_URL=sim_callbacks["webhook_urls"]["zixflow"],
    )
    choices = {"button": {"yes", "no"}, "list": {"row-1", "row-2"}}
    sent: dict[str, str] = {}
    for provider in PROVIDERS:
        for kind, build in (("button", button_request), ("list", list_request)):
            body = {key: value for key, value in build(provider, sender=SENDERS[provider]).items() if value}
            answer = api.client.post("/v1/messages/interactive", json=body)
            assert answer.status_code == 202, answer.text
            sent[answer.json()["message_id"]] = kind

    def replied() -> bool:
        return all(api.ledger.get(message_id).reply_id for message_id in sent)

    wait_for(replied, timeout=60, interval=0.25)
    for message_id, kind in sent.items():
        record = api.ledger.get(message_id)
        assert record.reply_id in choices[kind], (record.provider, record.reply_id)
        assert record.state is State.READ, (record.provider, record.state)
    stats = sim.get("/_sim/stats").json()
    assert stats["callbacks"].get("failed", 0) == 0, stats["callbacks"]

    replies = [
        args
        for task, args in published(api.settings.redis_url, api.settings.event_queue)
        if task == "helpdesk.on_reply"
    ]
    assert sorted((args[0], args[1]["reply_id"]) for args in replies) == sorted(
        (message_id, api.ledger.get(message_id).reply_id) for message_id in sent
    )
