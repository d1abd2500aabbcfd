"""What each provider can carry, as plain data (no I/O, no adapter code).

The validator checks a send request against these after WhatsApp's own limits, so a message the
chosen provider cannot express is refused before anything is recorded or queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from wadispatch.settings import ProviderName

ALL_HEADERS = frozenset({"text", "image", "video", "document"})


@dataclass(frozen=True)
class Capabilities:
    """The parts of a WhatsApp interactive message a provider's API documents."""

    button_headers: frozenset[str]
    list_headers: frozenset[str]
    sender_required: bool
    conversation_id: bool
    section_title_always_required: bool = False
    sender_max_length: int = 256
    bsuid_recipients: bool = False
    """Whether ``to`` may be a business-scoped user id: only where the provider's docs show one."""
    fallback_templates: bool = False
    """Whether a template can be sent as the fallback for a closed window: only where the
    provider documents a template send (see ``docs/providers.md``)."""


CAPABILITIES: dict[ProviderName, Capabilities] = {
    # Passes the WhatsApp object through as-is; `sender` optional with one active number.
    "briq": Capabilities(
        button_headers=ALL_HEADERS,
        list_headers=frozenset({"text"}),
        sender_required=False,
        conversation_id=True,
        sender_max_length=64,
    ),
    # Its interactive page documents text and image headers only.
    "bird": Capabilities(
        button_headers=frozenset({"text", "image"}),
        list_headers=frozenset({"text"}),
        sender_required=True,
        conversation_id=False,
    ),
    # Passes `interactive{type, header, body, footer, action}` through.
    "zixflow": Capabilities(
        button_headers=ALL_HEADERS,
        list_headers=frozenset({"text"}),
        sender_required=True,
        conversation_id=False,
    ),
    # Flat body: `header_text` only, and `sections[].title` is required.
    "wacr": Capabilities(
        button_headers=frozenset({"text"}),
        list_headers=frozenset({"text"}),
        sender_required=False,
        conversation_id=False,
        section_title_always_required=True,
    ),
    # Sends to a BSUID as `recipient` instead of `to` (Meta's business-scoped user ids).
    "meta": Capabilities(
        button_headers=ALL_HEADERS,
        list_headers=frozenset({"text"}),
        sender_required=True,
        conversation_id=False,
        bsuid_recipients=True,
        fallback_templates=True,
    ),
}
