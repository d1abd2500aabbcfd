"""Unit tests for :class:`wadispatch.transport.Transport`: one HTTP attempt, mocked with respx.

No network: ``respx.mock`` replaces httpx's default transport (the tests give the Transport that
one; production uses the aiohttp transport, see ``new_http_transport``), and any request no route
matches fails.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from wadispatch.errors import ConfigurationError
from wadispatch.messages import validate_send_request
from wadispatch.providers import ProviderRequest, adapter_for
from wadispatch.settings import PROVIDER_NAMES, Settings
from wadispatch.transport import Transport, new_event_loop, new_http_transport, request_timeout

BUTTONS = {
    "type": "button",
    "body": {"text": "Did this resolve your issue?"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}},
        ]
    },
}

# A 2xx answer of each provider, and where its message id is in it (docs/providers.md).
ACCEPTED: dict[str, tuple[int, dict[str, Any], str]] = {
    "briq": (
        202,
        {
            "success": True,
            "data": {"message_id": "briq-msg-1", "provider_message_id": "wamid.B", "status": "pending"},
            "errors": None,
            "request_id": "req-1",
        },
        "briq-msg-1",
    ),
    "bird": (
        202,
        {"id": "4a968dd619f54d9582440d15aaa791ec", "status": "accepted"},
        "4a968dd619f54d9582440d15aaa791ec",
    ),
    "zixflow": (
        200,
        {
            "success": True,
            "message": "WhatsApp request queued successfully",
            "request_id": "f8df74d1-11fa-4485-b164-b9a65358f4fc",
        },
        "f8df74d1-11fa-4485-b164-b9a65358f4fc",
    ),
    "wacr": (200, {"success": True, "data": {"message_id": "wamid.W", "status": "sent"}}, "wamid.W"),
    "meta": (
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "255712345678", "wa_id": "255712345678"}],
            "messages": [{"id": "wamid.M"}],
        },
        "wamid.M",
    ),
}


@pytest.fixture(autouse=True)
def _no_wadispatch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("WADISPATCH_") or name.upper() == "REDIS_URL":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        briq_api_key="test-briq-api-key",
        bird_access_key="test-bird-access-key",
        zixflow_api_key="test-zixflow-api-key",
        zixflow_workspace_id="test-workspace-7",
        wacr_base_url="https://wacr.example/api/v2",
        wacr_token="test-wacr-token",
        meta_access_token="test-meta-access-token",
    )


@pytest.fixture
def transport(settings: Settings) -> Iterator[Transport]:
    transport = Transport(httpx.AsyncHTTPTransport(), request_timeout(settings))
    yield transport
    asyncio.run(transport.aclose())


def provider_request(provider: str, settings: Settings) -> ProviderRequest:
    data: dict[str, Any] = {"provider": provider, "to": "+255712345678", "interactive": BUTTONS}
    if provider in ("bird", "zixflow", "meta"):
        data["sender"] = "106540352242922"
    return adapter_for(provider).build_request(validate_send_request(data), settings, message_id="m-1")


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_answer_is_classified_and_request_carries_adapter_headers_and_json(
    provider: str, settings: Settings, transport: Transport
) -> None:
    request = provider_request(provider, settings)
    status, body, message_id = ACCEPTED[provider]
    with respx.mock(assert_all_called=True) as router:
        route = router.post(request.url).mock(return_value=httpx.Response(status, json=body))
        outcome = asyncio.run(transport.send(request, adapter_for(provider)))

    assert outcome.kind == "accepted"
    assert outcome.provider_message_id == message_id
    assert outcome.status_code == status
    assert route.call_count == 1
    sent = route.calls.last.request
    assert sent.method == request.method
    assert str(sent.url) == request.url
    for name, value in request.headers.items():
        assert sent.headers[name] == value
    assert json.loads(sent.content) == request.json


@pytest.mark.parametrize(
    ("provider", "answer", "kind", "reason", "retry_after"),
    [
        (
            "briq",
            httpx.Response(
                422,
                json={
                    "success": False,
                    "data": None,
                    "errors": [{"code": "WINDOW_CLOSED", "message": "closed"}],
                },
            ),
            "permanent",
            "window_closed",
            None,
        ),
        ("bird", httpx.Response(429, headers={"Retry-After": "12"}), "rate_limited", "rate_limited", 12.0),
        (
            "wacr",
            httpx.Response(
                429,
                headers={"RETRY-AFTER": "3"},
                json={"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow"}},
            ),
            "rate_limited",
            "rate_limited",
            3.0,
        ),
        (
            "meta",
            httpx.Response(400, json={"error": {"message": "(#190) token expired", "code": 190}}),
            "permanent",
            "auth",
            None,
        ),
        (
            "zixflow",
            httpx.Response(503, text="<html>Service Unavailable</html>"),
            "transient",
            "server_error",
            None,
        ),
    ],
    ids=["briq-window_closed", "bird-429", "wacr-429-header-case", "meta-190", "zixflow-503-html"],
)
def test_error_answers_are_classified_through_the_adapter(
    provider: str,
    answer: httpx.Response,
    kind: str,
    reason: str,
    retry_after: float | None,
    settings: Settings,
    transport: Transport,
) -> None:
    request = provider_request(provider, settings)
    with respx.mock(assert_all_called=True) as router:
        router.post(request.url).mock(return_value=answer)
        outcome = asyncio.run(transport.send(request, adapter_for(provider)))
    assert outcome.kind == kind
    assert outcome.reason == reason
    assert outcome.retry_after == retry_after
    assert outcome.status_code == answer.status_code
    assert outcome.provider_message_id is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError, "connect_error"),
        (httpx.ConnectTimeout, "connect_error"),
        (httpx.PoolTimeout, "connect_error"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.WriteTimeout, "timeout"),
        (httpx.RemoteProtocolError, "connection_dropped"),
        (httpx.ReadError, "connection_dropped"),
    ],
)
def test_network_failures_become_transient_outcomes(
    error: type[Exception], reason: str, settings: Settings, transport: Transport
) -> None:
    request = provider_request("meta", settings)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(request.url).mock(side_effect=error)
        outcome = asyncio.run(transport.send(request, adapter_for("meta")))
    assert route.call_count == 1
    assert outcome.kind == "transient"
    assert outcome.reason == reason
    assert outcome.retryable
    assert outcome.status_code is None
    assert outcome.provider_message_id is None
    assert outcome.provider_message == error.__name__


def test_network_failure_outcome_never_carries_the_secret(settings: Settings, transport: Transport) -> None:
    request = provider_request("wacr", settings)
    with respx.mock(assert_all_called=True) as router:
        router.post(request.url).mock(side_effect=httpx.ConnectError("refused: Bearer test-wacr-token"))
        outcome = asyncio.run(transport.send(request, adapter_for("wacr")))
    assert outcome.kind == "transient"
    assert outcome.reason == "connect_error"
    assert "test-wacr-token" not in repr(outcome)


def test_redirects_are_not_followed(settings: Settings, transport: Transport) -> None:
    request = provider_request("bird", settings)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(request.url).mock(
            return_value=httpx.Response(307, headers={"Location": "https://elsewhere.example/v1/send"})
        )
        outcome = asyncio.run(transport.send(request, adapter_for("bird")))
    assert route.call_count == 1
    assert outcome.kind != "accepted"
    assert outcome.status_code == 307


def test_requests_carry_the_configured_timeouts(settings: Settings) -> None:
    settings = settings.model_copy(update={"http_connect_timeout": 1.5, "http_read_timeout": 2.5})
    transport = Transport(httpx.AsyncHTTPTransport(), request_timeout(settings))
    request = provider_request("meta", settings)
    try:
        with respx.mock(assert_all_called=True) as router:
            route = router.post(request.url).mock(return_value=httpx.Response(500))
            asyncio.run(transport.send(request, adapter_for("meta")))
        timeout = route.calls.last.request.extensions["timeout"]
        assert timeout["connect"] == 1.5
        assert timeout["read"] == 2.5
    finally:
        asyncio.run(transport.aclose())


def test_production_transport_is_aiohttp_with_the_configured_connection_limit() -> None:
    from httpx_aiohttp import AiohttpTransport

    settings = Settings(_env_file=None, http_max_connections=77)
    http = new_http_transport(settings)
    try:
        assert isinstance(http, AiohttpTransport)
        assert http.limits.max_connections == 77
    finally:
        asyncio.run(http.aclose())


def test_body_is_the_json_httpx_would_send(settings: Settings) -> None:
    request = provider_request("briq", settings)
    assert request.body == httpx.Request("POST", request.url, json=request.json).content


def test_the_send_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for() -> None:
    uvloop = pytest.importorskip("uvloop")
    for kind, expected in (("auto", uvloop.Loop), ("uvloop", uvloop.Loop)):
        loop = new_event_loop(kind)
        try:
            assert isinstance(loop, expected), kind
        finally:
            loop.close()
    plain = new_event_loop("asyncio")
    try:
        assert not isinstance(plain, uvloop.Loop)
        assert isinstance(plain, asyncio.AbstractEventLoop)
    finally:
        plain.close()


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    loop = new_event_loop("auto")
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    with pytest.raises(ConfigurationError, match="WADISPATCH_SEND_LOOP=uvloop"):
        new_event_loop("uvloop")
