"""Webhook parsers and signature checks: every sample the simulator posts and Bird's documented
replies, unknown and malformed bodies, each provider's signature. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from wadispatch.api.logs import RedactAccessLog
from wadispatch.inbox import failure_reason
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.providers import make_dialects
from wadispatch.simulator.signing import bird_signature_jwt, hs256_jwt
from wadispatch.webhooks import (
    Inbound,
    MalformedWebhook,
    MessageRef,
    Reply,
    SignatureError,
    Status,
    Unknown,
    parse,
    verify,
)

from tests.support import make_settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SIM = SimulatorConfig()
URL = "https://wadispatch.example.com/webhooks/bird"

#: What each provider's samples name as the message they are about.
ANSWERED = {
    "bird": MessageRef(provider_message_ids=("4a968dd619f54d9582440d15aaa791ec",)),
    "briq": MessageRef(
        provider_message_ids=(
            "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "wamid.HBgMMjU1NzEyMzQ1Njc4FQIAERgSQzQ1RjE2QjE3NUQ4MDk1Q0I0AA==",
        )
    ),
    "meta": MessageRef(
        provider_message_ids=("wamid.HBgMMjU1NzEyMzQ1Njc4FQIAERgSNjE0QkY1OUE2RjM1QkIyMjlEAA==",)
    ),
    "wacr": MessageRef(
        provider_message_ids=("wamid.HBgMOTE5OTk5OTk5OTk5FQIAERgSMEE5QjlCNEM3RTI2RjE4RDk5AA==",)
    ),
    "zixflow": MessageRef("wadispatch-msg-0001", ("f8df74d1-11fa-4485-b164-b9a65358f4fc",)),
}
SENDER = {
    "bird": "0181d0bb76c54g9aae4309s822d35ba5",
    "briq": "1107264639145282",
    "meta": "1107264639145282",
    "wacr": None,
    "zixflow": "phone-1",
}
#: What each provider's failed sample says went wrong (Meta: ``error_data.details``, not the title).
FAILURE_MESSAGE = dict.fromkeys(SENDER, "Message undeliverable") | {
    "meta": "Message could not be delivered to the recipient."
}
FAILURE_CODE = {
    "bird": "131026",
    "briq": "UNDELIVERABLE",
    "meta": "131026",
    "wacr": "MESSAGE_SEND_FAILED",
    "zixflow": "131026",
}


def sample(provider: str, name: str) -> bytes:
    return (SAMPLES / "webhooks" / provider / f"{name}.json").read_bytes()


def sample_names(provider: str) -> list[str]:
    return sorted(path.stem for path in (SAMPLES / "webhooks" / provider).glob("*.json"))


CASES = [(provider, name) for provider in ANSWERED for name in sample_names(provider)]


@pytest.mark.parametrize(("provider", "name"), CASES)
def test_each_sample_parses_to_one_event_about_the_right_message(provider: str, name: str) -> None:
    [event] = parse(provider, sample(provider, name))
    assert event.provider == provider and event.event_key
    if name.startswith("reply_"):
        assert isinstance(event, Reply)
        assert event.answers == ANSWERED[provider]
        assert event.phone == "+255712345678"
        assert event.sender == SENDER[provider]
        expected = ("no", "No") if name == "reply_button" else ("airtime", "Buy airtime")
        assert (event.reply_id, event.reply_title) == expected
        assert event.kind == ("button_reply" if name == "reply_button" else "list_reply")
    else:
        assert isinstance(event, Status)
        assert event.message == ANSWERED[provider]
        assert event.status == name.removeprefix("status_")
        if event.status == "failed":
            assert (event.error_code, event.error_message) == (
                FAILURE_CODE[provider],
                FAILURE_MESSAGE[provider],
            )
        else:
            assert event.error_code is None


@pytest.mark.parametrize("provider", list(ANSWERED))
def test_event_keys_are_stable_and_distinct(provider: str) -> None:
    keys = [parse(provider, sample(provider, name))[0].event_key for name in sample_names(provider)]
    again = [parse(provider, sample(provider, name))[0].event_key for name in sample_names(provider)]
    assert keys == again
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("name", "reply_id", "title", "kind"),
    [
        ("bird_reply_button", "yes-unique-id", "Yes", "button_reply"),
        ("bird_reply_list", "id2", "Buy airtime", "list_reply"),
    ],
)
def test_birds_documented_replies(name: str, reply_id: str, title: str, kind: str) -> None:
    raw = (SAMPLES / "provider-docs-webhooks" / f"{name}.json").read_bytes()
    [event] = parse("bird", raw)
    assert isinstance(event, Reply)
    assert event.answers == MessageRef(provider_message_ids=("4a968dd619f54d9582440d15aaa791ec",))
    assert (event.reply_id, event.reply_title, event.kind) == (reply_id, title, kind)
    assert (event.sender, event.phone) == ("0181d0bb76c54g9aae4309s822d35ba5", "+9999999999")


def test_bird_webhook_subscriptions_wrap_the_message() -> None:
    message = json.loads(sample("bird", "status_read"))
    [event] = parse("bird", json.dumps({"type": "message.updated", "message": message}).encode())
    assert isinstance(event, Status) and event.status == "read"


def test_inbound_messages_that_answer_nothing_open_the_window_only() -> None:
    meta = json.loads(sample("meta", "reply_button"))
    message = meta["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("context")
    message.pop("interactive")
    message.update(type="text", text={"body": "hello"})
    [event] = parse("meta", json.dumps(meta).encode())
    assert type(event) is Inbound
    assert (event.sender, event.phone) == ("1107264639145282", "+255712345678")

    wacr = {"event": "message.received", "message_id": "m1", "phone": "+255712345678", "type": "text"}
    assert parse("wacr", json.dumps(wacr).encode()) == [Inbound("wacr", "m1", None, "+255712345678")]
    briq = json.loads(sample("briq", "reply_button"))
    briq["data"].pop("interactive")
    briq["data"]["type"] = "text"
    [event] = parse("briq", json.dumps(briq).encode())
    assert type(event) is Inbound and event.phone == "+255712345678"


def test_a_meta_notification_with_several_changes_gives_every_event() -> None:
    status = json.loads(sample("meta", "status_read"))
    reply = json.loads(sample("meta", "reply_list"))
    status["entry"][0]["changes"].append(reply["entry"][0]["changes"][0])
    events = parse("meta", json.dumps(status).encode())
    assert [type(event) for event in events] == [Status, Reply]


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("meta", {"object": "page", "entry": []}),
        (
            "meta",
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "account_update"}]}]},
        ),
        (
            "meta",
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "changes": [
                            {
                                "field": "messages",
                                "value": {"statuses": [{"id": "wamid.1", "status": "deleted"}]},
                            }
                        ]
                    }
                ],
            },
        ),
        ("bird", {"type": "conversation.created", "conversation": {"id": "c1"}}),
        ("bird", {"id": "m1", "direction": "sent", "status": "pending"}),
        ("briq", {"event_id": "e1", "event": "whatsapp.typing", "data": {}}),
        ("zixflow", {"request_id": "r1", "post_back_data": "m1", "status": "queued"}),
        ("wacr", {"event": "contact.created", "contact_id": 7}),
    ],
)
def test_unknown_events_are_reported_as_unknown(provider: str, body: dict[str, Any]) -> None:
    events = parse(provider, json.dumps(body).encode())
    assert events and all(isinstance(event, Unknown) for event in events)
    assert all(event.event_key for event in events)


@pytest.mark.parametrize("provider", list(ANSWERED))
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_bodies_are_refused_with_a_reason(provider: str, raw: bytes) -> None:
    with pytest.raises(MalformedWebhook) as raised:
        parse(provider, raw)
    assert "JSON" in str(raised.value) or "UTF-8" in str(raised.value)


# --- signatures -------------------------------------------------------------------------------------

SETTINGS = make_settings(
    meta_app_secret=SIM.meta_app_secret,
    briq_webhook_secret=SIM.briq_webhook_secret,
    bird_signing_key=SIM.bird_signing_key,
    zixflow_webhook_secret="zixflow-url-secret",
    wacr_webhook_secret="wacr-url-secret",
)


def signed_headers(provider: str, raw: bytes, url: str = URL) -> dict[str, str]:
    """The headers the simulator signs a webhook with (the providers' documented schemes)."""
    return make_dialects()[provider].signature_headers(raw, url, SIM)  # type: ignore[index]


@pytest.mark.parametrize("provider", ["meta", "briq", "bird"])
def test_signed_webhooks_pass_and_any_change_fails(provider: str) -> None:
    raw = sample(provider, "status_read")
    headers = signed_headers(provider, raw)
    verify(provider, headers, raw, url=URL, url_secret=None, settings=SETTINGS)
    with pytest.raises(SignatureError, match="body"):
        verify(provider, headers, raw.replace(b"read", b"sent"), url=URL, url_secret=None, settings=SETTINGS)
    with pytest.raises(SignatureError, match="missing"):
        verify(provider, {}, raw, url=URL, url_secret=None, settings=SETTINGS)
    other = make_settings(meta_app_secret="x", briq_webhook_secret="x", bird_signing_key="x")
    with pytest.raises(SignatureError):
        verify(provider, headers, raw, url=URL, url_secret=None, settings=other)


def test_header_names_are_case_insensitive() -> None:
    raw = sample("meta", "status_read")
    headers = {name.upper(): value for name, value in signed_headers("meta", raw).items()}
    verify("meta", headers, raw, url=URL, url_secret=None, settings=SETTINGS)


def test_bird_signature_is_bound_to_the_url_and_expires() -> None:
    raw = sample("bird", "reply_button")
    headers = signed_headers("bird", raw, url=URL)
    with pytest.raises(SignatureError, match="another URL"):
        verify("bird", headers, raw, url=URL + "?x=1", url_secret=None, settings=SETTINGS)
    old = {
        "MessageBird-Signature-JWT": bird_signature_jwt(SIM.bird_signing_key, URL, raw, time.time() - 3600)
    }
    with pytest.raises(SignatureError, match="expired"):
        verify("bird", old, raw, url=URL, url_secret=None, settings=SETTINGS)
    claims = {"iss": "Someone", "nbf": int(time.time()), "exp": int(time.time()) + 60}
    claims |= {
        "url_hash": hashlib.sha256(URL.encode()).hexdigest(),
        "payload_hash": hashlib.sha256(raw).hexdigest(),
    }
    forged = {"MessageBird-Signature-JWT": hs256_jwt(claims, SIM.bird_signing_key)}
    with pytest.raises(SignatureError, match="not valid"):
        verify("bird", forged, raw, url=URL, url_secret=None, settings=SETTINGS)


def bird_token(raw: bytes, **times: Any) -> dict[str, str]:
    """Bird's header for ``raw`` posted to ``URL`` with these time claims (None: left out)."""
    claims: dict[str, Any] = {
        "iss": "MessageBird",
        "url_hash": hashlib.sha256(URL.encode()).hexdigest(),
        "payload_hash": hashlib.sha256(raw).hexdigest(),
    }
    claims |= {name: value for name, value in times.items() if value is not None}
    return {"MessageBird-Signature-JWT": hs256_jwt(claims, SIM.bird_signing_key)}


def test_a_long_lived_or_unbounded_bird_token_is_refused() -> None:
    """Bird signs each webhook with a token of a few minutes: one valid until 2100, one without
    ``exp``, or one with no start to measure from is refused; the cap is a setting."""
    raw = sample("bird", "reply_button")
    now = int(time.time())
    year_2100 = 4_102_444_800

    def check(headers: dict[str, str], settings: Any = SETTINGS) -> None:
        verify("bird", headers, raw, url=URL, url_secret=None, settings=settings)

    check(bird_token(raw, nbf=now, exp=now + 300))
    check(bird_token(raw, iat=now, exp=now + 120))  # exp - iat when there is no nbf
    for refused, match in [
        (bird_token(raw, nbf=now, exp=year_2100), "longer than the 300 s"),
        (bird_token(raw, iat=now, exp=now + 301), "longer than the 300 s"),
        (bird_token(raw, nbf=now - 30, exp=None), "not valid"),
        (bird_token(raw, exp=now + 60), "no nbf"),
        (bird_token(raw, nbf=now, exp=float("inf")), "not valid"),
    ]:
        with pytest.raises(SignatureError, match=match):
            check(refused)
    longer = SETTINGS.model_copy(update={"bird_jwt_max_lifetime_seconds": 3600})
    check(bird_token(raw, nbf=now, exp=now + 3600), longer)
    with pytest.raises(SignatureError, match="longer than the 3600 s"):
        check(bird_token(raw, nbf=now, exp=year_2100), longer)


@pytest.mark.parametrize("provider", ["zixflow", "wacr"])
def test_unsigned_providers_need_the_secret_in_the_url(provider: str) -> None:
    raw = sample(provider, "status_read")
    verify(provider, {}, raw, url=URL, url_secret=f"{provider}-url-secret", settings=SETTINGS)
    for wrong in (None, "", "guess", f"{provider}-url-secret-"):
        with pytest.raises(SignatureError):
            verify(provider, {}, raw, url=URL, url_secret=wrong, settings=SETTINGS)


@pytest.mark.parametrize("provider", list(ANSWERED))
def test_a_provider_without_a_configured_secret_is_refused_naming_the_setting(provider: str) -> None:
    raw = sample(provider, "status_read")
    with pytest.raises(SignatureError, match="WADISPATCH_") as raised:
        verify(
            provider, signed_headers(provider, raw), raw, url=URL, url_secret="x", settings=make_settings()
        )
    assert SIM.meta_app_secret not in str(raised.value)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("131047", "window_closed"),
        ("WINDOW_CLOSED", "window_closed"),
        ("470", "window_closed"),
        ("131050", "opted_out"),
        ("131026", "undeliverable"),
        (None, "undeliverable"),
    ],
)
def test_failed_statuses_get_a_reason(code: str | None, reason: str) -> None:
    status = Status("meta", "k", MessageRef(provider_message_ids=("w",)), "failed", error_code=code)
    assert failure_reason(status) == reason


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/webhooks/zixflow/s3cret-value", "/webhooks/zixflow/***"),
        ("/webhooks/wacr/s3cret-value?x=1", "/webhooks/wacr/***?x=1"),
        (
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token=t0ken&hub.challenge=1",
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token=***&hub.challenge=1",
        ),
        ("/v1/messages/3f0c", "/v1/messages/3f0c"),
    ],
)
def test_access_log_lines_hide_webhook_secrets(path: str, logged: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", path, "1.1", 200),
        None,
    )
    assert RedactAccessLog().filter(record)
    assert record.getMessage() == f'127.0.0.1:1 - "POST {logged} HTTP/1.1" 200'
