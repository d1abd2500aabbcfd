"""Property-based tests: whatever a user sends, validation answers with field errors, never a crash.

Hypothesis draws interactive objects (well-formed ones pushed past WhatsApp's limits, and arbitrary
JSON), phone numbers and whole requests; the only exception allowed out of validation is
:class:`MessageValidationError`, and each of its errors names a field and a rule.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wadispatch.errors import MessageValidationError
from wadispatch.messages import SendRequest, validate_send_request
from wadispatch.providers import adapter_for
from wadispatch.settings import PROVIDER_NAMES

from tests.support import button_request, make_settings

COMMON = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Text around WhatsApp's limits (20, 24, 60, 72, 256, 1024 characters), including odd Unicode.
texts = st.one_of(
    st.text(max_size=30),
    st.text(min_size=55, max_size=80),
    st.sampled_from(["", " ", "\x00", "🙂" * 21, "a" * 257, "b" * 1025, "\u202e" * 5]),
)
reply_buttons = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["reply", "url", ""]),
            "reply": st.fixed_dictionaries({"id": texts, "title": texts}),
        }
    ),
    max_size=5,
)
rows = st.lists(
    st.fixed_dictionaries({"id": texts, "title": texts}, optional={"description": texts | st.integers()}),
    max_size=12,
)
sections = st.lists(st.fixed_dictionaries({"rows": rows}, optional={"title": texts}), max_size=11)
headers = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["image", "video", "document", "sticker"]), "image": json_values}
    ),
    json_values,
)
interactive_objects = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("button"),
            "body": st.fixed_dictionaries({"text": texts}),
            "action": st.fixed_dictionaries({"buttons": reply_buttons}),
        },
        optional={"header": headers, "footer": st.fixed_dictionaries({"text": texts})},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("list"),
            "body": st.fixed_dictionaries({"text": texts}),
            "action": st.fixed_dictionaries({"button": texts, "sections": sections}),
        },
        optional={"header": headers, "footer": st.fixed_dictionaries({"text": texts})},
    ),
    json_values,
)
phone_numbers = st.one_of(
    st.from_regex(r"\A\+?[0-9]{0,24}\Z"),
    st.from_regex(r"\A[+0-9 ()\-.]{0,24}\Z"),
    st.text(max_size=30),
    st.integers(),
    st.none(),
)


def check(data: Any) -> SendRequest | None:
    """Validate; a refusal must be a MessageValidationError listing fields and rules."""
    try:
        return validate_send_request(data)
    except MessageValidationError as exc:
        assert exc.errors, "a refusal names at least one problem"
        for error in exc.errors:
            assert isinstance(error.path, str) and isinstance(error.rule, str) and error.rule
        return None


@COMMON
@given(provider=st.sampled_from(PROVIDER_NAMES), interactive=interactive_objects)
def test_interactive_objects_are_accepted_or_refused_with_field_errors(
    provider: str, interactive: Any
) -> None:
    request = check({**button_request(provider), "interactive": interactive})
    if request is not None:
        # What validation accepts, every adapter can turn into a request without raising.
        adapter_for(provider).build_request(request, make_settings(), "message-1")


@COMMON
@given(provider=st.sampled_from(PROVIDER_NAMES), to=phone_numbers)
def test_phone_numbers_are_accepted_or_refused_with_field_errors(provider: str, to: Any) -> None:
    request = check(button_request(provider, to=to))
    if request is not None:
        digits = request.to.lstrip("+")
        assert digits.isdigit() and 7 <= len(request.to) <= 20


@COMMON
@given(
    data=json_values
    | st.dictionaries(st.sampled_from(["provider", "sender", "to", "interactive"]), json_values)
)
def test_any_json_request_is_accepted_or_refused_with_field_errors(data: Any) -> None:
    check(data)
