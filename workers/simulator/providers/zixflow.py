"""Zixflow: reply buttons and lists, headers ``x-api-key`` and ``x-workspace-id``.

Paths: ``/api/ingest/whatsapp/v1/message/interactive/reply-buttons/send`` (``interactive.type``
must be ``button``) and its assumed sibling ``.../interactive/list/send`` (``list``).
Answers (docs/providers.md): 200 ``{"success": true, "message": "WhatsApp request queued
successfully", "request_id"}``; refusals ``{"success": false, "message"}`` whose text names the
cause (the 24-hour window, opt-out). Post-backs (assumed; unsigned, as Zixflow documents none) go
to the request's ``post_back_url``: ``{"request_id", "post_back_data", "status":
"delivered"|"read"|"failed"|"replied", "phone_id", "recipient", "timestamp", "error"}`` and, for a
reply, ``"interactive": {"type": "button_reply"|"list_reply", "<type>": {"id", "title"}}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

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
    iso_time,
    require_object,
    require_string,
)
from wadispatch.simulator.providers.interactive import check_interactive, check_phone

BUTTONS_PATH = "/api/ingest/whatsapp/v1/message/interactive/reply-buttons/send"
LIST_PATH = "/api/ingest/whatsapp/v1/message/interactive/list/send"
ACCEPTED_MESSAGE = "WhatsApp request queued successfully"

_REFUSALS: dict[RefusalKind, tuple[int, str]] = {
    "rate_limited": (429, "Too many requests: rate limit exceeded, please slow down"),
    "transient": (503, "Service temporarily unavailable, please try again"),
    "auth": (401, "Unauthorized: invalid API key or workspace id"),
    "window_closed": (
        400,
        "Message not sent: the 24-hour window is closed, the recipient must write first "
        "(re-engagement required, WhatsApp error 131047)",
    ),
    "opted_out": (
        400,
        "Message not sent: the recipient has opted out (opt-out) of messages from this business",
    ),
    "invalid": (400, "Validation failed"),
}


class Zixflow(Dialect):
    """Zixflow's ingest API; the route tells the endpoint (``params["kind"]``)."""

    name = "zixflow"
    reports_sent = False

    def sender_hint(self, params: Mapping[str, str], body: Any) -> str:
        if isinstance(body, dict) and isinstance(body.get("phone_id"), str) and body["phone_id"]:
            return body["phone_id"]
        return "?"

    def credentials(self, headers: Mapping[str, str]) -> tuple[str, ...]:
        key = headers.get("x-api-key", "").strip()
        workspace = headers.get("x-workspace-id", "").strip()
        return (key, workspace) if key and workspace else ()

    def parse(self, params: Mapping[str, str], body: Any) -> SendInfo:
        data = require_object(body)
        recipient = check_phone(data.get("recipient"), "recipient", plus=False)
        sender = require_string(data, "phone_id", "phone_id")
        assert sender is not None
        if "interactive" not in data:
            raise InvalidRequest("interactive", "is required")
        kind, choices = check_interactive(data["interactive"])
        expected = params.get("kind", "button")
        if kind != expected:
            endpoint = "reply-buttons" if expected == "button" else "list"
            raise InvalidRequest("interactive.type", f"must be {expected} on the {endpoint} path")
        url = require_string(data, "post_back_url", "post_back_url", required=False)
        if data.get("post_back_data") is not None and not isinstance(data["post_back_data"], str):
            raise InvalidRequest("post_back_data", "must be a string")
        return SendInfo(
            sender,
            recipient,
            kind,
            choices,
            post_back_data=data.get("post_back_data"),
            post_back_url=url,
        )

    def accepted(self, info: SendInfo, now: float) -> tuple[Answer, Sent]:
        request_id = str(uuid.uuid4())
        body = {"success": True, "message": ACCEPTED_MESSAGE, "request_id": request_id}
        return Answer(200, body), Sent(self.name, info, request_id, now)

    def refusal(self, kind: RefusalKind, *, field: str | None = None, message: str | None = None) -> Answer:
        status, text = _REFUSALS[kind]
        if kind == "invalid" and field:
            text = f"{text}: {field} {message or 'is invalid'}"
        elif message:
            text = message
        return Answer(status, {"success": False, "message": text})

    def status_event(self, sent: Sent, status: StatusKind, now: float) -> dict[str, Any]:
        error = {"code": 131026, "message": UNDELIVERABLE} if status == "failed" else None
        return {**self._common(sent, now), "status": status, "error": error}

    def reply_event(self, sent: Sent, choice: Choice, now: float) -> dict[str, Any]:
        reply_type = "button_reply" if sent.info.kind == "button" else "list_reply"
        reply: dict[str, Any] = {"id": choice.id, "title": choice.title}
        if reply_type == "list_reply" and choice.description:
            reply["description"] = choice.description
        return {
            **self._common(sent, now),
            "status": "replied",
            "error": None,
            "interactive": {"type": reply_type, reply_type: reply},
        }

    @staticmethod
    def _common(sent: Sent, now: float) -> dict[str, Any]:
        return {
            "request_id": sent.message_id,
            "post_back_data": sent.info.post_back_data,
            "phone_id": sent.info.sender,
            "recipient": sent.info.recipient,
            "timestamp": iso_time(now),
        }
