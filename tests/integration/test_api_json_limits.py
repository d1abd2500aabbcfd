"""Hostile JSON against the running API: too deep, huge integers, NaN: a 400 or 422 in the error
shape, fast and short, never a 500; a campaign that cannot start leaves nothing behind."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from unittest import mock

import httpx
import pytest
from wadispatch.campaigns import api as campaigns
from wadispatch.campaigns import store
from wadispatch.campaigns.template import Template
from wadispatch.ledger import Ledger

from tests.api_support import Api, signature_headers, webhook_url
from tests.integration.test_api_campaigns import SENDER, upload
from tests.support import CAMPAIGN_TEMPLATE, button_request, make_settings

pytestmark = pytest.mark.integration

#: Deeper than the C parser's recursion limit, and within the tests' 4 KB body limit.
DEEP = 1_500


def send(api: Api, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return api.client.post("/v1/messages/interactive", content=body, headers=headers)


def message_with(**extra: str) -> bytes:
    """A valid send request, with ``extra`` fields as raw JSON text."""
    text = json.dumps(button_request("meta"))[:-1]
    return (text + "".join(f', "{key}": {value}' for key, value in extra.items()) + "}").encode()


def assert_refused(answer: httpx.Response, path: str, rule: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "malformed_json"
    assert body["errors"][0]["path"] == path and rule in body["errors"][0]["rule"]
    assert len(answer.content) < 600  # never an echo of the input


@pytest.mark.parametrize(
    ("extra", "path", "rule"),
    [
        ({"metadata": "[" * DEEP + "]" * DEEP}, "$.metadata[0][0][0][0][0][0][0][0][0]…", "deeper than 64"),
        ({"metadata": '{"a":' * 500 + "1" + "}" * 500}, "$.metadata.a.a.a.a.a.a.a.a.a…", "deeper than 64"),
        ({"extra": "[" * DEEP + "]" * DEEP}, "$.extra[0][0][0][0][0][0][0][0][0]…", "deeper than 64"),
        ({"metadata": '{"n": ' + "9" * 3000 + "}"}, "$.metadata.n", "3000 digits"),
        ({"metadata": '{"n": NaN}'}, "$.metadata.n", "NaN is not JSON"),
        ({"metadata": '{"n": Infinity}'}, "$.metadata.n", "Infinity is not JSON"),
        ({"metadata": '{"n": 1e999999}'}, "$.metadata.n", "finite"),
    ],
)
def test_hostile_message_bodies_are_400_with_a_short_path(
    api: Api, extra: dict[str, str], path: str, rule: str
) -> None:
    started = time.perf_counter()
    answer = send(api, message_with(**extra))
    assert time.perf_counter() - started < 2
    assert_refused(answer, path, rule)


def test_a_deep_top_level_body_is_400(api: Api) -> None:
    assert_refused(send(api, b"[" * 4000), "$[0][0][0][0][0][0][0][0][0][0]…", "deeper than 64")


def jsonl(*rows: str) -> bytes:
    return "\n".join(rows).encode() + b"\n"


def test_a_jsonl_row_with_a_huge_int_or_deep_nesting_is_that_rows_error(api: Api) -> None:
    good = '{"phone": "+255700000101", "name": "Ann", "order": 1}'
    huge = '{"phone": "+255700000102", "name": "Bo", "order": ' + "9" * 5000 + "}"
    deep = '{"phone": "+255700000103", "name": "Cy", "order": 3, "x": ' + "[" * 2000 + "]" * 2000 + "}"
    nan = '{"phone": "+255700000104", "name": "Di", "order": NaN}'
    answer = upload(api, jsonl(good, huge, deep, nan), filename="rows.jsonl", name=f"rows-{uuid.uuid4()}")
    assert answer.status_code == 202, answer.text
    campaign = answer.json()
    assert (campaign["rows"]["accepted"], campaign["rows"]["invalid"]) == (1, 3)
    reasons = {
        item.row_number: item.reason
        for page in store.skipped_pages(api.ledger, campaign["campaign_id"])
        for item in page
    }
    assert "5000 digits" in reasons[2] and "deeper than 64" in reasons[3] and "NaN" in reasons[4]


def no_campaign_named(ledger: Ledger, name: str) -> bool:
    return all(campaign.name != name for campaign in campaigns.list_campaigns(ledger=ledger, limit=1000))


@pytest.mark.parametrize(
    "template",
    [
        b'{"type": "button", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"type": "button", "body": {"text": "hi"}, "n": ' + b"1" * 5000 + b"}",
        b'{"type": "button", "body": {"text": "hi"}, "n": NaN}',
    ],
)
def test_a_hostile_template_is_422_and_leaves_no_campaign(api: Api, template: bytes) -> None:
    name = f"hostile-{uuid.uuid4()}"
    answer = upload(api, b"phone,name,order\n+255700000105,Ann,1\n", template=template, name=name)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert errors[0]["path"] == "template" and len(answer.content) < 600
    assert no_campaign_named(api.ledger, name)


def test_a_signed_webhook_nested_deep_is_400(api: Api) -> None:
    raw = b'{"entry": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    url = webhook_url(api.url, "briq")
    answer = httpx.post(url, content=raw, headers=signature_headers("briq", raw, url), timeout=15)
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_json")
    assert "deeper than 64" in answer.json()["message"]


def test_zixflow_with_its_secret_and_a_huge_int_is_400(api: Api) -> None:
    raw = b'{"messageId": "m-1", "status": "delivered", "timestamp": ' + b"9" * 3000 + b"}"
    url = webhook_url(api.url, "zixflow")
    answer = httpx.post(url, content=raw, headers=signature_headers("zixflow", raw, url), timeout=15)
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_json")
    assert "3000 digits" in answer.json()["message"]


def test_a_campaign_failing_before_its_first_batch_leaves_nothing(tmp_path: Path, ledger: Ledger) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("phone,name,order\n+255700000106,Ann,1\n", encoding="utf-8")
    name = f"fails-{uuid.uuid4()}"
    with (
        mock.patch.object(Template, "texts", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        campaigns.create_campaign(
            source,
            CAMPAIGN_TEMPLATE,
            provider="meta",
            sender=SENDER,
            name=name,
            ledger=ledger,
            settings=make_settings(),
            dispatch=lambda *_: True,
        )
    assert no_campaign_named(ledger, name)


def test_an_empty_file_still_makes_a_campaign(tmp_path: Path, ledger: Ledger) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("phone,name,order\n", encoding="utf-8")
    campaign = campaigns.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        ledger=ledger,
        settings=make_settings(),
        dispatch=lambda *_: True,
    )
    assert campaigns.get_campaign(campaign.id, ledger=ledger).rows_read == 0
