"""Meta WhatsApp Cloud API: ``POST /{version}/{phone_number_id}/messages``, ``Bearer`` token.

Answers (docs/providers.md): 200 ``{"messaging_product": "whatsapp", "contacts": [{"input",
"wa_id"}], "messages": [{"id": "wamid..."}]}`` (``user_id`` instead of ``wa_id`` for a send to a
business-scoped user id, given as ``recipient`` instead of ``to``); refusals ``{"error":
{"message", "type", "code", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}`` with
Meta's codes (130429 and 131056 with HTTP 429). A template send (``type: "template"``) is
checked minimally (:mod:`.templates`) and reaches a recipient whose 24-hour window is closed.
Webhooks: Meta's own ``whatsapp_business_account`` notifications (``entry[].changes[].value.statuses[]`` and
``messages[]``), signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import Any

from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.providers.base import (
    UNDELIVERABLE,
    Answer,
    Choice,
    Dialect,
    InvalidRequest,
    RefusalKind,
    SendInfo,
    Sent,
    StatusKind,
    bearer,
    business_number,
    new_wamid,
    require_object,
    stable_digits,
)
from wadispatch.simulator.providers.interactive import check_interactive, check_phone
from wadispatch.simulator.providers.templates import check_template
from wadispatch.simulator.signing import hmac_sha256_hex

#: The title of Meta's 131047 (the 24-hour window was closed).
RE_ENGAGEMENT = "Re-engagement message"

# kind -> (HTTP status, error.code, error.type, message, error_data.details)
_REFUSALS: dict[RefusalKind, tuple[int, int, str, str, str]] = {
    "rate_limited": (
        429,
        130429,
        "OAuthException",
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    "transient": (
        503,
        2,
        "OAuthException",
        "(#2) Service temporarily unavailable",
        "Temporary error; retry later.",
    ),
    "auth": (
        401,
        190,
        "OAuthException",
        "Invalid OAuth access token - Cannot parse access token",
        "The access token is invalid.",
    ),
    "window_closed": (
        400,
        131047,
        "OAuthException",
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    "opted_out": (
        400,
        131050,
        "OAuthException",
        "(#131050) User has chosen to stop receiving marketing messages",
        "Unable to deliver the message: the user has opted out of messages from this business.",
    ),
    "invalid": (400, 100, "OAuthException", "(#100) Invalid parameter", "Invalid parameter."),
}
_PAIR_LIMIT = (
    429,
    131056,
    "OAuthException",
    "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    "Message failed to send because there were too many messages sent from this phone number "
    "to the same phone number in a short period of time.",
)


# Meta's business-scoped user id (or parent id), sent as `recipient` instead of `to`.
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


def _check_bsuid(value: Any) -> str:
    if not isinstance(value, str) or not _BSUID.fullmatch(value):
        raise InvalidRequest("recipient", "must be a business-scoped user id, e.g. US.13491208655302741918")
    return value


def _error(spec: tuple[int, int, str, str, str], details: str | None = None) -> Answer:
    status, code, kind, message, default_details = spec
    error = {
        "message": message,
        "type": kind,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or default_details},
        "fbtrace_id": base64.b64encode(os.urandom(16)).decode("ascii").rstrip("="),
    }
    return Answer(status, {"error": error})


class Meta(Dialect):
    """Meta's Cloud API; the sender is the phone-number id in the path."""

    name = "meta"

    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        return params.get("phone_number_id", "?")

    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        return bearer(headers)

    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        data = require_object(body)
        if data.get("messaging_product") != "whatsapp":
            raise InvalidRequest("messaging_product", "must be whatsapp")
        if data.get("recipient_type", "individual") != "individual":
            raise InvalidRequest("recipient_type", "must be individual")
        if data.get("to") is None and data.get("recipient") is not None:
            recipient = _check_bsuid(data["recipient"])
        else:
            recipient = check_phone(data.get("to"), "to")
        if data.get("type") == "template":
            choices = check_template(data.get("template"))
            return SendInfo(params["phone_number_id"], recipient, "template", choices)
        if data.get("type") != "interactive":
            raise InvalidRequest("type", "must be interactive or template")
        kind, choices = check_interactive(data.get("interactive"))
        return SendInfo(params["phone_number_id"], recipient, kind, choices)

    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        wamid = new_wamid()
        recipient = info.recipient or ""
        contact_key = "user_id" if _BSUID.fullmatch(recipient) else "wa_id"
        body = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": info.recipient, contact_key: info.recipient}],
            "messages": [{"id": wamid}],
        }
        return Answer(200, body), Sent(self.name, info, wamid, now)

    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        details = f"{field}: {message}" if field and message else message
        return _error(_REFUSALS[kind], details)

    def pair_refusal(self) -> Answer:
        return _error(_PAIR_LIMIT)

    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": sent.message_id,
            "status": status,
            "timestamp": str(int(now)),
            "recipient_id": sent.info.recipient,
        }
        if status == "failed" and sent.fails_for == "window_closed":
            entry["errors"] = [
                {
                    "code": 131047,
                    "title": RE_ENGAGEMENT,
                    "message": RE_ENGAGEMENT,
                    "error_data": {
                        "details": "Message failed to send because more than 24 hours have passed "
                        "since the customer last replied to this number."
                    },
                }
            ]
        elif status == "failed":
            entry["errors"] = [
                {
                    "code": 131026,
                    "title": UNDELIVERABLE,
                    "message": UNDELIVERABLE,
                    "error_data": {"details": "Message could not be delivered to the recipient."},
                }
            ]
        return self._notification(sent, {"statuses": [entry]})

    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        recipient = sent.info.recipient or ""
        message: dict[str, Any] = {
            "context": {"from": business_number(sent.info.sender), "id": sent.message_id},
            "from": recipient,
            "id": new_wamid(),
            "timestamp": str(int(now)),
        }
        if sent.info.kind == "template":  # a tap on a quick-reply button of the template
            message["type"] = "button"
            message["button"] = {"payload": choice.id, "text": choice.title}
        else:
            reply_type = "button_reply" if sent.info.kind == "button" else "list_reply"
            reply: dict[str, Any] = {"id": choice.id, "title": choice.title}
            if reply_type == "list_reply" and choice.description:
                reply["description"] = choice.description
            message["type"] = "interactive"
            message["interactive"] = {"type": reply_type, reply_type: reply}
        contacts = [{"profile": {"name": f"Sim User {recipient[-4:]}"}, "wa_id": recipient}]
        return self._notification(sent, {"contacts": contacts, "messages": [message]})

    def signature_headers(self, raw: bytes, url: str, config: SimulatorConfig) -> dict[str, str]:
        return {"X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(config.meta_app_secret, raw)}

    @staticmethod
    def _notification(sent: Sent, value: dict[str, Any]) -> dict[str, Any]:
        sender = sent.info.sender
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": business_number(sender),
                "phone_number_id": sender,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": stable_digits(f"waba:{sender}", 15),
                    "changes": [{"field": "messages", "value": value}],
                }
            ],
        }
