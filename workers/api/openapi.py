"""The OpenAPI document, made to tell the truth about what the API accepts and answers.

* ``InteractiveMessageRequest``: the message body with WhatsApp's limits (lengths, counts,
  patterns) and the request's shape (one variant per provider and per ``interactive.type``,
  what each provider carries), built from the constants the validator checks, so that a body
  valid under the schema is accepted. The validator stays the judge and says ``{path, rule}`` for
  every problem; the few rules JSON Schema cannot state (ids and titles unique, at most 10 rows
  across all sections, metadata at most 8 KB as JSON) are in the descriptions.
* every error answer is an ``ErrorBody`` (FastAPI's own 422 shape is replaced, as the API
  answers its validation errors in the one error shape), and each operation lists the error
  statuses it can answer.
"""

from __future__ import annotations

from typing import Any

from wadispatch import jsonread, rules
from wadispatch.capabilities import CAPABILITIES, Capabilities
from wadispatch.messages import IDEMPOTENCY_KEY_MAX, METADATA_MAX_BYTES
from wadispatch.recipients import BSUID_PATTERN

#: The very end of the text: ``$`` would also match before a final newline in Python's regexes
#: (which generate and check the bodies in tests), unlike ECMA's.
END = r"(?![\s\S])"
#: A phone number as the schema states it (the API also removes spaces, dashes, dots, brackets).
PHONE = r"\+?[1-9][0-9]{6,17}"
PHONE_PATTERN = f"^{PHONE}{END}"
PHONE_OR_BSUID_PATTERN = f"^(?:{PHONE}|{BSUID_PATTERN.pattern}){END}"
#: A character Python's ``str.strip`` keeps (which the API judges by): ECMA's ``\S`` less the
#: separators and NEL that Python counts as whitespace.
VISIBLE = r"[^\s\x00\x1c-\x1f\x85]"
#: Any character but NUL (U+0000), which no provider takes and PostgreSQL cannot store.
ANY = r"[^\x00]"
#: Not empty and not only whitespace (WhatsApp's texts), and no NUL.
TEXT_PATTERN = f"^{ANY}*{VISIBLE}{ANY}*{END}"
#: No leading or trailing whitespace (ids: WhatsApp returns them trimmed in replies), and no NUL.
TRIMMED_PATTERN = f"^{VISIBLE}(?:{ANY}*{VISIBLE})?{END}"
#: No NUL.
NO_NUL_PATTERN = f"^{ANY}*{END}"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}" + END
LINK_PATTERN = r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!-~]*)?" + END

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_CONTENT = {"application/json": {"schema": ERROR_REF}}

_ERROR_DESCRIPTIONS = {
    400: "The body is not a JSON object (or the form cannot be read).",
    401: "No valid API key (or webhook signature).",
    404: "No such resource.",
    413: "The body is larger than the API reads.",
    415: "The body's content type is not the one this operation reads.",
    422: "Invalid request: every problem as {path, rule}.",
}


def text(limit: int, description: str | None = None) -> dict[str, Any]:
    """A WhatsApp text: 1 to ``limit`` characters, not only whitespace."""
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": limit, "pattern": TEXT_PATTERN}
    return schema | ({"description": description} if description else {})


def identifier(limit: int, description: str) -> dict[str, Any]:
    """A button or row id: 1 to ``limit`` characters, no surrounding whitespace."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": limit,
        "pattern": TRIMMED_PATTERN,
        "description": description,
    }


def _obj(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    } | extra


def _media(kind: str) -> dict[str, Any]:
    """A header medium: exactly one of a public http(s) ``link`` or an uploaded ``id``."""
    common: dict[str, Any] = {}
    if kind == "document":
        common["filename"] = text(255, "The file name shown (document headers only).")
    link = {
        "type": "string",
        "maxLength": 2048,
        "pattern": LINK_PATTERN,
        "description": "A public http(s) URL.",
    }
    uploaded = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": TEXT_PATTERN}
    return {
        "oneOf": [
            _obj({"link": link, **common}, ["link"]),
            _obj({"id": uploaded | {"description": "An uploaded media id."}, **common}, ["id"]),
        ]
    }


def _header(kinds: list[str]) -> dict[str, Any]:
    variants = []
    for kind in kinds:
        if kind == "text":
            variants.append(
                _obj({"type": {"const": "text"}, "text": text(rules.HEADER_TEXT_MAX)}, ["type", "text"])
            )
        else:
            variants.append(_obj({"type": {"const": kind}, kind: _media(kind)}, ["type", kind]))
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


def _button_interactive(capabilities: Capabilities) -> dict[str, Any]:
    button = _obj(
        {
            "type": {"const": "reply"},
            "reply": _obj(
                {
                    "id": identifier(rules.BUTTON_ID_MAX, "Returned in the reply; unique in the message."),
                    "title": text(rules.BUTTON_TITLE_MAX, "Unique in the message."),
                },
                ["id", "title"],
            ),
        },
        ["reply"],
    )
    buttons = {
        "type": "array",
        "minItems": 1,
        "maxItems": rules.MAX_BUTTONS,
        "uniqueItems": True,
        "items": button,
        "description": f"1 to {rules.MAX_BUTTONS} reply buttons; ids and titles unique.",
    }
    kinds = [kind for kind in rules.BUTTON_HEADER_TYPES if kind in capabilities.button_headers]
    return _interactive("button", kinds, _obj({"buttons": buttons}, ["buttons"]))


def _list_interactive(capabilities: Capabilities) -> dict[str, Any]:
    row = _obj(
        {
            "id": identifier(rules.ROW_ID_MAX, "Returned in the reply; unique across sections."),
            "title": text(rules.ROW_TITLE_MAX),
            "description": text(rules.ROW_DESCRIPTION_MAX),
        },
        ["id", "title"],
    )
    rows = {"type": "array", "minItems": 1, "maxItems": rules.MAX_ROWS, "uniqueItems": True, "items": row}
    title = text(rules.SECTION_TITLE_MAX, "Required when there is more than one section.")
    section_required = ["title", "rows"] if capabilities.section_title_always_required else ["rows"]
    section = _obj({"title": title, "rows": rows}, section_required)
    sections: dict[str, Any] = {
        "type": "array",
        "minItems": 1,
        "maxItems": rules.MAX_SECTIONS,
        "uniqueItems": True,
        "items": section,
        "description": f"1 to {rules.MAX_SECTIONS} sections, at most {rules.MAX_ROWS} rows in all; "
        "row ids unique across sections; every section titled when there are several.",
    }
    if not capabilities.section_title_always_required:
        sections["anyOf"] = [{"maxItems": 1}, {"items": {"required": ["title"]}}]
    action = _obj(
        {"button": text(rules.LIST_BUTTON_MAX, "The menu's label."), "sections": sections},
        ["button", "sections"],
    )
    kinds = [kind for kind in rules.LIST_HEADER_TYPES if kind in capabilities.list_headers]
    return _interactive("list", kinds, action)


def _interactive(kind: str, header_kinds: list[str], action: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "type": {"const": kind},
        "body": _obj({"text": text(rules.BODY_MAX)}, ["text"]),
        "footer": _obj({"text": text(rules.FOOTER_MAX)}, ["text"]),
        "action": action,
    }
    if header_kinds:
        properties["header"] = _header(header_kinds)
    return _obj(properties, ["type", "body", "action"])


def provider_request(provider: str, *, by_conversation: bool = False) -> dict[str, Any]:
    """The body for one provider: to (or Briq's conversation_id), sender, interactive."""
    capabilities = CAPABILITIES[provider]  # type: ignore[index]
    recipient = (
        {"type": "string", "pattern": PHONE_OR_BSUID_PATTERN}
        if capabilities.bsuid_recipients
        else {"type": "string", "pattern": PHONE_PATTERN}
    )
    recipient["description"] = "An E.164 phone number" + (
        " or a business-scoped user id (BSUID)." if capabilities.bsuid_recipients else "."
    )
    properties: dict[str, Any] = {
        "provider": {"const": provider},
        "sender": {
            "type": "string",
            "minLength": 1,
            "maxLength": capabilities.sender_max_length,
            "pattern": TRIMMED_PATTERN,
            "description": "The sending number or channel, as the provider names it.",
        },
        "interactive": {
            "oneOf": [_button_interactive(capabilities), _list_interactive(capabilities)],
        },
        "idempotency_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": IDEMPOTENCY_KEY_MAX,
            "pattern": NO_NUL_PATTERN,
            "description": "As the Idempotency-Key header (give one or the other, or both the same).",
        },
        "metadata": {
            "type": "object",
            "description": f"Free JSON kept with the message, at most {METADATA_MAX_BYTES} bytes as JSON; "
            f"like the whole body, at most {jsonread.MAX_DEPTH} levels deep, integers of at most "
            f"{jsonread.MAX_INT_DIGITS} digits, finite numbers (beyond these the body is a 400); no "
            "text in it may contain the NUL character (U+0000).",
        },
    }
    required = ["provider", "interactive"]
    if by_conversation:
        properties["conversation_id"] = {"type": "string", "pattern": UUID_PATTERN, "format": "uuid"}
        required.append("conversation_id")
    else:
        properties["to"] = recipient
        required.append("to")
        if capabilities.sender_required:
            required.append("sender")
    return _obj(
        properties, required, title=f"{provider} message" + (" (conversation)" if by_conversation else "")
    )


def request_schema() -> dict[str, Any]:
    """``InteractiveMessageRequest``: one variant per provider (and Briq's by conversation)."""
    variants = [provider_request(provider) for provider in CAPABILITIES]
    variants += [
        provider_request(provider, by_conversation=True)
        for provider, capabilities in CAPABILITIES.items()
        if capabilities.conversation_id
    ]
    return {
        "title": "InteractiveMessageRequest",
        "description": "WhatsApp's interactive object (reply buttons or a list) and where to send it. "
        "Rules the schema cannot state, checked by the API (422 with every {path, rule}): button ids "
        "and titles unique, row ids unique across sections, at most 10 rows in all, metadata at most "
        f"{METADATA_MAX_BYTES} bytes as JSON. `to` may also be written with spaces, dashes, dots or "
        "brackets; they are removed.",
        "oneOf": variants,
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error answer as ``ErrorBody``, and the error statuses each operation can answer."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "Idempotency-Key":  # a header is a string; empty is refused
                    description = parameter["schema"].get("description")
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX}
                    parameter["schema"] |= {"description": description} if description else {}
            statuses = set(_possible_errors(path, method, operation))
            responses = operation["responses"]
            for status in statuses:
                responses.setdefault(str(status), {"description": _ERROR_DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.startswith("4"):
                    response["content"] = ERROR_CONTENT
    return schema


def _possible_errors(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    errors: list[int] = []
    if path.startswith("/v1/"):
        errors.append(401)
    if "{" in path:
        errors.append(404)
    if operation.get("parameters"):
        errors.append(422)
    if "requestBody" in operation:
        errors += [400, 413, 422]
        if "multipart/form-data" in operation["requestBody"].get("content", {}):
            errors.append(415)
    return errors
