"""Builders shared by the tests."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wadispatch.settings import Settings

#: Provider credentials given to test workers; tests check they never leak.
SECRETS = {
    "WADISPATCH_BRIQ_API_KEY": "briq-secret-key-1f0c",
    "WADISPATCH_BIRD_ACCESS_KEY": "bird-secret-key-77aa",
    "WADISPATCH_ZIXFLOW_API_KEY": "zixflow-secret-key-c3d4",
    "WADISPATCH_ZIXFLOW_WORKSPACE_ID": "workspace-1",
    "WADISPATCH_WACR_TOKEN": "wacr-secret-token-9e9e",
    "WADISPATCH_META_ACCESS_TOKEN": "meta-secret-token-5b5b",
}


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "briq_api_key": "briq-secret-key",
        "bird_access_key": "bird-secret-key",
        "zixflow_api_key": "zixflow-secret-key",
        "zixflow_workspace_id": "ws-1",
        "wacr_base_url": "https://wacr.example",
        "wacr_token": "wacr-secret-token",
        "meta_access_token": "meta-secret-token",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def button_request(provider: str = "meta", **overrides: object) -> dict[str, object]:
    """A valid reply-buttons send request (Briq's documented example)."""
    request: dict[str, object] = {
        "provider": provider,
        "sender": "1107264639145282",
        "to": "+255712345678",
        "interactive": {
            "type": "button",
            "body": {"text": "Did this resolve your issue?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        },
    }
    request.update(overrides)
    return request


def list_request(provider: str = "meta", **overrides: object) -> dict[str, object]:
    """A valid list send request (Bird's documented "Main Menu" example, titled sections)."""
    request = button_request(provider, **overrides)
    request["interactive"] = {
        "type": "list",
        "header": {"type": "text", "text": "What would you like to buy today?"},
        "body": {"text": "To begin, tap Main Menu and choose from one of the following actions"},
        "action": {
            "button": "Main Menu",
            "sections": [
                {"title": "Bundles", "rows": [{"id": "row-1", "title": "Buy bundles"}]},
                {
                    "title": "Airtime",
                    "rows": [{"id": "row-2", "title": "Buy airtime", "description": "optional description"}],
                },
            ],
        },
    }
    return request


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


#: A campaign template: reply buttons whose texts carry {name} and {order} placeholders.
CAMPAIGN_TEMPLATE: dict[str, object] = {
    "type": "button",
    "body": {"text": "Hi {name}, your order {order} is ready"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes-{order}", "title": "Yes {name}"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}},
        ]
    },
}


def campaign_phone(index: int, prefix: str = "+2557") -> str:
    """A valid Tanzanian mobile number, one per ``index``."""
    return f"{prefix}{index:08d}"


def write_recipients(path: Path, numbers: list[str]) -> Path:
    """A campaign file of these numbers with the columns :data:`CAMPAIGN_TEMPLATE` fills."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([number, "Ann", str(index)] for index, number in enumerate(numbers))
    return path
