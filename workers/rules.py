"""WhatsApp's limits on interactive messages, and each provider's capabilities, as pure checks.

Each check returns a list of :class:`FieldError`; an empty list means the request is sendable.
Lengths are counted in characters (code points), as WhatsApp documents them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wadispatch.capabilities import CAPABILITIES
from wadispatch.errors import FieldError
from wadispatch.recipients import is_bsuid

if TYPE_CHECKING:
    from wadispatch.messages import Action, Header, Interactive, Media, SendRequest
    from wadispatch.settings import ProviderName

MAX_BUTTONS = 3
BUTTON_ID_MAX = 256
BUTTON_TITLE_MAX = 20
BODY_MAX = 1024
FOOTER_MAX = 60
HEADER_TEXT_MAX = 60
LIST_BUTTON_MAX = 20
MAX_SECTIONS = 10
MAX_ROWS = 10
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
SECTION_TITLE_MAX = 24
BUTTON_HEADER_TYPES = ("text", "image", "video", "document")
LIST_HEADER_TYPES = ("text",)

_ACTION = "interactive.action"


def request_rule_errors(request: SendRequest) -> list[FieldError]:
    """Every WhatsApp and provider rule the request breaks."""
    from wadispatch.messages import METADATA_MAX_BYTES, metadata_size

    errors = interactive_errors(request.interactive)
    errors += provider_errors(request)
    if metadata_size(request.metadata) > METADATA_MAX_BYTES:
        errors.append(FieldError("metadata", f"at most {METADATA_MAX_BYTES} bytes as JSON"))
    if request.fallback is not None:
        from wadispatch.templates import template_errors

        errors += template_errors(request.fallback, provider=request.provider, reply_ids=request.reply_ids)
    return errors


def interactive_errors(interactive: Interactive) -> list[FieldError]:
    """WhatsApp's own limits on a reply-button or list message."""
    errors = _text_errors("interactive.body.text", interactive.body.text, BODY_MAX)
    if interactive.footer is not None:
        errors += _text_errors("interactive.footer.text", interactive.footer.text, FOOTER_MAX)
    if interactive.header is not None:
        errors += _header_errors(interactive.type, interactive.header)
    if interactive.type == "button":
        errors += _button_action_errors(interactive.action)
    else:
        errors += _list_action_errors(interactive.action)
    return errors


def provider_errors(request: SendRequest) -> list[FieldError]:
    """What the chosen provider cannot carry, or needs that the request lacks."""
    capabilities = CAPABILITIES[request.provider]
    name = request.provider
    errors: list[FieldError] = []

    uses_conversation = request.conversation_id is not None and capabilities.conversation_id
    if request.conversation_id is not None and not capabilities.conversation_id:
        errors.append(FieldError("conversation_id", f"not supported by {name}; use to"))
    if uses_conversation and request.to is not None:
        errors.append(FieldError("conversation_id", "give either conversation_id or to"))
    if not uses_conversation and request.to is None:
        errors.append(FieldError("to", "required"))
    refused = recipient_rule(name, request.to)
    if refused is not None:
        errors.append(FieldError("to", refused))

    if request.sender is None:
        if capabilities.sender_required and not uses_conversation:
            errors.append(FieldError("sender", f"required for {name}"))
    elif len(request.sender) > capabilities.sender_max_length:
        limit = capabilities.sender_max_length
        errors.append(FieldError("sender", f"at most {limit} characters for {name}"))

    interactive = request.interactive
    header = interactive.header
    whatsapp_header_types = BUTTON_HEADER_TYPES if interactive.type == "button" else LIST_HEADER_TYPES
    if header is not None and header.type in whatsapp_header_types:
        allowed = capabilities.button_headers if interactive.type == "button" else capabilities.list_headers
        if header.type not in allowed:
            kinds = ", ".join(sorted(allowed))
            errors.append(
                FieldError(
                    "interactive.header.type",
                    f"{name} carries only {kinds} headers on {interactive.type} messages",
                )
            )
    if capabilities.section_title_always_required and interactive.action.sections:
        for index, section in enumerate(interactive.action.sections):
            if not section.title:
                errors.append(FieldError(f"{_ACTION}.sections[{index}].title", f"required by {name}"))
    return errors


def recipient_rule(provider: ProviderName, to: str | None) -> str | None:
    """Why this provider cannot take ``to`` (a BSUID where its docs show only phone numbers), or ``None``."""
    if is_bsuid(to) and not CAPABILITIES[provider].bsuid_recipients:
        return f"{provider} does not document BSUID recipients (business-scoped user ids); use a phone number"
    return None


def id_rule(text: str) -> str | None:
    """Why a button or row id with this text is refused beyond its length, or ``None``.

    WhatsApp forbids leading and trailing spaces in these ids and returns the id trimmed in the
    reply, which would then name an id that was never sent. Any whitespace counts.
    """
    if text != text.strip():
        return "must not start or end with whitespace (WhatsApp returns ids trimmed in replies)"
    return None


def _text_errors(path: str, text: str, limit: int) -> list[FieldError]:
    if not text.strip():
        return [FieldError(path, "must not be empty")]
    if len(text) > limit:
        return [FieldError(path, f"at most {limit} characters (has {len(text)})")]
    return []


def _header_errors(kind: str, header: Header) -> list[FieldError]:
    allowed = BUTTON_HEADER_TYPES if kind == "button" else LIST_HEADER_TYPES
    if header.type not in allowed:
        rule = "a list message header must be text"
        return [FieldError("interactive.header.type", rule)]

    errors: list[FieldError] = []
    media_fields = {"image": header.image, "video": header.video, "document": header.document}
    for field, value in media_fields.items():
        if value is not None and field != header.type:
            errors.append(
                FieldError(f"interactive.header.{field}", f"not allowed with a {header.type} header")
            )
    if header.type == "text":
        if header.text is None:
            errors.append(FieldError("interactive.header.text", "required for a text header"))
        else:
            errors += _text_errors("interactive.header.text", header.text, HEADER_TEXT_MAX)
        return errors

    if header.text is not None:
        errors.append(FieldError("interactive.header.text", f"not allowed with a {header.type} header"))
    media = media_fields[header.type]
    path = f"interactive.header.{header.type}"
    if media is None:
        errors.append(FieldError(path, f"required for {_article(header.type)} {header.type} header"))
    else:
        errors += _media_errors(path, header.type, media)
    return errors


def _media_errors(path: str, kind: str, media: Media) -> list[FieldError]:
    if (media.link is None) == (media.id is None):
        return [FieldError(path, "give exactly one of link or id")]
    errors: list[FieldError] = []
    for field in ("id", "filename"):
        value = getattr(media, field)
        if value is not None and not value.strip():
            errors.append(FieldError(f"{path}.{field}", "must not be empty"))
    if media.link is not None:
        parts = urlsplit(media.link)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(FieldError(f"{path}.link", "must be an http(s) URL"))
    if media.filename is not None and kind != "document":
        errors.append(FieldError(f"{path}.filename", "only a document header has a filename"))
    return errors


def _button_action_errors(action: Action) -> list[FieldError]:
    errors: list[FieldError] = []
    if action.button is not None:
        errors.append(FieldError(f"{_ACTION}.button", "only for list messages"))
    if action.sections is not None:
        errors.append(FieldError(f"{_ACTION}.sections", "only for list messages"))
    if action.buttons is None:
        return [*errors, FieldError(f"{_ACTION}.buttons", "required for a button message")]
    if not action.buttons:
        return [*errors, FieldError(f"{_ACTION}.buttons", "at least 1 button")]
    if len(action.buttons) > MAX_BUTTONS:
        errors.append(FieldError(f"{_ACTION}.buttons[{MAX_BUTTONS}]", f"at most {MAX_BUTTONS} buttons"))

    ids = [(f"{_ACTION}.buttons[{i}].reply.id", b.reply.id) for i, b in enumerate(action.buttons)]
    titles = [(f"{_ACTION}.buttons[{i}].reply.title", b.reply.title) for i, b in enumerate(action.buttons)]
    errors += _each_id(ids, BUTTON_ID_MAX)
    errors += _each_text(titles, BUTTON_TITLE_MAX)
    errors += _duplicates(ids, "button ids must be unique")
    errors += _duplicates(titles, "button titles must be unique")
    return errors


def _list_action_errors(action: Action) -> list[FieldError]:
    errors: list[FieldError] = []
    if action.buttons is not None:
        errors.append(FieldError(f"{_ACTION}.buttons", "only for button messages"))
    if action.button is None:
        errors.append(FieldError(f"{_ACTION}.button", "required for a list message (the menu label)"))
    else:
        errors += _text_errors(f"{_ACTION}.button", action.button, LIST_BUTTON_MAX)
    if action.sections is None:
        return [*errors, FieldError(f"{_ACTION}.sections", "required for a list message")]
    if not action.sections:
        return [*errors, FieldError(f"{_ACTION}.sections", "at least 1 section")]
    if len(action.sections) > MAX_SECTIONS:
        errors.append(FieldError(f"{_ACTION}.sections[{MAX_SECTIONS}]", f"at most {MAX_SECTIONS} sections"))

    several = len(action.sections) > 1
    row_ids: list[tuple[str, str]] = []
    row_count = 0
    for s, section in enumerate(action.sections):
        at = f"{_ACTION}.sections[{s}]"
        if section.title is not None:
            errors += _text_errors(f"{at}.title", section.title, SECTION_TITLE_MAX)
        elif several:
            errors.append(FieldError(f"{at}.title", "required when there is more than one section"))
        if not section.rows:
            errors.append(FieldError(f"{at}.rows", "at least 1 row"))
        for r, row in enumerate(section.rows):
            row_count += 1
            if row_count == MAX_ROWS + 1:
                errors.append(
                    FieldError(f"{at}.rows[{r}]", f"at most {MAX_ROWS} rows in total across sections")
                )
            row_ids.append((f"{at}.rows[{r}].id", row.id))
            errors += _text_errors(f"{at}.rows[{r}].title", row.title, ROW_TITLE_MAX)
            if row.description is not None:
                errors += _text_errors(f"{at}.rows[{r}].description", row.description, ROW_DESCRIPTION_MAX)
    errors += _each_id(row_ids, ROW_ID_MAX)
    errors += _duplicates(row_ids, "row ids must be unique across sections")
    return errors


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _each_text(items: Iterable[tuple[str, str]], limit: int) -> list[FieldError]:
    errors: list[FieldError] = []
    for path, text in items:
        errors += _text_errors(path, text, limit)
    return errors


def _each_id(items: Iterable[tuple[str, str]], limit: int) -> list[FieldError]:
    errors: list[FieldError] = []
    for path, text in items:
        found = _text_errors(path, text, limit)
        rule = id_rule(text) if text.strip() else None
        if rule is not None:
            found.append(FieldError(path, rule))
        errors += found
    return errors


def _duplicates(items: Iterable[tuple[str, str]], rule: str) -> list[FieldError]:
    seen: dict[str, str] = {}
    errors: list[FieldError] = []
    for path, value in items:
        if value in seen:
            errors.append(FieldError(path, f"{rule} (same as {seen[value]})"))
        else:
            seen[value] = path
    return errors
