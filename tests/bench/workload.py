"""What the benchmark sends: Meta reply-button messages spread over a set of senders.

The project gets them as send requests (:func:`meta_requests`); the references get the very HTTP
requests the project's Meta adapter would make of them (:func:`provider_requests`), so both sides
put the same bytes on the wire.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from wadispatch.messages import validate_send_request
from wadispatch.providers import adapter_for
from wadispatch.settings import Settings

META_TOKEN = "bench-meta-token"
"""The access token the simulator is shown (any value but ``invalid`` passes)."""

CREDENTIALS = {
    "WADISPATCH_BRIQ_API_KEY": "bench-briq-key",
    "WADISPATCH_BIRD_ACCESS_KEY": "bench-bird-key",
    "WADISPATCH_ZIXFLOW_API_KEY": "bench-zixflow-key",
    "WADISPATCH_ZIXFLOW_WORKSPACE_ID": "bench-workspace",
    "WADISPATCH_WACR_TOKEN": "bench-wacr-token",
    "WADISPATCH_META_ACCESS_TOKEN": META_TOKEN,
}
"""Provider credentials for the project's workers (the benchmark sends through Meta only)."""


@dataclass(frozen=True)
class HttpRequest:
    """One provider call as a reference sends it: POST ``url`` with a JSON ``body``."""

    url: str
    body: dict[str, Any]
    headers: dict[str, str]


def meta_senders(count: int, batch: int = 0) -> list[str]:
    """``count`` Meta phone-number ids (the sender handle in Meta's path), 15 digits.

    Each ``batch`` has senders of its own, so that a run never inherits another run's rate-limit
    state (buckets, cooldowns) from Redis.
    """
    return [f"1{batch:06d}{index:08d}" for index in range(count)]


def meta_requests(count: int, senders: int, *, seed: int = 4, batch: int = 0) -> list[dict[str, Any]]:
    """``count`` send requests with reply buttons, round-robin over ``senders`` senders.

    The same ``seed`` gives the same recipients and bodies whatever the ``batch`` of senders.
    """
    rng = random.Random(seed)
    handles = meta_senders(senders, batch)
    return [
        {
            "provider": "meta",
            "sender": handles[index % senders],
            "to": f"+2557{rng.randrange(10**8):08d}",
            "interactive": {
                "type": "button",
                "header": {"type": "text", "text": f"Ticket #{10_000 + index}"},
                "body": {"text": "Did this resolve your issue?"},
                "footer": {"text": "wadispatch bench"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": f"yes-{index}", "title": "Yes"}},
                        {"type": "reply", "reply": {"id": f"no-{index}", "title": "No"}},
                    ]
                },
            },
        }
        for index in range(count)
    ]


def provider_requests(requests: list[dict[str, Any]], meta_base_url: str) -> list[HttpRequest]:
    """The HTTP requests the project's Meta adapter builds for ``requests``, against ``meta_base_url``."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, meta_base_url=meta_base_url, meta_access_token=META_TOKEN
    )
    adapter = adapter_for("meta")
    built: list[HttpRequest] = []
    for request in requests:
        validated = validate_send_request(request)
        provider_request = adapter.build_request(validated, settings, str(uuid.uuid4()))
        built.append(HttpRequest(provider_request.url, provider_request.json, dict(provider_request.headers)))
    return built
