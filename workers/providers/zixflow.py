"""Zixflow: reply buttons (documented) and lists (path assumed, configurable)."""

from __future__ import annotations

import re
from typing import Any

from wadispatch.errors import ConfigurationError
from wadispatch.messages import SendRequest
from wadispatch.providers.base import (
    RECIPIENT_LIMITED_TEXT,
    Outcome,
    ProviderAnswer,
    ProviderRequest,
    interactive_json,
    join_url,
    status_outcome,
    text_or_none,
)
from wadispatch.settings import ProviderName, Settings

_WINDOW_TEXT = re.compile(r"24[\s-]?hour|window|re-?engagement|131047", re.IGNORECASE)
_OPT_OUT_TEXT = re.compile(r"opt(ed)?[\s-]?out", re.IGNORECASE)


class ZixflowAdapter:
    """Translation to and from Zixflow's interactive-message endpoints."""

    name: ProviderName = "zixflow"

    def build_request(self, request: SendRequest, settings: Settings, message_id: str) -> ProviderRequest:
        if settings.zixflow_api_key is None:
            raise ConfigurationError("WADISPATCH_ZIXFLOW_API_KEY is not set")
        if not settings.zixflow_workspace_id:
            raise ConfigurationError("WADISPATCH_ZIXFLOW_WORKSPACE_ID is not set")
        path = (
            settings.zixflow_buttons_path
            if request.interactive.type == "button"
            else settings.zixflow_list_path
        )
        body: dict[str, Any] = {
            "recipient": request.recipient_digits,
            "phone_id": request.sender,
            "interactive": interactive_json(request),
            "post_back_data": message_id,
        }
        if settings.zixflow_post_back_url:
            body["post_back_url"] = settings.zixflow_post_back_url
        return ProviderRequest(
            method="POST",
            url=join_url(settings.zixflow_base_url, path),
            json=body,
            headers={
                "x-api-key": settings.zixflow_api_key.get_secret_value(),
                "x-workspace-id": settings.zixflow_workspace_id,
                "Content-Type": "application/json",
            },
        )

    def classify(self, answer: ProviderAnswer) -> Outcome:
        payload = answer.json()
        payload = payload if isinstance(payload, dict) else {}
        message = text_or_none(payload.get("message"))
        status = answer.status_code
        if 200 <= status < 300:
            if payload.get("success") is True and payload.get("request_id"):
                return Outcome.accepted(str(payload["request_id"]), status)
            return Outcome.permanent("invalid", status_code=status, message=message)
        if status != 429 and message and RECIPIENT_LIMITED_TEXT.search(message):
            return Outcome.permanent("recipient_limited", status_code=status, message=message)
        if status != 429 and status < 500 and message:
            if _WINDOW_TEXT.search(message):
                return Outcome.permanent("window_closed", status_code=status, message=message)
            if _OPT_OUT_TEXT.search(message):
                return Outcome.permanent("opted_out", status_code=status, message=message)
        return status_outcome(answer, None, message)
