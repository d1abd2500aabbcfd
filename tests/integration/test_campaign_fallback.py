"""A campaign with a fallback template, through the HTTP API with a real worker and the simulator:
rows whose window is closed go as the template filled from their row, progress counts them, the
report says so per row; a row whose filled template breaks a rule is skipped; a bad fallback is a
422 naming its field and records nothing. SQLite always, PostgreSQL when set."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from wadispatch.ledger import messages

from tests.api_support import Api
from tests.integration.test_api_campaigns import csv_file, finished, nothing_recorded, phone
from tests.support import CAMPAIGN_TEMPLATE, wait_for

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
FALLBACK = {
    "name": "order_ready",
    "language": "en",
    "body_parameters": ["{name}", "{order}"],
    "quick_replies": ["yes-{order}", "no"],
}
CLOSED = [phone(500 + index) for index in range(3)]


def upload(api: Api, content: bytes, fallback: object) -> httpx.Response:
    files = {
        "file": ("customers.csv", content, "text/csv"),
        "template": ("template.json", json.dumps(CAMPAIGN_TEMPLATE)),
        "fallback": ("fallback.json", json.dumps(fallback)),
    }
    return api.client.post("/v1/campaigns", files=files, data={"provider": "meta", "sender": SENDER})


@pytest.fixture
def closed_windows(sim: httpx.Client) -> Iterator[list[str]]:
    saved = sim.get("/_sim/config").json()
    sim.put("/_sim/config", json={"window_closed_recipients": CLOSED}).raise_for_status()
    yield CLOSED
    sim.put("/_sim/config", json=saved).raise_for_status()


def test_closed_windows_get_the_template_filled_from_their_row(
    api: Api, start_worker, database_url: str, sim: httpx.Client, closed_windows: list[str]
) -> None:
    rows = [[number, f"C{index}", str(index)] for index, number in enumerate(CLOSED)]
    rows += [[phone(600 + index), f"O{index}", str(10 + index)] for index in range(3)]
    rows.append([phone(700), "two\tparts", "20"])  # a tab is fine in a body, not in a parameter
    start_worker(database_url, **api.worker_env)

    answer = upload(api, csv_file(rows), FALLBACK)
    assert answer.status_code == 202, answer.text
    assert answer.json()["rows"]["invalid"] == 1
    campaign_id = answer.json()["campaign_id"]

    done = wait_for(lambda: finished(api, campaign_id), timeout=30, interval=0.2)
    assert done["states"] == {"sent": 6} and done["sent_as_template"] == 3, done

    report = list(csv.DictReader(io.StringIO(api.client.get(f"/v1/campaigns/{campaign_id}/report").text)))
    by_phone = {line["phone"]: line for line in report}
    assert [by_phone[number]["sent_as"] for number in CLOSED] == ["template"] * 3
    assert {by_phone[phone(600 + index)]["sent_as"] for index in range(3)} == {""}
    invalid = report[-1]
    assert invalid["state"] == "invalid" and "fallback.body_parameters[0]" in invalid["reason"]

    templates = [entry["body"] for entry in sim.get("/_sim/stats").json()["accepted_log"]]
    templates = [body["template"] for body in templates if body["type"] == "template"]
    first = next(t for t in templates if t["components"][0]["parameters"][0]["text"] == "C0")
    assert first["components"][0]["parameters"][1]["text"] == "0"
    assert first["components"][1]["parameters"] == [{"type": "payload", "payload": "yes-0"}]
    with api.ledger.engine.connect() as conn:
        stored = conn.execute(
            select(messages.c.fallback).where(
                messages.c.campaign_id == campaign_id, messages.c.recipient == CLOSED[2]
            )
        ).scalar_one()
    assert stored["quick_replies"] == ["yes-2", "no"]


def test_a_bad_fallback_is_422_naming_its_field_and_records_nothing(api: Api) -> None:
    content = csv_file([[phone(1), "Ann", "1"]])
    bad = {**FALLBACK, "language": "english", "quick_replies": ["maybe-{order}"]}
    answer = upload(api, content, bad)
    assert answer.status_code == 422, answer.text
    paths = {error["path"]: error["rule"] for error in answer.json()["errors"]}
    assert "language code" in paths["fallback.language"]

    answer = upload(api, content, {**FALLBACK, "quick_replies": ["maybe-{order}"]})
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["path"] == "fallback.quick_replies[0]" and "reply ids" in error["rule"]

    answer = upload(api, content, {**FALLBACK, "body_parameters": ["{name"]})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "fallback.body_parameters[0]"

    files = {
        "file": ("customers.csv", content, "text/csv"),
        "template": ("template.json", json.dumps(CAMPAIGN_TEMPLATE)),
        "fallback": ("fallback.json", json.dumps(FALLBACK)),
    }
    answer = api.client.post("/v1/campaigns", files=files, data={"provider": "briq"})
    assert answer.status_code == 422
    assert any(
        e["path"] == "fallback" and "documents no template send" in e["rule"] for e in answer.json()["errors"]
    )
    assert nothing_recorded(api)
