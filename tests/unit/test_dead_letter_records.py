"""Building dead letters: bodies kept readable or base64, cut to a bound, headers and secrets scrubbed."""

from __future__ import annotations

import base64

from wadispatch.deadletters import build_dead_letter, encode_body, safe_headers
from wadispatch.redaction import scrub_secrets

from tests.support import make_settings


def test_a_utf8_body_is_kept_as_text() -> None:
    assert encode_body(b'[["id-1"], {}, {}]', 100) == ('[["id-1"], {}, {}]', "utf-8", False)


def test_a_binary_body_is_kept_as_base64() -> None:
    text, encoding, truncated = encode_body(b"\xff\xfe\x00garbage", 100)
    assert (encoding, truncated) == ("base64", False)
    assert base64.b64decode(text) == b"\xff\xfe\x00garbage"


def test_a_long_body_is_cut_to_the_bound_and_says_so() -> None:
    text, encoding, truncated = encode_body("x" * 1000, 256)
    assert (len(text), encoding, truncated) == (256, "utf-8", True)


def test_no_body() -> None:
    assert encode_body(None, 256) == ("", "utf-8", False)


def test_only_safe_scalar_headers_are_kept() -> None:
    headers = {
        "task": "wadispatch.send_batch",
        "id": "t-1",
        "retries": 2,
        "argsrepr": "['+255712345678']",
        "authorization": "Bearer secret",
        "eta": {"nested": "no"},
    }
    assert safe_headers(headers, content_type="application/json", content_encoding=None) == {
        "task": "wadispatch.send_batch",
        "id": "t-1",
        "retries": 2,
        "content_type": "application/json",
    }


def test_configured_credentials_are_scrubbed_from_the_body_and_the_error() -> None:
    settings = make_settings()
    letter = build_dead_letter(
        "invalid_job",
        settings=settings,
        body=b'{"token": "meta-secret-token"}',
        error=ValueError("bad job for briq-secret-key"),
        task="wadispatch.send_batch",
    )
    assert letter.body == '{"token": "[redacted]"}'
    assert letter.error == "ValueError: bad job for [redacted]"
    assert not letter.replayable  # no decoded arguments


def test_arguments_become_the_body_and_make_it_replayable() -> None:
    letter = build_dead_letter(
        "unknown_message", settings=make_settings(), args=[["id-1"]], task="wadispatch.send_batch"
    )
    assert (letter.body, letter.replayable) == ('[["id-1"]]', True)


def test_scrub_secrets() -> None:
    assert scrub_secrets("key abc and abc", ["abc", ""]) == "key [redacted] and [redacted]"
    assert scrub_secrets(None, ["abc"]) is None
    assert scrub_secrets("nothing here", []) == "nothing here"
