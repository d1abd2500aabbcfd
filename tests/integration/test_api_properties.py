"""Property-based tests of the HTTP API: whatever body arrives, an answer in the 4xx (or the
documented 2xx), never a 500.

The app runs in process (FastAPI's TestClient) on a real ledger, publishing to the test Redis.
``POST /v1/messages/interactive`` gets arbitrary JSON, near-valid requests with any part replaced
and arbitrary bytes; ``POST /webhooks/{provider}`` gets the same, correctly signed, so that each
reaches the provider's parser and the inbox. Hostile JSON text (nesting thousands deep, integers of
hundreds of digits, NaN and Infinity, lone surrogates and control characters) goes to the message
endpoint, the campaign template and every signed webhook. SQLite always, PostgreSQL when
TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from wadispatch.api.app import create_app
from wadispatch.api.auth import create_api_key
from wadispatch.ledger import Ledger, campaigns
from wadispatch.webhooks import PARSERS
from wadispatch.window import NoWindows

from tests.api_support import URL_SECRETS, WEBHOOK_SECRETS, signature_headers
from tests.support import CAMPAIGN_TEMPLATE, button_request, make_settings
from tests.unit.test_input_properties import json_values, paths, replaced, samples

pytestmark = pytest.mark.integration

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BASE = "http://testserver"
ERRORS = {"malformed_json", "invalid_request", "invalid_signature", "body_too_large"}


@pytest.fixture
def client(ledger: Ledger, producer_app) -> Iterator[TestClient]:
    app = create_app(
        make_settings(api_max_body_bytes=4096, **WEBHOOK_SECRETS), ledger=ledger, windows=NoWindows()
    )
    _, key = create_api_key(ledger, "properties")
    with TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def near_valid_requests() -> st.SearchStrategy[Any]:
    """A valid request (with metadata, free JSON) with any one part replaced by arbitrary JSON."""
    request = button_request("meta", metadata={"ticket": 4711, "tags": ["a"]})
    return st.sampled_from(paths(request)).flatmap(
        lambda path: json_values.map(lambda value: replaced(request, path, value))
    )


def bodies(near: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        json_values.map(lambda value: json.dumps(value).encode()),
        near.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=200),
    )


def check_answer(response: Any, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["error"] in ERRORS


@PROPERTIES
@given(raw=bodies(near_valid_requests()))
def test_any_body_posted_as_a_message_gets_an_answer_never_a_500(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/v1/messages/interactive", content=raw, headers={"Content-Type": "application/json"}
    )
    check_answer(response, {202, 400, 413, 422})


def near_valid_webhooks(provider: str) -> st.SearchStrategy[Any]:
    """The provider's samples with any one part replaced by arbitrary JSON."""
    own = [sample for name, sample in samples() if name == provider]
    return st.sampled_from(own).flatmap(
        lambda sample: st.sampled_from(paths(sample)).flatmap(
            lambda path: json_values.map(lambda value: replaced(sample, path, value))
        )
    )


@PROPERTIES
@given(provider=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_any_signed_webhook_body_gets_an_answer_never_a_500(
    client: TestClient, provider: str, data: st.DataObject
) -> None:
    raw = data.draw(bodies(near_valid_webhooks(provider)))
    path = f"/webhooks/{provider}" + (f"/{URL_SECRETS[provider]}" if provider in URL_SECRETS else "")
    headers = signature_headers(provider, raw, BASE + path)
    check_answer(client.post(path, content=raw, headers=headers), {200, 400, 413})
    # Unsigned (or signed for another body), the same body is refused before it is read.
    unsigned = client.post(
        path if provider not in URL_SECRETS else f"/webhooks/{provider}/wrong",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    check_answer(unsigned, {401, 413})


# --- hostile JSON: deep, huge numbers, not-a-number, odd Unicode --------------------------------

PLACEHOLDER = '"__hostile__"'


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "array" else ('{"a":' * depth + "1" + "}" * depth)


#: Text that is JSON only in form (or not at all): what a careless or hostile client sends.
hostile_fragments = st.one_of(
    st.builds(deep, st.integers(60, 1800), st.sampled_from(["array", "object"])),
    st.integers(21, 1200).map(lambda digits: "9" * digits),
    st.integers(21, 1200).map(lambda digits: "-1" + "0" * digits),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "1E400"]),
    st.sampled_from(['"\\ud800"', '"\\udfff x"', '"\\u0000"', '"\\u202e\\u200b"', '"\\uffff"']),
    st.text(max_size=30).map(json.dumps),
)


def with_fragment(document: Any, fragment: str) -> bytes:
    """``document`` as JSON text with its placeholder replaced by the fragment, as sent raw."""
    return json.dumps(document).replace(PLACEHOLDER, fragment, 1).encode()


def hostile_in(document: Any) -> st.SearchStrategy[bytes]:
    """The fragment alone, or in place of any one part of ``document``."""
    placed = st.sampled_from(paths(document)).map(lambda path: replaced(document, path, "__hostile__"))
    return st.one_of(
        hostile_fragments.map(str.encode),
        st.tuples(placed, hostile_fragments).map(lambda pair: with_fragment(*pair)),
    )


@PROPERTIES
@given(raw=hostile_in(button_request("meta", metadata={"ticket": 4711, "tags": ["a"]})))
def test_hostile_json_posted_as_a_message_is_a_4xx(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/v1/messages/interactive", content=raw, headers={"Content-Type": "application/json"}
    )
    check_answer(response, {202, 400, 413, 422})


def count_campaigns(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(campaigns)).scalar_one()


@PROPERTIES
@given(raw=hostile_in(CAMPAIGN_TEMPLATE))
def test_a_hostile_campaign_template_is_a_4xx_and_leaves_no_campaign(
    client: TestClient, ledger: Ledger, raw: bytes
) -> None:
    files = {
        "file": ("c.csv", b"phone,name,order\n+255712000001,A,1\n", "text/csv"),
        "template": ("template.json", raw),
    }
    before = count_campaigns(ledger)
    response = client.post(
        "/v1/campaigns", files=files, data={"provider": "meta", "sender": "1107264639145282"}
    )
    assert response.status_code in {202, 400, 413, 422}, (response.status_code, response.text)
    if response.status_code != 202:
        assert "error" in response.json()
        assert count_campaigns(ledger) == before


@PROPERTIES
@given(provider=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_a_hostile_signed_webhook_is_a_4xx_or_200(
    client: TestClient, provider: str, data: st.DataObject
) -> None:
    own = [sample for name, sample in samples() if name == provider]
    raw = data.draw(st.sampled_from(own).flatmap(hostile_in))
    path = f"/webhooks/{provider}" + (f"/{URL_SECRETS[provider]}" if provider in URL_SECRETS else "")
    headers = signature_headers(provider, raw, BASE + path)
    check_answer(client.post(path, content=raw, headers=headers), {200, 400, 413})
