"""The fallback template: an approved WhatsApp template sent when the 24-hour window is closed. Pure.

A message (or a campaign) may name one. When the recipient's window is known closed, or the
provider refuses the interactive message for a closed window, the template goes instead, once.
Its quick-reply buttons carry the interactive object's reply ids as payloads, so that a tap is
recorded as the reply to that message.

    {"name": "order_ready", "language": "en_US",
     "body_parameters": ["Asha", "#1234"], "quick_replies": ["yes", "no"]}

The rules checked are those WhatsApp documents for a template send: the name's pattern and
length, the language code, the body parameters' texts (no newline or tab, at most four spaces in
a row, at most 1024 characters when the template has buttons, 32768 without), at most
:data:`MAX_BUTTONS` buttons, and each quick-reply payload's length. Whether the approved template
has that many parameters and buttons only the provider knows: it refuses a mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from wadispatch.capabilities import CAPABILITIES
from wadispatch.errors import FieldError
from wadispatch.settings import ProviderName

NAME_MAX = 512
NAME_PATTERN = re.compile(r"[a-z0-9_]+")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
MAX_BUTTONS = 10
PAYLOAD_MAX = 256
PARAMETER_MAX_WITH_BUTTONS = 1024
PARAMETER_MAX_ALONE = 32768
MAX_PARAMETERS = 100
_SPACES = re.compile(r" {5,}")

#: What the sent template records on the message (``messages.sent_as``).
SENT_AS_TEMPLATE = "template"


class FallbackTemplate(BaseModel):
    """An approved template to send instead of the interactive message when the window is closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The approved template's name: lowercase letters, digits and _.")
    language: str = Field(description="Its language code as approved, e.g. `en` or `en_US`.")
    body_parameters: list[str] = Field(
        default_factory=list,
        description="The texts of the body's variables, in order ({{1}}, {{2}}, ...).",
    )
    quick_replies: list[str] = Field(
        default_factory=list,
        description="One payload per quick-reply button, in the template's order; each must be a "
        "reply id of the interactive message, so that a tap is recorded as its reply.",
    )


def template_errors(
    template: FallbackTemplate,
    *,
    provider: ProviderName,
    reply_ids: Iterable[str],
    path: str = "fallback",
) -> list[FieldError]:
    """Every rule the template breaks beyond its structure (:class:`FallbackTemplate` checks types
    only): the name, the language, the counts, the texts, the payloads (each one of
    ``reply_ids``, the interactive object's), and whether ``provider`` can send templates."""
    errors: list[FieldError] = []
    if len(template.name) > NAME_MAX:
        errors.append(FieldError(f"{path}.name", f"at most {NAME_MAX} characters"))
    elif not NAME_PATTERN.fullmatch(template.name):
        errors.append(FieldError(f"{path}.name", "only lowercase letters, digits and _ (order_ready)"))
    if not LANGUAGE_PATTERN.fullmatch(template.language):
        errors.append(
            FieldError(f"{path}.language", "must be a WhatsApp language code such as en, en_US or pt_BR")
        )
    if len(template.body_parameters) > MAX_PARAMETERS:
        errors.append(FieldError(f"{path}.body_parameters", f"at most {MAX_PARAMETERS} parameters"))
    if len(template.quick_replies) > MAX_BUTTONS:
        errors.append(FieldError(f"{path}.quick_replies", f"at most {MAX_BUTTONS} buttons"))
    if not CAPABILITIES[provider].fallback_templates:
        errors.append(
            FieldError(
                path,
                f"{provider} documents no template send; a fallback template is supported for meta only",
            )
        )
    limit = PARAMETER_MAX_WITH_BUTTONS if template.quick_replies else PARAMETER_MAX_ALONE
    for index, text in enumerate(template.body_parameters):
        rule = parameter_rule(text, limit)
        if rule is not None:
            errors.append(FieldError(f"{path}.body_parameters[{index}]", rule))
    known = set(reply_ids)
    seen: set[str] = set()
    for index, payload in enumerate(template.quick_replies):
        where = f"{path}.quick_replies[{index}]"
        if not payload.strip():
            errors.append(FieldError(where, "must not be empty"))
        elif len(payload) > PAYLOAD_MAX:
            errors.append(FieldError(where, f"at most {PAYLOAD_MAX} characters"))
        elif payload not in known:
            errors.append(FieldError(where, "must be one of the interactive message's reply ids"))
        elif payload in seen:
            errors.append(FieldError(where, "payloads must be unique"))
        seen.add(payload)
    return errors


def parameter_rule(text: str, limit: int) -> str | None:
    """What a body parameter's text breaks, or ``None``."""
    if not text.strip():
        return "must not be empty"
    if len(text) > limit:
        return f"at most {limit} characters"
    if "\n" in text or "\t" in text:
        return "must not contain a newline or a tab"
    if _SPACES.search(text):
        return "must not contain more than 4 spaces in a row"
    return None


def load_fallback(data: Any) -> FallbackTemplate:
    """A stored fallback (``messages.fallback``) as the model; raises pydantic's ``ValidationError``."""
    return FallbackTemplate.model_validate(data)


def fallback_field_errors(exc: ValidationError, path: str = "fallback") -> list[FieldError]:
    """pydantic's errors for a fallback as field errors under ``path``, worded as a send
    request's are (``fallback.name: must be a string``)."""
    from wadispatch.messages import field_errors

    return [
        FieldError(path if error.path == "(request)" else f"{path}.{error.path}", error.rule)
        for error in field_errors(exc)
    ]
