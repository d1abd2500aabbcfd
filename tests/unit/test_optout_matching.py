"""Opt-out keywords: normalising, matching and parsing the setting (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from wadispatch.optout import DEFAULT_KEYWORDS, normalise, parse_keywords
from wadispatch.settings import Settings

DEFAULTS = parse_keywords(DEFAULT_KEYWORDS)


@pytest.mark.parametrize(
    "typed",
    [
        "STOP",
        "stop",
        "Stop",
        " STOP ",
        "Stop.",
        "STOP!!",
        '"stop"',
        "stop 🛑",
        "s t o p",
        "\tStop\n",
        "\uff33\uff34\uff2f\uff30",  # full-width STOP
    ],
)
def test_case_spaces_punctuation_and_width_do_not_matter(typed: str) -> None:
    assert DEFAULTS.match(typed) == "STOP"


@pytest.mark.parametrize(
    "typed", ["please stop", "stop it", "STOPP", "unstop", "", "st-op", "stop sending me these"]
)
def test_only_the_whole_text_matches(typed: str) -> None:
    assert DEFAULTS.match(typed) is None


def test_every_default_word_matches_and_spaces_inside_are_ignored() -> None:
    for word in ("STOP", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT"):
        assert DEFAULTS.match(word.lower()) == word
    assert DEFAULTS.match("Stop all") == "STOPALL"


def test_words_in_any_language_match_without_their_accents() -> None:
    keywords = parse_keywords("ARRÊT, BAJA, Abmelden, СТОП, إلغاء, 取消")
    assert keywords.match("arrêt") == keywords.match("Arret") == keywords.match("ARRET.") == "ARRÊT"
    assert keywords.match("baja") == "BAJA"
    assert keywords.match("abmelden!") == "Abmelden"
    assert keywords.match("стоп") == "СТОП"
    assert keywords.match(" إلغاء ") == "إلغاء"
    assert keywords.match("取消") == "取消"
    assert keywords.match("STOP") is None  # only the configured words
    assert normalise("Straße") == normalise("STRASSE") == "strasse"


def test_the_first_text_that_matches_wins_and_none_is_skipped() -> None:
    assert DEFAULTS.match(None, "hello", "quit") == "QUIT"
    assert DEFAULTS.match(None) is None


def test_a_word_given_twice_counts_once() -> None:
    assert list(parse_keywords("STOP, stop ,Stop.").words) == ["stop"]


@pytest.mark.parametrize("value", ["", "   ", "none", "NONE"])
def test_an_empty_setting_or_none_turns_matching_off(value: str) -> None:
    keywords = parse_keywords(value)
    assert not keywords.enabled and keywords.match("STOP") is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("STOP,,END", "item 2 is empty"),
        ("STOP,", "item 2 is empty"),
        ("STOP, ...", "item 2 ('...') has no letter or digit"),
        ("x" * 65, "item 1 is 65 characters long"),
    ],
)
def test_bad_words_are_refused_naming_the_item(value: str, said: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_keywords(value)
    assert said in str(raised.value)


def test_the_settings_validate_the_words_and_the_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WADISPATCH_OPT_OUT_KEYWORDS", "STOP,,END")
    with pytest.raises(ValidationError, match="opt_out_keywords") as raised:
        Settings(_env_file=None)
    assert "item 2 is empty" in str(raised.value)
    monkeypatch.setenv("WADISPATCH_OPT_OUT_KEYWORDS", "Baja, ARRÊT")
    monkeypatch.setenv("WADISPATCH_OPT_OUT_SCOPE", "everyone")
    with pytest.raises(ValidationError, match="opt_out_scope"):
        Settings(_env_file=None)
    monkeypatch.setenv("WADISPATCH_OPT_OUT_SCOPE", "all")
    settings = Settings(_env_file=None)
    assert (settings.opt_out_scope, settings.opt_out_words.match("arret")) == ("all", "ARRÊT")


def test_by_default_the_short_english_list_is_on_for_the_sender_written_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WADISPATCH_OPT_OUT_KEYWORDS", raising=False)
    monkeypatch.delenv("WADISPATCH_OPT_OUT_SCOPE", raising=False)
    settings = Settings(_env_file=None)
    assert settings.opt_out_scope == "sender"
    assert settings.opt_out_words.match("unsubscribe") == "UNSUBSCRIBE"


def test_each_providers_parser_gives_the_typed_text_of_an_inbound_message() -> None:
    from wadispatch.webhooks import bird, briq, meta, wacr

    meta_body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": "1107"},
                            "messages": [
                                {
                                    "from": "15551234567",
                                    "id": "wamid.1",
                                    "type": "text",
                                    "text": {"body": "STOP"},
                                }
                            ],
                        },
                    }
                ]
            }
        ],
    }
    bird_body = {
        "id": "m1",
        "channelId": "c1",
        "direction": "received",
        "type": "text",
        "from": "+15551234567",
        "content": {"text": "Stop."},
    }
    briq_body = {
        "event_id": "e1",
        "event": "whatsapp.inbound",
        "data": {
            "message_id": "m1",
            "sender": "1107",
            "from": "15551234567",
            "type": "text",
            "text": {"body": "stop"},
        },
    }
    wacr_body = {
        "event": "message.received",
        "message_id": "m1",
        "phone": "+15551234567",
        "type": "text",
        "text": "STOP",
    }
    texts = [
        event.text
        for parse, body in (
            (meta.parse, meta_body),
            (bird.parse, bird_body),
            (briq.parse, briq_body),
            (wacr.parse, wacr_body),
        )
        for event in parse(body)
    ]
    assert [DEFAULTS.match(text) for text in texts] == ["STOP"] * 4
