"""A campaign's fallback template: checked once with the interactive template's stand-ins,
filled per row from its {column} placeholders and checked again (payloads against the row's ids)."""

from __future__ import annotations

import json

import pytest
from wadispatch.campaigns.fallback import CampaignFallback, reply_ids
from wadispatch.campaigns.template import RowError, Template
from wadispatch.errors import MessageValidationError

from tests.support import CAMPAIGN_TEMPLATE

SENDER = "1107264639145282"
FALLBACK = {
    "name": "order_ready",
    "language": "en",
    "body_parameters": ["{name}", "order {order}"],
    "quick_replies": ["yes-{order}", "no"],
}
INTERACTIVE = Template.parse(CAMPAIGN_TEMPLATE, provider="meta", sender=SENDER)


def parse(fallback: object, provider: str = "meta") -> CampaignFallback:
    interactive = Template.parse(CAMPAIGN_TEMPLATE, provider=provider, sender=SENDER)
    return CampaignFallback.parse(fallback, interactive, provider=provider)  # type: ignore[arg-type]


def fill(fallback: CampaignFallback, row: dict[str, str]) -> dict[str, object]:
    interactive = INTERACTIVE.fill(row)
    return json.loads(fallback.text(row, interactive))


def test_each_row_gets_its_own_parameters_and_payloads() -> None:
    fallback = parse(FALLBACK)
    assert fallback.columns == {"name", "order"}
    filled = fill(fallback, {"name": "Asha", "order": "12", "phone": "+255712345678"})
    assert filled["body_parameters"] == ["Asha", "order 12"]
    assert filled["quick_replies"] == ["yes-12", "no"]


def test_a_fallback_without_placeholders_is_built_once() -> None:
    fixed = {**FALLBACK, "body_parameters": ["hello"], "quick_replies": ["no"]}
    static = Template.parse(
        {
            **CAMPAIGN_TEMPLATE,
            "body": {"text": "Hi {name}"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "no", "title": "No"}}]},
        },
        provider="meta",
        sender=SENDER,
    )
    fallback = CampaignFallback.parse(fixed, static, provider="meta")
    assert not fallback.needs_interactive
    assert json.loads(fallback.text({"name": "x"}, None))["body_parameters"] == ["hello"]


@pytest.mark.parametrize(
    ("fallback", "path", "words"),
    [
        ({**FALLBACK, "body_parameters": ["{name"]}, "fallback.body_parameters[0]", "bad placeholder"),
        ({**FALLBACK, "quick_replies": ["maybe-{order}"]}, "fallback.quick_replies[0]", "reply ids"),
        ({**FALLBACK, "quick_replies": ["yes-{name}"]}, "fallback.quick_replies[0]", "reply ids"),
        ({**FALLBACK, "language": "en-GB"}, "fallback.language", "language code"),
        ({**FALLBACK, "name": 5}, "fallback.name", "string"),
        ([], "fallback", "object"),
    ],
)
def test_a_bad_fallback_names_its_field(fallback: object, path: str, words: str) -> None:
    with pytest.raises(MessageValidationError) as caught:
        parse(fallback)
    rules = {error.path: error.rule for error in caught.value.errors}
    assert path in rules and words in rules[path], rules


def test_a_provider_without_template_sends_is_refused() -> None:
    with pytest.raises(MessageValidationError) as caught:
        parse(FALLBACK, provider="zixflow")
    assert any(error.path == "fallback" for error in caught.value.errors)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"name": "two\nlines", "order": "1"}, "body_parameters.0.: must not contain a newline"),
        ({"name": "wide     gap", "order": "1"}, "4 spaces in a row"),
    ],
)
def test_a_row_whose_filled_fallback_breaks_a_rule_is_a_row_error(row: dict[str, str], words: str) -> None:
    with pytest.raises(RowError, match=words):
        fill(parse(FALLBACK), row)


def test_reply_ids_of_buttons_and_of_lists() -> None:
    assert reply_ids(INTERACTIVE.fill({"name": "A", "order": "7"})) == ["yes-7", "no"]
    listing = {
        "type": "list",
        "action": {"sections": [{"rows": [{"id": "a"}, {"id": "b"}]}, {"rows": [{"id": "c"}]}]},
    }
    assert reply_ids(listing) == ["a", "b", "c"]
