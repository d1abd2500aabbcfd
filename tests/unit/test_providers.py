"""Unit tests for the provider adapters: the requests they build and how they read the answers.

Pure and fast: no network. The expected requests are the hand-written golden files under
``tests/samples/requests/`` (copied from the provider docs in ``/work/shared/provider-docs/``); the
classification cases follow the tables of ``docs/providers.md`` row by row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from wadispatch.errors import ConfigurationError
from wadispatch.messages import validate_send_request
from wadispatch.providers import ADAPTERS, ProviderAnswer, ProviderRequest, adapter_for, parse_retry_after
from wadispatch.providers.base import Outcome
from wadispatch.settings import PROVIDER_NAMES, Settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "requests"
SECRETS = {
    "briq_api_key": "test-briq-api-key",
    "bird_access_key": "test-bird-access-key",
    "zixflow_api_key": "test-zixflow-api-key",
    "wacr_token": "test-wacr-token",
    "meta_access_token": "test-meta-access-token",
}
SECRET_OF = {
    "briq": SECRETS["briq_api_key"],
    "bird": SECRETS["bird_access_key"],
    "zixflow": SECRETS["zixflow_api_key"],
    "wacr": SECRETS["wacr_token"],
    "meta": SECRETS["meta_access_token"],
}
RECEIVED_AT = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
HTTP_DATE_90S_LATER = "Wed, 01 Jan 2025 12:01:30 GMT"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.fixture(autouse=True)
def _no_wadispatch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: make sure nothing set outside leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("WADISPATCH_") or name.upper() == "REDIS_URL":
            monkeypatch.delenv(name, raising=False)


def make_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        **SECRETS,
        "zixflow_workspace_id": "test-workspace-7",
        "wacr_base_url": "https://wacr.example/api/v2",
    }
    values.update(changes)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


# --- send requests (inputs), taken from the provider docs where they have an example ---------------

BRIQ_YES_NO = {
    "type": "button",
    "body": {"text": "Did this resolve your issue?"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}},
        ]
    },
}

SEND_REQUESTS: dict[str, dict[str, Any]] = {
    # Briq guide (001): the cURL example, `to` without `+` and no sender (one active sender).
    "briq_button": {"provider": "briq", "to": "255712345678", "interactive": BRIQ_YES_NO},
    # Briq documents no list example: a WhatsApp list object passed as-is, with a sender.
    "briq_list": {
        "provider": "briq",
        "to": "+255 712 345 678",
        "sender": "1107264639145282",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Karibu support"},
            "body": {"text": "How can we help you today?"},
            "footer": {"text": "Replies within one hour"},
            "action": {
                "button": "Choose a topic",
                "sections": [
                    {
                        "title": "Billing",
                        "rows": [
                            {
                                "id": "invoice",
                                "title": "Invoice question",
                                "description": "About a bill you received",
                            },
                            {"id": "refund", "title": "Refund"},
                        ],
                    },
                    {"title": "Technical", "rows": [{"id": "outage", "title": "Report an outage"}]},
                ],
            },
        },
    },
    # Briq reference (000): conversation_id instead of to + sender; a given sender is not sent.
    "briq_conversation": {
        "provider": "briq",
        "conversation_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "sender": "1107264639145282",
        "interactive": BRIQ_YES_NO,
    },
    # Bird (002): the t-shirt example, image header and footer.
    "bird_button": {
        "provider": "bird",
        "to": "+9999999999",
        "sender": "0181d0bb76c54g9aae4309s822d35ba5",
        "interactive": {
            "type": "button",
            "header": {"type": "image", "image": {"link": "https://cdn.example.com/t-shirt.jpg"}},
            "body": {"text": "Do you like this t shirt?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes-unique-id", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no-unique-id", "title": "No"}},
                ]
            },
            "footer": {"text": "We have this one in other colors."},
        },
    },
    # Bird (002): the "Main Menu" list example.
    "bird_list": {
        "provider": "bird",
        "to": "+9999999999",
        "sender": "0181d0bb76c54g9aae4309s822d35ba5",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "What you would like to do buy today?"},
            "body": {"text": "To begin, tap Main Menu and choose from one of the following actions"},
            "action": {
                "button": "Main Menu",
                "sections": [
                    {
                        "title": "content-title-here",
                        "rows": [{"id": "unique-row-identifier-1", "title": "Buy bundles"}],
                    },
                    {
                        "title": "content-title-here",
                        "rows": [
                            {
                                "id": "unique-row-identifier-2",
                                "title": "Buy airtime",
                                "description": "optional description",
                            }
                        ],
                    },
                ],
            },
        },
    },
    # Zixflow (003): reply buttons, `recipient` as in its example 919876543210.
    "zixflow_button": {
        "provider": "zixflow",
        "to": "+91 98765-43210",
        "sender": "104857600112233",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Order #1042"},
            "body": {"text": "Your order is ready. How would you like to receive it?"},
            "footer": {"text": "Tap a button to reply"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "pickup", "title": "Pick it up"}},
                    {"type": "reply", "reply": {"id": "delivery", "title": "Deliver it"}},
                ]
            },
        },
    },
    # Zixflow: list (path assumed, see docs/providers.md).
    "zixflow_list": {
        "provider": "zixflow",
        "to": "919876543210",
        "sender": "104857600112233",
        "interactive": {
            "type": "list",
            "body": {"text": "Which slot suits you for delivery?"},
            "action": {
                "button": "See slots",
                "sections": [
                    {
                        "rows": [
                            {"id": "morning", "title": "Morning", "description": "9:00 to 12:00"},
                            {"id": "evening", "title": "Evening"},
                        ]
                    }
                ],
            },
        },
    },
    # WA.cr (004): the "Would you like to schedule a demo?" example.
    "wacr_button": {
        "provider": "wacr",
        "to": "+919999999999",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Product Demo"},
            "body": {"text": "Would you like to schedule a demo?"},
            "footer": {"text": "Click a button below"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "btn_yes", "title": "Yes, please!"}},
                    {"type": "reply", "reply": {"id": "btn_no", "title": "Not now"}},
                    {"type": "reply", "reply": {"id": "btn_later", "title": "Maybe later"}},
                ]
            },
        },
    },
    # WA.cr (004): list fields from its field tables.
    "wacr_list": {
        "provider": "wacr",
        "to": "+919999999999",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Our plans"},
            "body": {"text": "Pick the plan you would like to hear about."},
            "footer": {"text": "Prices exclude VAT"},
            "action": {
                "button": "View plans",
                "sections": [
                    {
                        "title": "Monthly",
                        "rows": [
                            {"id": "starter_m", "title": "Starter", "description": "Up to 1,000 contacts"},
                            {"id": "pro_m", "title": "Pro"},
                        ],
                    },
                    {
                        "title": "Yearly",
                        "rows": [{"id": "pro_y", "title": "Pro (yearly)", "description": "Two months free"}],
                    },
                ],
            },
        },
    },
    # Meta Cloud API: reply buttons with an image header (WhatsApp's own `link`).
    "meta_button": {
        "provider": "meta",
        "to": "+1 (650) 555-1234",
        "sender": "106540352242922",
        "interactive": {
            "type": "button",
            "header": {"type": "image", "image": {"link": "https://cdn.example.com/flight.png"}},
            "body": {"text": "Your flight BA117 leaves at 14:05. Do you want to change your seat?"},
            "footer": {"text": "Lucky Shrub Airways"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "change-seat", "title": "Change seat"}},
                    {"type": "reply", "reply": {"id": "keep-seat", "title": "Keep my seat"}},
                ]
            },
        },
    },
    # Meta Cloud API, to a business-scoped user id (BSUID): sent as `recipient`, not `to`.
    "meta_button_bsuid": {
        "provider": "meta",
        "to": "US.13491208655302741918",
        "sender": "106540352242922",
        "interactive": {
            "type": "button",
            "body": {"text": "Your order is ready. Pick it up today?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "pickup-today", "title": "Yes, today"}},
                    {"type": "reply", "reply": {"id": "pickup-later", "title": "Later"}},
                ]
            },
        },
    },
    # Meta Cloud API: the "Shipping Options" list message.
    "meta_list": {
        "provider": "meta",
        "to": "+16505551234",
        "sender": "106540352242922",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Choose Shipping Option"},
            "body": {"text": "Which shipping option do you prefer?"},
            "footer": {"text": "Lucky Shrub: Your gateway to succulents"},
            "action": {
                "button": "Shipping Options",
                "sections": [
                    {
                        "title": "I want it ASAP!",
                        "rows": [
                            {
                                "id": "priority_express",
                                "title": "Priority Mail Express",
                                "description": "Next Day to 2 Days",
                            },
                            {"id": "priority_mail", "title": "Priority Mail", "description": "1-3 Days"},
                        ],
                    },
                    {
                        "title": "I can wait a bit",
                        "rows": [
                            {
                                "id": "ground_advantage",
                                "title": "USPS Ground Advantage",
                                "description": "2-5 Days",
                            },
                            {"id": "media_mail", "title": "Media Mail", "description": "2-8 Days"},
                        ],
                    },
                ],
            },
        },
    },
}


def build(sample: str, settings: Settings, message_id: str = "m-1") -> ProviderRequest:
    data = SEND_REQUESTS[sample]
    request = validate_send_request(data)
    return adapter_for(data["provider"]).build_request(request, settings, message_id=message_id)


def golden(sample: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{sample}.json").read_text(encoding="utf-8"))


# --- golden payloads -----------------------------------------------------------------------------


def test_every_provider_has_a_button_and_a_list_golden_file() -> None:
    for provider in PROVIDER_NAMES:
        for kind in ("button", "list"):
            assert f"{provider}_{kind}" in SEND_REQUESTS
            assert (SAMPLES / f"{provider}_{kind}.json").is_file()
    assert set(ADAPTERS) == set(PROVIDER_NAMES)


@pytest.mark.parametrize("sample", sorted(SEND_REQUESTS))
def test_request_matches_golden_file(sample: str, settings: Settings) -> None:
    built = build(sample, settings)
    expected = golden(sample)
    assert built.method == expected["method"]
    assert built.url == expected["url"]
    assert dict(built.headers) == expected["headers"]
    assert built.json == expected["json"]
    # What goes on the wire is plain JSON: it survives a round trip unchanged.
    assert json.loads(json.dumps(built.json)) == expected["json"]


def test_briq_sends_digits_without_plus_and_no_sender_when_none(settings: Settings) -> None:
    body = build("briq_button", settings).json
    assert body["to"] == "255712345678"
    assert "sender" not in body
    assert "conversation_id" not in body
    assert build("briq_list", settings).json["sender"] == "1107264639145282"


def test_briq_conversation_id_replaces_to_and_sender(settings: Settings) -> None:
    body = build("briq_conversation", settings).json
    assert body["conversation_id"] == "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert "to" not in body
    assert "sender" not in body
    assert "sender_id" not in body


def test_briq_passes_the_whatsapp_object_as_is(settings: Settings) -> None:
    body = build("briq_button", settings).json
    assert body["interactive"] == BRIQ_YES_NO


def test_bird_buttons_are_flat_and_image_header_uses_url(settings: Settings) -> None:
    built = build("bird_button", settings)
    interactive = built.json["content"]["interactive"]
    assert interactive["action"]["buttons"] == [
        {"id": "yes-unique-id", "type": "reply", "title": "Yes"},
        {"id": "no-unique-id", "type": "reply", "title": "No"},
    ]
    assert all("reply" not in button for button in interactive["action"]["buttons"])
    assert interactive["header"] == {"type": "image", "image": {"url": "https://cdn.example.com/t-shirt.jpg"}}
    assert built.json["to"] == "+9999999999"
    assert built.json["from"] == "0181d0bb76c54g9aae4309s822d35ba5"
    assert built.json["type"] == "interactive"
    assert built.headers["Authorization"] == "AccessKey test-bird-access-key"


def test_bird_does_not_alter_the_canonical_request(settings: Settings) -> None:
    request = validate_send_request(SEND_REQUESTS["bird_button"])
    before = request.model_dump()
    adapter_for("bird").build_request(request, settings, message_id="m-1")
    assert request.model_dump() == before
    assert request.interactive.header is not None
    assert request.interactive.header.image is not None
    assert request.interactive.header.image.link == "https://cdn.example.com/t-shirt.jpg"


def test_wacr_body_is_flat(settings: Settings) -> None:
    button = build("wacr_button", settings).json
    assert set(button) == {"phone", "type", "body_text", "header_text", "footer_text", "buttons"}
    assert button["phone"] == "+919999999999"
    assert button["buttons"] == [
        {"id": "btn_yes", "title": "Yes, please!"},
        {"id": "btn_no", "title": "Not now"},
        {"id": "btn_later", "title": "Maybe later"},
    ]
    listing = build("wacr_list", settings).json
    assert set(listing) == {
        "phone",
        "type",
        "body_text",
        "header_text",
        "footer_text",
        "list_button_text",
        "sections",
    }
    assert listing["type"] == "list"
    assert listing["list_button_text"] == "View plans"
    assert listing["sections"][0]["rows"][1] == {"id": "pro_m", "title": "Pro"}


def test_wacr_omits_optional_header_and_footer(settings: Settings) -> None:
    data = json.loads(json.dumps(SEND_REQUESTS["wacr_button"]))
    del data["interactive"]["header"]
    del data["interactive"]["footer"]
    body = adapter_for("wacr").build_request(validate_send_request(data), settings, "m-1").json
    assert "header_text" not in body
    assert "footer_text" not in body
    assert body["body_text"] == "Would you like to schedule a demo?"


def test_wacr_joins_base_url_with_exactly_one_slash(settings: Settings) -> None:
    request = validate_send_request(SEND_REQUESTS["wacr_button"])
    for base in ("https://wacr.example/api/v2", "https://wacr.example/api/v2/"):
        built = adapter_for("wacr").build_request(request, make_settings(wacr_base_url=base), "m-1")
        assert built.url == "https://wacr.example/api/v2/messages/interactive"


def test_zixflow_recipient_phone_id_and_post_back_data(settings: Settings) -> None:
    built = build("zixflow_button", settings, message_id="0190f0c4-msg-7")
    assert built.json["recipient"] == "919876543210"
    assert not built.json["recipient"].startswith("+")
    assert built.json["phone_id"] == "104857600112233"
    assert built.json["post_back_data"] == "0190f0c4-msg-7"
    assert "post_back_url" not in built.json
    assert built.headers["x-api-key"] == "test-zixflow-api-key"
    assert built.headers["x-workspace-id"] == "test-workspace-7"


def test_zixflow_list_goes_to_the_list_path(settings: Settings) -> None:
    assert build("zixflow_list", settings).url.endswith("/interactive/list/send")
    assert build("zixflow_button", settings).url.endswith("/interactive/reply-buttons/send")
    custom = make_settings(zixflow_list_path="/api/ingest/whatsapp/v2/list")
    assert build("zixflow_list", custom).url == "https://api-ai.zixflow.com/api/ingest/whatsapp/v2/list"
    assert build("zixflow_button", custom).url.endswith("/interactive/reply-buttons/send")


def test_zixflow_post_back_url_when_configured() -> None:
    hooks = make_settings(zixflow_post_back_url="https://hooks.example/zixflow")
    built = build("zixflow_button", hooks)
    assert built.json["post_back_url"] == "https://hooks.example/zixflow"
    assert built.json["post_back_data"] == "m-1"


def test_meta_body_and_path(settings: Settings) -> None:
    built = build("meta_button", settings)
    assert built.url == "https://graph.facebook.com/v23.0/106540352242922/messages"
    assert built.json["messaging_product"] == "whatsapp"
    assert built.json["recipient_type"] == "individual"
    assert built.json["to"] == "16505551234"
    assert built.json["type"] == "interactive"
    # Meta keeps WhatsApp's own media `link` (only Bird renames it).
    assert built.json["interactive"]["header"]["image"] == {"link": "https://cdn.example.com/flight.png"}
    custom = make_settings(meta_base_url="https://graph.facebook.com/v21.0/")
    assert build("meta_list", custom).url == "https://graph.facebook.com/v21.0/106540352242922/messages"


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "missing", "env_var"),
    [
        ("briq_button", {"briq_api_key": None}, "WADISPATCH_BRIQ_API_KEY"),
        ("briq_conversation", {"briq_api_key": None}, "WADISPATCH_BRIQ_API_KEY"),
        ("bird_button", {"bird_access_key": None}, "WADISPATCH_BIRD_ACCESS_KEY"),
        ("zixflow_button", {"zixflow_api_key": None}, "WADISPATCH_ZIXFLOW_API_KEY"),
        ("zixflow_list", {"zixflow_workspace_id": None}, "WADISPATCH_ZIXFLOW_WORKSPACE_ID"),
        ("zixflow_list", {"zixflow_workspace_id": ""}, "WADISPATCH_ZIXFLOW_WORKSPACE_ID"),
        ("wacr_button", {"wacr_token": None}, "WADISPATCH_WACR_TOKEN"),
        ("wacr_button", {"wacr_base_url": None}, "WADISPATCH_WACR_BASE_URL"),
        ("wacr_list", {"wacr_base_url": ""}, "WADISPATCH_WACR_BASE_URL"),
        ("meta_list", {"meta_access_token": None}, "WADISPATCH_META_ACCESS_TOKEN"),
    ],
)
def test_missing_setting_raises_configuration_error_naming_it(
    sample: str, missing: dict[str, Any], env_var: str
) -> None:
    with pytest.raises(ConfigurationError, match=env_var):
        build(sample, make_settings(**missing))


def test_wacr_without_base_url_or_token_names_the_base_url_first() -> None:
    with pytest.raises(ConfigurationError, match="WADISPATCH_WACR_BASE_URL"):
        build("wacr_button", make_settings(wacr_base_url=None, wacr_token=None))


def test_settings_from_the_environment_feed_the_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WADISPATCH_WACR_BASE_URL", "https://env.wacr.example")
    monkeypatch.setenv("WADISPATCH_WACR_TOKEN", "env-wacr-token")
    built = build("wacr_button", Settings(_env_file=None))
    assert built.url == "https://env.wacr.example/messages/interactive"
    assert built.headers["Authorization"] == "Bearer env-wacr-token"


# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(SEND_REQUESTS))
def test_repr_of_a_provider_request_never_shows_the_secret(sample: str, settings: Settings) -> None:
    built = build(sample, settings)
    secret = SECRET_OF[SEND_REQUESTS[sample]["provider"]]
    assert any(secret in value for value in built.headers.values())  # it is really there...
    assert secret not in repr(built)  # ...but never in a repr or str
    assert secret not in str(built)
    assert secret not in repr(built.json)


def test_settings_repr_masks_secrets(settings: Settings) -> None:
    for secret in SECRETS.values():
        assert secret not in repr(settings)


# --- classification ------------------------------------------------------------------------------


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> ProviderAnswer:
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode()
    return ProviderAnswer(
        status_code=status,
        headers={name.lower(): value for name, value in (headers or {}).items()},
        body=raw,
        received_at=RECEIVED_AT,
    )


@dataclass(frozen=True)
class Expect:
    """The outcome a case expects. ``reason`` is checked for permanent and rate-limited outcomes."""

    kind: str
    reason: str | None = None
    code: str | None = None
    message: str | None = None
    message_id: str | None = None
    retry_after: float | None = None


def check(outcome: Outcome, expect: Expect, status: int) -> None:
    assert outcome.kind == expect.kind, outcome
    if expect.kind == "permanent":
        assert outcome.reason == expect.reason, outcome
    if expect.kind == "rate_limited":
        assert outcome.reason == "rate_limited"
    if expect.kind == "transient":
        assert outcome.reason, outcome
    assert outcome.provider_message_id == expect.message_id, outcome
    assert outcome.retry_after == expect.retry_after, outcome
    assert outcome.provider_code == expect.code, outcome
    assert outcome.provider_message == expect.message, outcome
    assert outcome.status_code == status, outcome
    assert outcome.retryable is (expect.kind in ("rate_limited", "transient"))


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    body: Any
    expect: Expect
    headers: dict[str, str] | None = None


def rate_limit_cases(status: int, body: Any, code: str | None, message: str | None) -> list[Case]:
    """A 429 with ``Retry-After`` in seconds, as an HTTP date, and without it."""
    return [
        Case(
            "429_retry_after_seconds",
            status,
            body,
            Expect("rate_limited", code=code, message=message, retry_after=30.0),
            {"Retry-After": "30"},
        ),
        Case(
            "429_retry_after_http_date",
            status,
            body,
            Expect("rate_limited", code=code, message=message, retry_after=90.0),
            {"Retry-After": HTTP_DATE_90S_LATER},
        ),
        Case("429_without_retry_after", status, body, Expect("rate_limited", code=code, message=message)),
        Case("429_empty_body", status, None, Expect("rate_limited")),
    ]


# Briq: {"success": false, "data": null, "errors": [{code, message, field}], "request_id"}
def briq_error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {
        "success": False,
        "data": None,
        "errors": [{"code": code, "message": message, "field": field}],
        "request_id": "req_01HZX",
    }


BRIQ_ACCEPTED = {
    "success": True,
    "data": {
        "message_id": "7d0f1c2e-1111-4b50-8888-8dd25736052a",
        "conversation_id": "3c90c3cc-2222-4b50-8888-8dd25736052a",
        "sender_id": "5e1a9b3c-3333-4b50-8888-8dd25736052a",
        "sender": "1107264639145282",
        "provider_message_id": "wamid.HBgMMjU1NzEyMzQ1Njc4FQIAERgSQ0Y",
        "status": "pending",
    },
    "errors": None,
    "request_id": "req_01HZY",
}

BRIQ_CASES = [
    Case(
        "accepted_202_data_message_id",
        202,
        BRIQ_ACCEPTED,
        Expect("accepted", message_id=BRIQ_ACCEPTED["data"]["message_id"]),
    ),
    *rate_limit_cases(
        429, briq_error("RATE_LIMITED", "Too many requests"), "RATE_LIMITED", "Too many requests"
    ),
    Case(
        "code_rate_limited_without_429",
        400,
        briq_error("RATE_LIMITED", "Slow down"),
        Expect("rate_limited", code="RATE_LIMITED", message="Slow down", retry_after=5.0),
        {"Retry-After": "5"},
    ),
    Case(
        "500_transient",
        500,
        briq_error("INTERNAL", "boom"),
        Expect("transient", code="INTERNAL", message="boom"),
    ),
    Case("503_empty_transient", 503, None, Expect("transient")),
    Case(
        "401_auth",
        401,
        briq_error("UNAUTHORIZED", "Invalid API key"),
        Expect("permanent", "auth", "UNAUTHORIZED", "Invalid API key"),
    ),
    Case(
        "403_auth",
        403,
        briq_error("FORBIDDEN", "No access"),
        Expect("permanent", "auth", "FORBIDDEN", "No access"),
    ),
    Case(
        "422_window_closed",
        422,
        briq_error("WINDOW_CLOSED", "The 24-hour window is closed", "to"),
        Expect("permanent", "window_closed", "WINDOW_CLOSED", "The 24-hour window is closed"),
    ),
    Case(
        "opted_out",
        400,
        briq_error("OPTED_OUT", "Recipient opted out"),
        Expect("permanent", "opted_out", "OPTED_OUT", "Recipient opted out"),
    ),
    Case(
        "400_invalid",
        400,
        briq_error("VALIDATION_ERROR", "interactive.type is required", "interactive.type"),
        Expect("permanent", "invalid", "VALIDATION_ERROR", "interactive.type is required"),
    ),
    Case(
        "422_invalid",
        422,
        briq_error("INVALID_PHONE", "to does not match pattern", "to"),
        Expect("permanent", "invalid", "INVALID_PHONE", "to does not match pattern"),
    ),
    Case(
        "404_provider_rejected",
        404,
        briq_error("NOT_FOUND", "Conversation not found"),
        Expect("permanent", "provider_rejected", "NOT_FOUND", "Conversation not found"),
    ),
    Case(
        "409_provider_rejected",
        409,
        briq_error("SENDER_INACTIVE", "Sender is not active"),
        Expect("permanent", "provider_rejected", "SENDER_INACTIVE", "Sender is not active"),
    ),
]


# Bird: {"errors": [{code: <int>, description, parameter}]}
def bird_error(code: int, description: str, parameter: str | None = None) -> dict[str, Any]:
    return {"errors": [{"code": code, "description": description, "parameter": parameter}]}


BIRD_CASES = [
    Case(
        "accepted_202_id",
        202,
        {"id": "4a968dd619f54d9582440d15aaa791ec", "status": "accepted"},
        Expect("accepted", message_id="4a968dd619f54d9582440d15aaa791ec"),
    ),
    *rate_limit_cases(429, bird_error(429, "Too many requests"), "429", "Too many requests"),
    Case(
        "500_transient",
        500,
        bird_error(1, "Internal error"),
        Expect("transient", code="1", message="Internal error"),
    ),
    Case("502_html_transient", 502, HTML_PAGE, Expect("transient")),
    Case(
        "401_auth",
        401,
        bird_error(2, "Request not allowed"),
        Expect("permanent", "auth", "2", "Request not allowed"),
    ),
    Case("403_auth_no_body", 403, None, Expect("permanent", "auth")),
    Case(
        "code_2_bad_access_key",
        400,
        bird_error(2, "Request not allowed (incorrect access_key)", "access_key"),
        Expect("permanent", "auth", "2", "Request not allowed (incorrect access_key)"),
    ),
    Case(
        "code_470_window_closed",
        422,
        bird_error(470, "Message failed to send because more than 24 hours have passed"),
        Expect(
            "permanent",
            "window_closed",
            "470",
            "Message failed to send because more than 24 hours have passed",
        ),
    ),
    Case(
        "code_131047_window_closed",
        400,
        bird_error(131047, "Re-engagement message"),
        Expect("permanent", "window_closed", "131047", "Re-engagement message"),
    ),
    Case(
        "code_131050_opted_out",
        400,
        bird_error(131050, "User has stopped marketing messages"),
        Expect("permanent", "opted_out", "131050", "User has stopped marketing messages"),
    ),
    Case(
        "code_131049_recipient_limited",
        400,
        bird_error(131049, "This message was not delivered to maintain healthy ecosystem engagement."),
        Expect(
            "permanent",
            "recipient_limited",
            "131049",
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ),
    ),
    Case(
        "code_131049_recipient_limited_even_with_a_5xx",
        500,
        bird_error(131049, "Not delivered"),
        Expect("permanent", "recipient_limited", "131049", "Not delivered"),
    ),
    Case(
        "400_invalid",
        400,
        bird_error(9, "no (correct) recipients found", "to"),
        Expect("permanent", "invalid", "9", "no (correct) recipients found"),
    ),
    Case(
        "422_invalid",
        422,
        bird_error(21, "Bad request", "content"),
        Expect("permanent", "invalid", "21", "Bad request"),
    ),
    Case(
        "404_provider_rejected",
        404,
        bird_error(20, "channel not found", "from"),
        Expect("permanent", "provider_rejected", "20", "channel not found"),
    ),
]


# Zixflow: {"success": false, "message": "..."}; no error codes, the message text is read.
def zixflow_error(message: str) -> dict[str, Any]:
    return {"success": False, "message": message}


ZIXFLOW_CASES = [
    Case(
        "accepted_200_request_id",
        200,
        {
            "success": True,
            "message": "WhatsApp request queued successfully",
            "request_id": "f8df74d1-11fa-4485-b164-b9a65358f4fc",
        },
        Expect("accepted", message_id="f8df74d1-11fa-4485-b164-b9a65358f4fc"),
    ),
    *rate_limit_cases(429, zixflow_error("Rate limit exceeded"), None, "Rate limit exceeded"),
    Case(
        "500_transient",
        500,
        zixflow_error("Internal server error"),
        Expect("transient", message="Internal server error"),
    ),
    Case("503_html_transient", 503, HTML_PAGE, Expect("transient")),
    Case(
        "401_auth",
        401,
        zixflow_error("Invalid API key"),
        Expect("permanent", "auth", message="Invalid API key"),
    ),
    Case(
        "403_auth",
        403,
        zixflow_error("Workspace access denied"),
        Expect("permanent", "auth", message="Workspace access denied"),
    ),
    Case(
        "24_hour_window",
        400,
        zixflow_error("Message failed: outside the 24-hour customer service window"),
        Expect(
            "permanent",
            "window_closed",
            message="Message failed: outside the 24-hour customer service window",
        ),
    ),
    Case(
        "re_engagement",
        422,
        zixflow_error("Re-engagement message required"),
        Expect("permanent", "window_closed", message="Re-engagement message required"),
    ),
    Case(
        "code_131047_in_text",
        400,
        zixflow_error("WhatsApp error 131047"),
        Expect("permanent", "window_closed", message="WhatsApp error 131047"),
    ),
    Case(
        "opted_out",
        400,
        zixflow_error("Recipient has opted out of messages"),
        Expect("permanent", "opted_out", message="Recipient has opted out of messages"),
    ),
    Case(
        "opt_out_hyphen",
        422,
        zixflow_error("Contact is on the opt-out list"),
        Expect("permanent", "opted_out", message="Contact is on the opt-out list"),
    ),
    Case(
        "400_131049_recipient_limited",
        400,
        zixflow_error("(#131049) This message was not delivered to maintain healthy ecosystem engagement."),
        Expect(
            "permanent",
            "recipient_limited",
            message="(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
        ),
    ),
    Case(
        "500_healthy_ecosystem_recipient_limited",
        500,
        zixflow_error("Not delivered to maintain healthy ecosystem engagement"),
        Expect(
            "permanent",
            "recipient_limited",
            message="Not delivered to maintain healthy ecosystem engagement",
        ),
    ),
    Case(
        "400_invalid",
        400,
        zixflow_error("recipient is required"),
        Expect("permanent", "invalid", message="recipient is required"),
    ),
    Case(
        "422_invalid",
        422,
        zixflow_error("Invalid interactive object"),
        Expect("permanent", "invalid", message="Invalid interactive object"),
    ),
    Case(
        "2xx_success_false_invalid",
        200,
        zixflow_error("Invalid phone_id"),
        Expect("permanent", "invalid", message="Invalid phone_id"),
    ),
    Case(
        "404_provider_rejected",
        404,
        zixflow_error("Phone ID not found"),
        Expect("permanent", "provider_rejected", message="Phone ID not found"),
    ),
]


# WA.cr: {"success": false, "error": {"code": "...", "message": "..."}}
def wacr_error(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


WACR_ACCEPTED_DATA = {
    "message_id": "wamid.HBgMOTE5OTk5OTk5OTk5FQIAERgSNzQ",
    "contact_id": 4711,
    "phone": "919999999999",
    "type": "button",
    "status": "sent",
    "sent_at": "2025-01-01T12:00:00Z",
    "chat_id": 90,
    "chat_message_id": 1234,
}

WACR_CASES = [
    Case(
        "accepted_200_under_data",
        200,
        {"success": True, "data": WACR_ACCEPTED_DATA},
        Expect("accepted", message_id=WACR_ACCEPTED_DATA["message_id"]),
    ),
    Case(
        "accepted_200_top_level",
        200,
        WACR_ACCEPTED_DATA,
        Expect("accepted", message_id=WACR_ACCEPTED_DATA["message_id"]),
    ),
    *rate_limit_cases(
        429,
        wacr_error("RATE_LIMIT_EXCEEDED", "Too many requests"),
        "RATE_LIMIT_EXCEEDED",
        "Too many requests",
    ),
    Case(
        "rate_limit_code_without_429",
        403,
        wacr_error("RATE_LIMIT_EXCEEDED", "Too many requests"),
        Expect("rate_limited", code="RATE_LIMIT_EXCEEDED", message="Too many requests"),
    ),
    Case(
        "500_send_failed_131047",
        500,
        wacr_error("MESSAGE_SEND_FAILED", "(#131047) Re-engagement message"),
        Expect("permanent", "window_closed", "MESSAGE_SEND_FAILED", "(#131047) Re-engagement message"),
    ),
    Case(
        "500_send_failed_131049",
        500,
        wacr_error(
            "MESSAGE_SEND_FAILED",
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
        ),
        Expect(
            "permanent",
            "recipient_limited",
            "MESSAGE_SEND_FAILED",
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
        ),
    ),
    Case(
        "500_send_failed_24_hour_window",
        500,
        wacr_error("MESSAGE_SEND_FAILED", "More than 24 hours have passed since the customer last replied"),
        Expect(
            "permanent",
            "window_closed",
            "MESSAGE_SEND_FAILED",
            "More than 24 hours have passed since the customer last replied",
        ),
    ),
    Case(
        "500_send_failed_transient",
        500,
        wacr_error("MESSAGE_SEND_FAILED", "Failed to send via WhatsApp API"),
        Expect("transient", code="MESSAGE_SEND_FAILED", message="Failed to send via WhatsApp API"),
    ),
    Case(
        "500_internal_error_transient",
        500,
        wacr_error("INTERNAL_ERROR", "Unexpected server error"),
        Expect("transient", code="INTERNAL_ERROR", message="Unexpected server error"),
    ),
    Case("502_html_transient", 502, HTML_PAGE, Expect("transient")),
    Case(
        "401_unauthorized_auth",
        401,
        wacr_error("UNAUTHORIZED", "Invalid or missing API token"),
        Expect("permanent", "auth", "UNAUTHORIZED", "Invalid or missing API token"),
    ),
    Case(
        "403_insufficient_scope_auth",
        403,
        wacr_error("INSUFFICIENT_SCOPE", "Token missing messages:send scope"),
        Expect("permanent", "auth", "INSUFFICIENT_SCOPE", "Token missing messages:send scope"),
    ),
    Case(
        "403_contact_opted_out",
        403,
        wacr_error("CONTACT_OPTED_OUT", "Contact has opted out of receiving messages"),
        Expect("permanent", "opted_out", "CONTACT_OPTED_OUT", "Contact has opted out of receiving messages"),
    ),
    Case(
        "422_validation_error_invalid",
        422,
        wacr_error("VALIDATION_ERROR", "Body text is required"),
        Expect("permanent", "invalid", "VALIDATION_ERROR", "Body text is required"),
    ),
    Case(
        "403_feature_limit_exceeded",
        403,
        wacr_error("FEATURE_LIMIT_EXCEEDED", "Conversation limit reached"),
        Expect("permanent", "provider_rejected", "FEATURE_LIMIT_EXCEEDED", "Conversation limit reached"),
    ),
    Case(
        "404_not_found",
        404,
        wacr_error("NOT_FOUND", "Contact not found"),
        Expect("permanent", "provider_rejected", "NOT_FOUND", "Contact not found"),
    ),
    Case(
        "422_whatsapp_not_configured",
        422,
        wacr_error("WHATSAPP_NOT_CONFIGURED", "WhatsApp not configured for this account"),
        Expect(
            "permanent",
            "provider_rejected",
            "WHATSAPP_NOT_CONFIGURED",
            "WhatsApp not configured for this account",
        ),
    ),
    Case(
        "409_other_4xx",
        409,
        wacr_error("CONFLICT", "Duplicate request"),
        Expect("permanent", "provider_rejected", "CONFLICT", "Duplicate request"),
    ),
]

# docs/providers.md, WA.cr table: a code WA.cr does not list is read by its HTTP status.
WACR_OTHER_4XX_CASES = [
    Case(
        "400_unknown_code",
        400,
        wacr_error("BAD_REQUEST", "Malformed JSON"),
        Expect("permanent", "invalid", "BAD_REQUEST", "Malformed JSON"),
    ),
    Case(
        "422_unknown_code",
        422,
        wacr_error("TEMPLATE_REQUIRED", "Contact must be reached with a template"),
        Expect("permanent", "invalid", "TEMPLATE_REQUIRED", "Contact must be reached with a template"),
    ),
    Case(
        "403_unknown_code",
        403,
        wacr_error("ACCOUNT_SUSPENDED", "Account suspended"),
        Expect("permanent", "auth", "ACCOUNT_SUSPENDED", "Account suspended"),
    ),
]


# Meta: {"error": {message, type, code, error_data{details}, error_subcode, fbtrace_id}}
def meta_error(code: int | str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf", **extra}
    }


def meta_code(code: int, kind: str, reason: str | None = None, status: int = 400) -> Case:
    message = f"(#{code}) meta error"
    return Case(
        f"code_{code}_http_{status}",
        status,
        meta_error(code, message),
        Expect(kind, reason, str(code), message),
    )


META_ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
    "messages": [{"id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}],
}

META_CASES = [
    Case(
        "accepted_200_messages_0_id",
        200,
        META_ACCEPTED,
        Expect("accepted", message_id=META_ACCEPTED["messages"][0]["id"]),
    ),
    *rate_limit_cases(429, meta_error(130429, "Rate limit hit"), "130429", "Rate limit hit"),
    # rate_limited
    meta_code(4, "rate_limited"),
    meta_code(80007, "rate_limited"),
    meta_code(130429, "rate_limited"),  # seen with HTTP 400
    meta_code(131056, "rate_limited"),
    meta_code(613, "rate_limited"),
    Case("http_429_without_code", 429, None, Expect("rate_limited")),
    # transient
    meta_code(1, "transient", status=500),
    meta_code(2, "transient", status=503),
    meta_code(131000, "transient", status=500),
    meta_code(131016, "transient", status=503),
    meta_code(131057, "transient", status=400),
    meta_code(1, "transient", status=400),
    Case("http_500_without_error", 500, {}, Expect("transient")),
    Case("http_502_html", 502, HTML_PAGE, Expect("transient")),
    # window_closed
    meta_code(131047, "permanent", "window_closed"),
    meta_code(470, "permanent", "window_closed"),
    # opted_out
    meta_code(131050, "permanent", "opted_out"),
    # auth
    meta_code(0, "permanent", "auth", status=401),
    meta_code(190, "permanent", "auth", status=401),
    meta_code(190, "permanent", "auth", status=400),
    meta_code(10, "permanent", "auth", status=403),
    meta_code(200, "permanent", "auth", status=403),
    meta_code(250, "permanent", "auth", status=403),
    meta_code(299, "permanent", "auth", status=403),
    # invalid
    meta_code(100, "permanent", "invalid"),
    meta_code(131008, "permanent", "invalid"),
    meta_code(131009, "permanent", "invalid"),
    meta_code(131051, "permanent", "invalid"),
    # recipient_limited (never retried: Meta asks to wait at least 24 hours)
    meta_code(131049, "permanent", "recipient_limited"),
    meta_code(131049, "permanent", "recipient_limited", status=200),
    # recipient_unsupported (a BSUID where this message needs a phone number)
    meta_code(131062, "permanent", "recipient_unsupported"),
    # provider_rejected
    meta_code(131026, "permanent", "provider_rejected"),
    meta_code(131048, "permanent", "provider_rejected"),
    meta_code(368, "permanent", "provider_rejected", status=403),
    meta_code(131031, "permanent", "provider_rejected", status=403),
    meta_code(300, "permanent", "provider_rejected"),  # just outside the 200-299 permission range
    meta_code(131999, "permanent", "provider_rejected"),  # any other
    # the code wins over the HTTP status
    meta_code(131047, "permanent", "window_closed", status=200),
    meta_code(130429, "rate_limited", status=500),
    Case(
        "code_as_string",
        400,
        meta_error("130429", "Rate limit hit"),
        Expect("rate_limited", code="130429", message="Rate limit hit"),
    ),
]


CLASSIFICATION_CASES = [
    *[pytest.param("briq", case, id=f"briq-{case.id}") for case in BRIQ_CASES],
    *[pytest.param("bird", case, id=f"bird-{case.id}") for case in BIRD_CASES],
    *[pytest.param("zixflow", case, id=f"zixflow-{case.id}") for case in ZIXFLOW_CASES],
    *[pytest.param("wacr", case, id=f"wacr-{case.id}") for case in WACR_CASES],
    *[pytest.param("wacr", case, id=f"wacr-{case.id}") for case in WACR_OTHER_4XX_CASES],
    *[pytest.param("meta", case, id=f"meta-{case.id}") for case in META_CASES],
]


@pytest.mark.parametrize(("provider", "case"), CLASSIFICATION_CASES)
def test_classification(provider: str, case: Case) -> None:
    outcome = adapter_for(provider).classify(answer(case.status, case.body, case.headers))
    check(outcome, case.expect, case.status)


def test_classification_tables_are_all_covered() -> None:
    """Each provider has at least one case for every outcome and permanent reason of its table."""
    by_provider: dict[str, set[str]] = {}
    for param in CLASSIFICATION_CASES:
        provider, case = param.values
        label = case.expect.kind if case.expect.kind != "permanent" else case.expect.reason
        by_provider.setdefault(provider, set()).add(label)
    wanted = {"accepted", "rate_limited", "transient", "auth", "invalid", "window_closed", "opted_out"}
    wanted |= {"provider_rejected"}
    for provider in PROVIDER_NAMES:
        assert wanted <= by_provider[provider], provider


def test_briq_records_its_own_message_id_not_the_whatsapp_one() -> None:
    outcome = adapter_for("briq").classify(answer(202, BRIQ_ACCEPTED))
    assert outcome.provider_message_id == BRIQ_ACCEPTED["data"]["message_id"]
    assert outcome.provider_message_id != BRIQ_ACCEPTED["data"]["provider_message_id"]
    assert outcome.provider_message_id != BRIQ_ACCEPTED["data"]["conversation_id"]


def test_meta_keeps_code_and_a_message_when_error_data_has_details() -> None:
    body = meta_error(
        131047,
        "(#131047) Re-engagement message",
        error_data={"messaging_product": "whatsapp", "details": "More than 24 hours have passed"},
        error_subcode=2494010,
    )
    outcome = adapter_for("meta").classify(answer(400, body))
    assert outcome.kind == "permanent"
    assert outcome.reason == "window_closed"
    assert outcome.provider_code == "131047"
    assert outcome.provider_message in ("(#131047) Re-engagement message", "More than 24 hours have passed")


# A 2xx without the id the provider should give: never `accepted`, and no made-up id.
TWO_XX_WITHOUT_ID = [
    ("briq", 202, {"success": True, "data": {"status": "pending"}, "errors": None, "request_id": "r"}),
    ("briq", 202, {"success": True, "data": None, "errors": None}),
    ("briq", 202, None),
    ("bird", 202, {"status": "accepted"}),
    ("bird", 202, None),
    ("zixflow", 200, {"success": True, "message": "WhatsApp request queued successfully"}),
    ("zixflow", 200, None),
    ("wacr", 200, {"success": True, "data": {"status": "sent"}}),
    ("wacr", 200, None),
    ("meta", 200, {"messaging_product": "whatsapp", "contacts": [], "messages": []}),
    ("meta", 200, {"messaging_product": "whatsapp", "messages": [{}]}),
    ("meta", 200, None),
]


@pytest.mark.parametrize(("provider", "status", "body"), TWO_XX_WITHOUT_ID)
def test_2xx_without_a_message_id_is_not_accepted(provider: str, status: int, body: Any) -> None:
    outcome = adapter_for(provider).classify(answer(status, body))
    assert outcome.kind != "accepted"
    assert outcome.provider_message_id is None
    assert outcome.reason
    assert outcome.status_code == status


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize(
    ("status", "kinds"),
    [
        (200, {"transient", "permanent"}),
        (202, {"transient", "permanent"}),
        (400, {"permanent"}),
        (401, {"permanent"}),
        (404, {"permanent"}),
        (429, {"rate_limited"}),
        (500, {"transient"}),
        (502, {"transient"}),
        (504, {"transient"}),
    ],
)
@pytest.mark.parametrize(
    "body",
    [HTML_PAGE, b"Bad Gateway", b"\xff\xfe\x00garbage", b"{not json", b"   "],
    ids=["html", "text", "binary", "broken_json", "blank"],
)
def test_non_json_bodies_do_not_crash(provider: str, status: int, kinds: set[str], body: bytes) -> None:
    outcome = adapter_for(provider).classify(answer(status, body))
    assert outcome.kind in kinds
    assert outcome.provider_message_id is None
    assert outcome.status_code == status
    if status == 401:
        assert outcome.reason == "auth"


ODD_JSON = [
    pytest.param([], id="list"),
    pytest.param("queued", id="string"),
    pytest.param(42, id="number"),
    pytest.param({"errors": "boom", "error": "boom"}, id="errors_as_strings"),
    pytest.param(
        {"errors": [None, "x"], "error": {"code": None, "error_data": "x"}}, id="errors_not_objects"
    ),
    pytest.param({"success": True, "data": [1, 2]}, id="data_as_list"),
    pytest.param({"messages": "wamid.x"}, id="messages_as_string"),
]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize("body", ODD_JSON)
def test_unexpected_json_shapes_do_not_crash(provider: str, status: int, body: Any) -> None:
    outcome = adapter_for(provider).classify(answer(status, body))
    assert outcome.kind != "accepted"
    assert outcome.status_code == status


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_2xx_with_a_list_of_non_objects_does_not_crash(provider: str) -> None:
    body = {"messages": [None], "data": None, "errors": None, "success": True}
    outcome = adapter_for(provider).classify(answer(200, body))
    assert outcome.kind != "accepted"
    assert outcome.provider_message_id is None


# --- parse_retry_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds_with_spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("-5", 0.0, id="negative"),
        pytest.param("Wed, 01 Jan 2025 12:01:30 GMT", 90.0, id="http_date_future"),
        pytest.param("Wed, 01 Jan 2025 11:59:00 GMT", 0.0, id="http_date_past"),
        pytest.param("Wed, 01 Jan 2025 12:00:00 GMT", 0.0, id="http_date_now"),
        pytest.param("Wed, 01 Jan 2025 12:00:10 -0000", 10.0, id="http_date_without_zone"),
        pytest.param("Wed, 01 Jan 2025 14:00:10 +0200", 10.0, id="http_date_with_offset"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("12 seconds", None, id="garbage_with_digits"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, RECEIVED_AT) == expected


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    later = RECEIVED_AT + timedelta(seconds=45)
    value = format_datetime(later, usegmt=True)
    assert parse_retry_after(value, RECEIVED_AT) == 45.0
    assert parse_retry_after(value, later) == 0.0
    assert parse_retry_after(value, RECEIVED_AT - timedelta(seconds=15)) == 60.0
