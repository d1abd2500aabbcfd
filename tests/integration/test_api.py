"""The HTTP API running for real (uvicorn on loopback): enqueue → a worker process → the simulator,
validation errors, authentication, and the body limits. SQLite always, PostgreSQL when set."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from wadispatch.api.auth import create_api_key
from wadispatch.errors import MessageValidationError
from wadispatch.messages import validate_send_request

from tests.api_support import Api
from tests.integration.test_pipeline import SENDERS, wait_for
from tests.support import button_request, list_request

pytestmark = pytest.mark.integration


def sender_of(provider: str) -> dict[str, Any]:
    return {"sender": SENDERS[provider]}


def message_body(provider: str, kind: str = "button", **overrides: Any) -> dict[str, Any]:
    build = button_request if kind == "button" else list_request
    body = build(provider, **sender_of(provider), **overrides)
    return {key: value for key, value in body.items() if value is not None}


def state_of(api: Api, message_id: str) -> Callable[[], dict[str, Any] | None]:
    def settled() -> dict[str, Any] | None:
        body = api.client.get(f"/v1/messages/{message_id}").json()
        return body if body["state"] not in ("pending", "sending") else None

    return settled


# --- enqueue through the API --------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["meta", "zixflow"])
def test_a_message_enqueued_through_the_api_is_sent_by_a_worker(
    provider: str, api: Api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    start_worker(database_url, **api.worker_env)
    answer = api.client.post(
        "/v1/messages/interactive",
        json=message_body(provider, metadata={"ticket": 4711}),
        headers={"Idempotency-Key": f"ticket-4711-{provider}"},
    )
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "pending" and accepted["duplicate"] is False
    message = wait_for(state_of(api, accepted["message_id"]), timeout=30)
    assert message["state"] == "sent", message
    assert [t["to_state"] for t in message["transitions"]] == ["pending", "sending", "sent"]
    assert message["attempts"] == 1 and message["reason"] is None
    assert message["to"] == "+255712345678" and message["metadata"] == {"ticket": 4711}
    accepted_log = sim.get("/_sim/stats").json()["accepted_log"]
    assert [entry["provider_message_id"] for entry in accepted_log] == [message["provider_message_id"]]
    assert message["reply"] is None


def test_replaying_an_idempotency_key_returns_the_first_message(api: Api) -> None:
    body = message_body("meta")
    first = api.client.post("/v1/messages/interactive", json=body, headers={"Idempotency-Key": "order-1"})
    again = api.client.post("/v1/messages/interactive", json=body, headers={"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"message_id": first.json()["message_id"], "status": "pending", "duplicate": True}
    assert api.ledger.count_by_state() == {"pending": 1}

    clash = api.client.post(
        "/v1/messages/interactive",
        json={**body, "idempotency_key": "order-2"},
        headers={"Idempotency-Key": "order-3"},
    )
    assert clash.status_code == 422
    assert [error["path"] for error in clash.json()["errors"]] == ["idempotency_key"]
    assert api.ledger.count_by_state() == {"pending": 1}


# --- validation: every error, in the producer's words, and nothing recorded ----------------------


def too_many_buttons() -> dict[str, Any]:
    body = message_body("meta")
    body["interactive"]["action"]["buttons"] = [
        {"type": "reply", "reply": {"id": f"b{index}", "title": f"B{index}"}} for index in range(4)
    ]
    return body


def long_list() -> dict[str, Any]:
    body = message_body("meta", "list")
    rows = [{"id": f"r{index}", "title": f"Row {index}"} for index in range(11)]
    body["interactive"]["action"]["sections"] = [{"title": "All", "rows": rows}]
    body["interactive"]["body"]["text"] = "x" * 1025
    return body


INVALID = {
    "empty": ({}, {"provider", "interactive"}),
    "bad phone and unknown field": (message_body("meta", to="12", colour="red"), {"to", "colour"}),
    "unknown provider": ({**message_body("meta"), "provider": "whatsapp"}, {"provider"}),
    "four buttons": (too_many_buttons(), {"interactive.action.buttons"}),
    "long list and body": (long_list(), {"interactive.action.sections", "interactive.body.text"}),
    "conversation_id on meta": (
        message_body("meta", conversation_id=str(uuid.uuid4())),
        {"conversation_id"},
    ),
    "bad types": (
        {"provider": "meta", "to": ["+255712345678"], "interactive": "buttons"},
        {"to", "interactive"},
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_message_gets_every_error_and_nothing_is_recorded(case: str, api: Api) -> None:
    body, paths = INVALID[case]
    answer = api.client.post("/v1/messages/interactive", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    with pytest.raises(MessageValidationError) as producer:
        validate_send_request(body)
    # The API's errors are the producer's, every one, in the documented shape.
    assert problem == {
        "error": "invalid_request",
        "message": f"{len(producer.value.errors)} problem(s)",
        "errors": producer.value.as_dicts(),
    }
    assert paths <= {error["path"].split("[")[0] for error in problem["errors"]}, problem
    assert all(error["rule"] for error in problem["errors"])
    assert api.ledger.count_by_state() == {}


def test_bodies_that_are_not_json_objects_or_too_big_are_refused(api: Api) -> None:
    cases = [
        (b"{not json", 400, "malformed_json"),
        (b"[1, 2]", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"{" + b" " * 5000 + b"}", 413, "body_too_large"),
    ]
    for raw, status, error in cases:
        answer = api.client.post(
            "/v1/messages/interactive", content=raw, headers={"Content-Type": "application/json"}
        )
        assert (answer.status_code, answer.json()["error"]) == (status, error), raw[:20]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"provider": "meta", "padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    answer = api.client.post("/v1/messages/interactive", content=chunks())
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")
    assert api.ledger.count_by_state() == {}


# --- authentication ------------------------------------------------------------------------------


def test_requests_without_a_valid_key_get_401_and_change_nothing(api: Api) -> None:
    _, revoked = create_api_key(api.ledger, "old")
    [old] = [record for record in api.ledger.list_api_keys() if record.name == "old"]
    assert api.ledger.revoke_api_key(old.id)
    body = message_body("meta")
    with httpx.Client(base_url=api.url, timeout=15) as anonymous:
        for headers in (
            {},
            {"Authorization": "Bearer wad_not-a-key"},
            {"X-API-Key": "wad_not-a-key"},
            {"Authorization": f"Bearer {revoked}"},
            {"X-API-Key": revoked},
            {"Authorization": f"Basic {api.key}"},
        ):
            for answer in (
                anonymous.post("/v1/messages/interactive", json=body, headers=headers),
                anonymous.get(f"/v1/messages/{uuid.uuid4()}", headers=headers),
            ):
                assert answer.status_code == 401, (headers, answer.text)
                assert answer.json()["error"] == "unauthorized"
                assert answer.headers["WWW-Authenticate"] == "Bearer"
                assert api.key not in answer.text
        assert api.ledger.count_by_state() == {}
        # Both documented headers carry a valid key.
        for headers in ({"Authorization": f"Bearer {api.key}"}, {"X-API-Key": api.key}):
            answer = anonymous.post("/v1/messages/interactive", json=body, headers=headers)
            assert answer.status_code == 202
    assert api.ledger.count_by_state() == {"pending": 2}


def test_keys_are_stored_hashed(api: Api) -> None:
    [record] = api.ledger.list_api_keys()
    assert record.key_hash != api.key and api.key not in record.key_hash
    assert api.key.startswith(record.prefix) and len(record.prefix) < len(api.key) // 3


def test_an_unknown_message_is_404(api: Api) -> None:
    answer = api.client.get(f"/v1/messages/{uuid.uuid4()}")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_the_openapi_docs_are_served(api: Api) -> None:
    schema = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/v1/messages/interactive", "/v1/messages/{message_id}", "/webhooks/{provider}"} <= set(
        schema["paths"]
    )
    body = schema["paths"]["/v1/messages/interactive"]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    variants = schema["components"]["schemas"][name]["oneOf"]  # one per provider (and Briq's by conversation)
    fields = {field for variant in variants for field in variant["properties"]}
    assert {"provider", "to", "sender", "conversation_id", "interactive"} <= fields
    meta = next(variant for variant in variants if variant["properties"]["provider"] == {"const": "meta"})
    button, _ = meta["properties"]["interactive"]["oneOf"]
    assert button["properties"]["action"]["properties"]["buttons"]["maxItems"] == 3
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert httpx.get(f"{api.url}/health").json() == {"ok": True}
