"""Recipients by phone number or by business-scoped user id (BSUID), and Meta's per-user limit.

Pure: no I/O. The Meta answers are the documented bodies kept under ``tests/samples/meta/`` (their
sources are in that folder's README); the BSUID request is the golden file
``tests/samples/requests/meta_button_bsuid.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wadispatch.campaigns.phones import PhoneError, PhoneNormaliser
from wadispatch.campaigns.template import RowError, Template
from wadispatch.capabilities import CAPABILITIES
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.messages import validate_send_request
from wadispatch.providers import ProviderAnswer, adapter_for
from wadispatch.recipients import BSUID_MAX_LENGTH, BSUID_RULE, is_bsuid, looks_like_bsuid
from wadispatch.redaction import mask_phone, mask_recipient
from wadispatch.settings import PROVIDER_NAMES, Settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BSUID = "US.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"
BUTTONS = {
    "type": "button",
    "body": {"text": "Ready?"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
}


def request(provider: str = "meta", to: Any = BSUID) -> dict[str, Any]:
    data: dict[str, Any] = {"provider": provider, "to": to, "interactive": BUTTONS}
    if CAPABILITIES[provider].sender_required:
        data["sender"] = "106540352242922"
    return data


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(MessageValidationError) as info:
        validate_send_request(data)
    return info.value.errors


def meta_sample(name: str) -> ProviderAnswer:
    body = (SAMPLES / "meta" / f"{name}.json").read_bytes()
    return ProviderAnswer(status_code=200 if name.startswith("send_") else 400, headers={}, body=body)


def settings() -> Settings:
    return Settings(_env_file=None, meta_access_token="test-meta-access-token")


# --- the BSUID rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        BSUID,
        PARENT_BSUID,
        "IN.1648738043044942",
        "AR.ABC123",  # the docs say alphanumeric: letters are allowed after the period
        "TZ.1",
        "US." + "9" * 128,
        "US.ENT." + "9" * 128,
    ],
)
def test_bsuids_the_docs_show_are_accepted_as_given(value: str) -> None:
    assert is_bsuid(value)
    sent = validate_send_request(request(to=value))
    assert sent.to == value
    assert sent.to_is_bsuid
    assert sent.recipient_digits is None


def test_a_bsuid_written_with_surrounding_spaces_is_kept_without_them() -> None:
    assert validate_send_request(request(to=f"  {BSUID} ")).to == BSUID


@pytest.mark.parametrize(
    "value",
    [
        "us.13491208655302741918",  # the country code is in capitals
        "Us.13491208655302741918",
        "USA.13491208655302741918",  # three letters: never a BSUID, judged as a phone number
        "US.",
        "US.ENT.",
        "US..1349",
        "US.1349-1208",
        "US.1349 1208",
        "US.1349.1208",
        "US.ent.1349",
        "US." + "9" * 129,
        "US.ENT." + "9" * 129,
    ],
)
def test_malformed_bsuids_are_refused(value: str) -> None:
    assert not is_bsuid(value.strip())
    [error] = errors_of(request(to=value))
    assert error.path == "to"
    assert error.rule in (
        BSUID_RULE,
        "must be an E.164 phone number: 7 to 18 digits, optional leading +, no leading 0",
    )
    if looks_like_bsuid(value):
        assert error.rule == BSUID_RULE


def test_phone_numbers_stay_phone_numbers() -> None:
    sent = validate_send_request(request(to="+1 (650) 555-1234"))
    assert sent.to == "+16505551234"
    assert not sent.to_is_bsuid
    assert sent.recipient_digits == "16505551234"


def test_the_longest_bsuid_is_the_documented_maximum() -> None:
    assert BSUID_MAX_LENGTH == len("US.ENT.") + 128 == 135
    assert is_bsuid("US.ENT." + "1" * 128)
    # The examples in Meta's docs fit the ledger's String(32) recipient column; the maximum does not.
    assert len(BSUID) <= 32 and len(PARENT_BSUID) <= 32


# --- providers: only Meta documents BSUIDs --------------------------------------------------------


@pytest.mark.parametrize("provider", [name for name in PROVIDER_NAMES if name != "meta"])
@pytest.mark.parametrize("to", [BSUID, PARENT_BSUID])
def test_providers_without_bsuids_in_their_docs_refuse_one_naming_field_and_provider(
    provider: str, to: str
) -> None:
    assert errors_of(request(provider, to)) == [
        FieldError(
            "to",
            f"{provider} does not document BSUID recipients (business-scoped user ids); use a phone number",
        )
    ]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_provider_still_takes_a_phone_number(provider: str) -> None:
    assert validate_send_request(request(provider, "+255712345678")).to == "+255712345678"


def test_meta_sends_a_bsuid_as_recipient_and_a_phone_number_as_to() -> None:
    adapter = adapter_for("meta")
    by_bsuid = adapter.build_request(validate_send_request(request(to=PARENT_BSUID)), settings(), "m-1")
    assert by_bsuid.json["recipient"] == PARENT_BSUID
    assert "to" not in by_bsuid.json  # Meta reads `to` first when both are given
    by_phone = adapter.build_request(validate_send_request(request(to="+16505551234")), settings(), "m-2")
    assert by_phone.json["to"] == "16505551234"
    assert "recipient" not in by_phone.json
    for built in (by_bsuid, by_phone):
        assert built.json["messaging_product"] == "whatsapp"
        assert built.json["recipient_type"] == "individual"
        assert built.json["type"] == "interactive"


def test_meta_bsuid_request_matches_its_golden_file() -> None:
    golden = json.loads((SAMPLES / "requests" / "meta_button_bsuid.json").read_text())
    data = {"provider": "meta", "sender": "106540352242922", "to": golden["json"]["recipient"]}
    data["interactive"] = golden["json"]["interactive"]
    built = adapter_for("meta").build_request(validate_send_request(data), settings(), "m-1")
    assert built.url == golden["url"]
    assert built.json == golden["json"]


# --- Meta's answers --------------------------------------------------------------------------------


def test_meta_answer_naming_the_contact_by_user_id_is_a_success() -> None:
    outcome = adapter_for("meta").classify(meta_sample("send_accepted_bsuid"))
    assert outcome.kind == "accepted"
    assert outcome.provider_message_id == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def test_meta_131049_is_recipient_limited_and_never_retried() -> None:
    outcome = adapter_for("meta").classify(meta_sample("error_131049"))
    assert (outcome.kind, outcome.reason, outcome.provider_code) == (
        "permanent",
        "recipient_limited",
        "131049",
    )
    assert not outcome.retryable
    assert (
        outcome.provider_message
        == "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
    )


def test_meta_131062_is_recipient_unsupported() -> None:
    outcome = adapter_for("meta").classify(meta_sample("error_131062"))
    assert (outcome.kind, outcome.reason, outcome.provider_code) == (
        "permanent",
        "recipient_unsupported",
        "131062",
    )
    assert not outcome.retryable
    assert (
        outcome.provider_message == "Business-scoped User ID recipients are not supported for this message."
    )


# --- masking ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "masked"),
    [
        (BSUID, "US.*****************918"),
        (PARENT_BSUID, "US.ENT.*****************830"),
        ("TZ.123456", "TZ.******"),
        ("+255712345678", "+2557*****678"),
        (None, "-"),
    ],
)
def test_mask_recipient(recipient: str | None, masked: str) -> None:
    assert mask_recipient(recipient) == masked
    assert mask_phone(recipient) == masked  # the callers that log `to` with mask_phone mask a BSUID too


def test_a_masked_bsuid_does_not_hold_its_middle() -> None:
    assert "1349120865530274" not in mask_recipient(BSUID)
    assert "11815799212886844" not in mask_recipient(PARENT_BSUID)


# --- campaigns -------------------------------------------------------------------------------------


def test_campaign_recipient_column_takes_bsuids_as_written() -> None:
    normalise = PhoneNormaliser("TZ")
    assert normalise(BSUID) == BSUID
    assert normalise(f" {PARENT_BSUID} ") == PARENT_BSUID
    assert normalise("0712 345 678") == "+255712345678"
    with pytest.raises(PhoneError, match="phone: must be a BSUID"):
        normalise("us.1349")


def test_campaign_filled_id_with_surrounding_spaces_is_a_row_error() -> None:
    template = Template.parse(
        {
            "type": "button",
            "body": {"text": "Order {order}"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "{code}", "title": "Yes"}}]},
        },
        provider="meta",
        sender="106540352242922",
    )
    assert template.fill({"order": "7", "code": "A-7"})["action"]["buttons"][0]["reply"]["id"] == "A-7"
    with pytest.raises(RowError) as info:
        template.fill({"order": "7", "code": "A-7 "})
    assert str(info.value) == (
        "interactive.action.buttons[0].reply.id: must not start or end with whitespace "
        "(WhatsApp returns ids trimmed in replies) once filled"
    )


def test_campaign_filled_row_id_with_surrounding_spaces_is_a_row_error() -> None:
    template = Template.parse(
        {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {"button": "Menu", "sections": [{"rows": [{"id": "row-{n}", "title": "One"}]}]},
        },
        provider="meta",
        sender="106540352242922",
    )
    with pytest.raises(
        RowError, match=r"sections\[0\]\.rows\[0\]\.id: must not start or end with whitespace"
    ):
        template.fill({"n": "1 "})


def test_campaign_template_with_a_fixed_spaced_id_is_refused_as_a_whole() -> None:
    with pytest.raises(MessageValidationError) as info:
        Template.parse(
            {
                "type": "button",
                "body": {"text": "Hi {name}"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "yes ", "title": "Yes"}}]},
            },
            provider="meta",
            sender="106540352242922",
        )
    assert [error.path for error in info.value.errors] == ["interactive.action.buttons[0].reply.id"]
