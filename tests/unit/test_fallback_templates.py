"""The fallback template's rules, each with its field-named error, Meta's template send, the
providers that document none refused, and the engine's decisions around a template attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from wadispatch import fallback
from wadispatch.errors import ConfigurationError, MessageValidationError
from wadispatch.ledger import Change, MessageRecord
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome
from wadispatch.providers.briq import BriqAdapter
from wadispatch.providers.meta import MetaAdapter, template_json
from wadispatch.providers.templates import build_template_request
from wadispatch.states import State
from wadispatch.templates import FallbackTemplate

from tests.support import button_request, list_request, make_settings

TEMPLATE = {
    "name": "order_ready",
    "language": "en_US",
    "body_parameters": ["Asha", "#12"],
    "quick_replies": ["yes", "no"],
}


def errors_of(**fallback_overrides: object) -> dict[str, str]:
    template = {**TEMPLATE, **fallback_overrides}
    with pytest.raises(MessageValidationError) as caught:
        validate_send_request(button_request(fallback=template))
    return {error.path: error.rule for error in caught.value.errors}


def test_a_valid_fallback_is_kept_with_the_request() -> None:
    request = validate_send_request(button_request(fallback=TEMPLATE))
    assert request.fallback == FallbackTemplate.model_validate(TEMPLATE)


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        ({"name": "Order Ready"}, "fallback.name", "lowercase letters"),
        ({"name": "x" * 513}, "fallback.name", "at most 512"),
        ({"language": "english"}, "fallback.language", "language code"),
        ({"language": "en-us"}, "fallback.language", "language code"),
        ({"body_parameters": ["two\nlines"]}, "fallback.body_parameters[0]", "newline"),
        ({"body_parameters": ["ok", "a     b"]}, "fallback.body_parameters[1]", "4 spaces"),
        ({"body_parameters": [" "]}, "fallback.body_parameters[0]", "empty"),
        ({"body_parameters": ["x" * 1025]}, "fallback.body_parameters[0]", "at most 1024"),
        ({"body_parameters": ["x"] * 101}, "fallback.body_parameters", "at most 100"),
        ({"quick_replies": ["maybe"]}, "fallback.quick_replies[0]", "reply ids"),
        ({"quick_replies": ["yes", "yes"]}, "fallback.quick_replies[1]", "unique"),
        ({"quick_replies": ["yes"] * 11}, "fallback.quick_replies", "at most 10"),
        ({"header": "x"}, "fallback.header", "unknown field"),
    ],
)
def test_each_rule_names_its_field(overrides: dict[str, object], path: str, words: str) -> None:
    errors = errors_of(**overrides)
    assert path in errors, errors
    assert words in errors[path]


def test_a_long_parameter_is_allowed_when_the_template_has_no_buttons() -> None:
    request = validate_send_request(
        button_request(fallback={**TEMPLATE, "quick_replies": [], "body_parameters": ["x" * 5000]})
    )
    assert request.fallback is not None


def test_a_payload_longer_than_an_id_can_be_is_refused() -> None:
    long_id = "i" * 257
    errors = errors_of(quick_replies=[long_id])
    assert "at most 256" in errors["fallback.quick_replies[0]"]


def test_quick_replies_may_be_a_lists_row_ids() -> None:
    request = validate_send_request(list_request(fallback={**TEMPLATE, "quick_replies": []}))
    rows = request.reply_ids
    assert rows
    assert validate_send_request(list_request(fallback={**TEMPLATE, "quick_replies": rows[:1]})).fallback


@pytest.mark.parametrize("provider", ["briq", "bird", "zixflow", "wacr"])
def test_providers_without_a_documented_template_send_refuse_a_fallback(provider: str) -> None:
    request = button_request(provider, fallback=TEMPLATE)
    if provider == "briq":
        request.pop("sender")
    with pytest.raises(MessageValidationError) as caught:
        validate_send_request(request)
    rules = {error.path: error.rule for error in caught.value.errors}
    assert "documents no template send" in rules["fallback"]


def test_meta_sends_the_template_as_its_cloud_api_documents() -> None:
    request = validate_send_request(button_request(fallback=TEMPLATE))
    assert request.fallback is not None
    built = MetaAdapter().build_template_request(request, request.fallback, make_settings(), "m-1")
    assert built.url.endswith("/1107264639145282/messages")
    assert built.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "255712345678",
        "type": "template",
        "template": {
            "name": "order_ready",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "#12"}],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": "yes"}],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "1",
                    "parameters": [{"type": "payload", "payload": "no"}],
                },
            ],
        },
    }


def test_a_template_without_parameters_or_buttons_has_no_components() -> None:
    assert template_json(FallbackTemplate(name="hello_world", language="en")) == {
        "name": "hello_world",
        "language": {"code": "en"},
    }


def test_an_adapter_without_a_template_send_is_a_configuration_error() -> None:
    request = validate_send_request(button_request(fallback=TEMPLATE))
    assert request.fallback is not None
    with pytest.raises(ConfigurationError, match="briq documents no template send"):
        build_template_request(BriqAdapter(), request, request.fallback, make_settings(), "m-1")


# --- the engine's decisions (wadispatch.fallback) -------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RECORD = MessageRecord(
    id="m-1",
    provider="meta",
    sender="1107264639145282",
    recipient="+255712345678",
    conversation_id=None,
    request=button_request(),
    idempotency_key=None,
    state=State.SENDING,
    reason=None,
    attempts=1,
    next_attempt_at=None,
    provider_message_id=None,
    provider_error_code=None,
    provider_error_message=None,
    created_at=NOW,
    updated_at=NOW,
    fallback=TEMPLATE,
)
WINDOW_CLOSED = Outcome.permanent("window_closed", status_code=400, code="131047")


def failed(reason: str) -> Change:
    return Change("m-1", State.SENDING, State.FAILED, 1, reason=reason, detail={"outcome": "permanent"})


def test_a_refusal_for_a_closed_window_makes_the_template_due_now() -> None:
    change, retry_in = fallback.after_attempt(RECORD, WINDOW_CLOSED, failed("window_closed"), None, NOW)
    assert (change.to_state, change.sent_as, change.next_attempt_at, retry_in) == (
        State.PENDING,
        "template",
        NOW,
        0.0,
    )
    assert change.reason == "window_closed" and change.request_made


def test_other_refusals_and_messages_without_a_fallback_are_left_alone() -> None:
    opted_out = failed("opted_out")
    assert fallback.after_attempt(RECORD, Outcome.permanent("opted_out"), opted_out, None, NOW) == (
        opted_out,
        None,
    )
    plain = replace(RECORD, fallback=None)
    closed = failed("window_closed")
    assert fallback.after_attempt(plain, WINDOW_CLOSED, closed, None, NOW) == (closed, None)


def test_a_template_attempt_is_never_retried_once_its_request_left() -> None:
    template = replace(RECORD, sent_as="template", attempts=2)
    retry = Change("m-1", State.SENDING, State.PENDING, 2, reason="server_error", next_attempt_at=NOW)
    change, retry_in = fallback.after_attempt(template, Outcome.transient("server_error"), retry, 1.5, NOW)
    assert (change.to_state, change.reason, retry_in) == (State.FAILED, "provider_unavailable", None)
    closed, _ = fallback.after_attempt(template, WINDOW_CLOSED, failed("window_closed"), None, NOW)
    assert (closed.to_state, closed.sent_as) == (State.FAILED, None)  # no second fallback


def test_a_template_held_back_before_its_request_waits_for_its_slot() -> None:
    template = replace(RECORD, sent_as="template")
    held = Change("m-1", State.SENDING, State.PENDING, 1, reason="rate_limited", request_made=False)
    change, retry_in = fallback.after_attempt(template, Outcome.rate_limited(1.0), held, 1.2, NOW)
    assert (change.to_state, retry_in) == (State.PENDING, 1.2)


def test_a_template_the_provider_answers_429_waits_and_goes_again() -> None:
    template = replace(RECORD, sent_as="template", attempts=1)
    refused = Change("m-1", State.SENDING, State.PENDING, 1, reason="rate_limited", next_attempt_at=NOW)
    change, retry_in = fallback.after_attempt(template, Outcome.rate_limited(2.0), refused, 2.0, NOW)
    assert (change.to_state, change.reason, retry_in) == (State.PENDING, "rate_limited", 2.0)
    assert change.detail == {"sent_as": "template"}


def test_a_closed_window_reported_after_the_send_reopens_a_message_with_an_unsent_template() -> None:
    sent = replace(RECORD, state=State.SENT)
    assert fallback.reopens_for_template(sent, State.FAILED, "window_closed")
    assert not fallback.reopens_for_template(sent, State.FAILED, "undeliverable")
    assert not fallback.reopens_for_template(sent, State.DELIVERED, None)
    assert not fallback.reopens_for_template(replace(sent, fallback=None), State.FAILED, "window_closed")
    assert not fallback.reopens_for_template(replace(sent, sent_as="template"), State.FAILED, "window_closed")
    assert not fallback.reopens_for_template(
        replace(sent, state=State.DELIVERED), State.FAILED, "window_closed"
    )


def test_only_a_pending_message_going_as_its_template_was_reopened() -> None:
    assert fallback.reopened_for_template(replace(RECORD, state=State.PENDING, sent_as="template"))
    assert not fallback.reopened_for_template(replace(RECORD, state=State.PENDING))
    assert not fallback.reopened_for_template(replace(RECORD, state=State.SENT, sent_as="template"))
