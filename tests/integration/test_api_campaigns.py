"""Campaigns through the running HTTP API (uvicorn on loopback): upload → a real worker → the
simulator → progress and the CSV report; pause, resume, cancel; every refusal records nothing.
SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from wadispatch.campaigns import api as campaigns
from wadispatch.campaigns.template import Template
from wadispatch.celery import CAMPAIGN_FANOUT_TASK
from wadispatch.errors import MessageValidationError
from wadispatch.ledger import messages

from tests.api_support import Api, published
from tests.support import CAMPAIGN_TEMPLATE, wait_for

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
TERMINAL = {"sent", "delivered", "read", "failed"}


def phone(index: int) -> str:
    return f"+2557{index:08d}"


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "name", "order"])
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(
    api: Api,
    content: bytes,
    *,
    filename: str = "customers.csv",
    template: Any = CAMPAIGN_TEMPLATE,
    **fields: str,
) -> httpx.Response:
    """``curl -F file=@customers.csv -F template=@template.json -F provider=meta -F sender=...``."""
    files = {
        "file": (filename, content, "text/csv"),
        "template": ("template.json", template if isinstance(template, bytes) else json.dumps(template)),
    }
    data = {"provider": "meta", "sender": SENDER, **fields}
    return api.client.post("/v1/campaigns", files=files, data=data)


def progress(api: Api, campaign_id: str) -> dict[str, Any]:
    answer = api.client.get(f"/v1/campaigns/{campaign_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def finished(api: Api, campaign_id: str) -> dict[str, Any] | None:
    state = progress(api, campaign_id)
    return state if state["done"] else None


def sent(api: Api, campaign_id: str) -> int:
    return progress(api, campaign_id)["states"].get("sent", 0)


def requests_total(sim: httpx.Client) -> int:
    return sim.get("/_sim/stats", params={"log": "false"}).json()["requests_total"]


def nothing_recorded(api: Api) -> bool:
    return campaigns.list_campaigns(ledger=api.ledger) == [] and api.ledger.count_by_state() == {}


# --- a campaign from upload to report ------------------------------------------------------------


def test_an_uploaded_campaign_is_sent_and_its_report_agrees_with_the_ledger(
    api: Api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    rows = [[phone(i), f"N{i}", str(i)] for i in range(50)]
    rows[9] = ["+2557x", "Bad", "9"]  # row 10: not a phone number
    rows[19] = [phone(4), "Dup", "19"]  # row 20: row 5's number
    start_worker(database_url, **api.worker_env)

    answer = upload(api, csv_file(rows), name="order-ready")
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["rows"] == {"read": 50, "accepted": 48, "invalid": 1, "duplicate": 1, "suppressed": 0}
    assert (accepted["name"], accepted["provider"], accepted["sender"]) == ("order-ready", "meta", SENDER)
    assert accepted["queued"] is True and accepted["status"] in ("running", "done")
    campaign_id = accepted["campaign_id"]

    done = wait_for(lambda: finished(api, campaign_id), timeout=60, interval=0.3)
    assert done["status"] == "done" and done["remaining"] == 0 and done["reading"] is False
    assert done["states"] == {"sent": 48} and done["failed_reasons"] == {}
    assert done["eta_seconds"] is None or done["eta_seconds"] == 0
    listed = api.client.get("/v1/campaigns").json()["campaigns"]
    assert [(c["campaign_id"], c["status"]) for c in listed] == [(campaign_id, "done")]

    answer = api.client.get(f"/v1/campaigns/{campaign_id}/report")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert campaign_id in answer.headers["content-disposition"]
    report = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(line["row"]) for line in report] == list(range(1, 51))
    assert (report[9]["state"], report[9]["phone"]) == ("invalid", "+2557x") and report[9]["reason"]
    assert (report[19]["state"], report[19]["phone"]) == ("duplicate", phone(4))
    with api.ledger.engine.connect() as conn:
        records = conn.execute(select(messages).where(messages.c.campaign_id == campaign_id)).all()
    by_id = {line["message_id"]: line for line in report if line["message_id"]}
    assert set(by_id) == {record.id for record in records} and len(records) == 48
    for record in records:
        line = by_id[record.id]
        assert record.state in TERMINAL
        assert (line["state"], line["phone"], int(line["row"])) == (
            record.state,
            record.recipient,
            record.campaign_row,
        )
        assert line["provider_message_id"] == record.provider_message_id
    accepted_log = sim.get("/_sim/stats").json()["accepted_log"]
    assert {entry["provider_message_id"] for entry in accepted_log} == {
        r.provider_message_id for r in records
    }


def test_a_jsonl_upload_with_the_template_as_a_text_field(api: Api, queue_name: str) -> None:
    people = [{"phone": phone(i), "name": f"N{i}", "order": i} for i in range(3)]
    content = "".join(json.dumps(person) + "\n" for person in people).encode()
    answer = api.client.post(
        "/v1/campaigns",
        files={"file": ("people.txt", content, "application/octet-stream")},
        data={
            "provider": "meta",
            "sender": SENDER,
            "format": "jsonl",
            "template": json.dumps({"interactive": CAMPAIGN_TEMPLATE}),  # a send request's shape
        },
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["rows"]["accepted"] == 3 and body["name"] == "people"
    # The 202 came once the rows were recorded and the fan-out task queued (no worker runs here).
    assert api.ledger.count_by_state() == {"pending": 3}
    jobs = published(api.settings.redis_url, queue_name)
    assert (CAMPAIGN_FANOUT_TASK, [body["campaign_id"], 1, None]) in jobs


# --- pause, resume, cancel -----------------------------------------------------------------------


def test_pause_resume_and_cancel_through_the_api(
    api: Api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    start_worker(database_url, WADISPATCH_DEFAULT_RATE="20", **api.worker_env)
    answer = upload(api, csv_file([[phone(10_000 + i), "Ann", str(i)] for i in range(300)]))
    assert answer.status_code == 202, answer.text
    campaign_id = answer.json()["campaign_id"]
    wait_for(lambda: sent(api, campaign_id) >= 20, timeout=60, interval=0.3)

    for _ in range(2):  # pausing twice is fine
        paused = api.client.post(f"/v1/campaigns/{campaign_id}/pause")
        assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    time.sleep(2.0)  # sends in flight finish
    at_pause = requests_total(sim)
    time.sleep(2.0)
    assert requests_total(sim) == at_pause
    held = progress(api, campaign_id)
    assert held["states"].get("pending", 0) > 0 and held["states"].get("sending", 0) == 0
    assert held["eta_seconds"] is None and held["status"] == "paused"

    for _ in range(2):
        resumed = api.client.post(f"/v1/campaigns/{campaign_id}/resume")
        assert (resumed.status_code, resumed.json()["status"]) == (200, "running")
    wait_for(lambda: sent(api, campaign_id) >= held["states"]["sent"] + 10, timeout=60, interval=0.3)

    first = api.client.post(f"/v1/campaigns/{campaign_id}/cancel")
    again = api.client.post(f"/v1/campaigns/{campaign_id}/cancel")
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["status"] == again.json()["status"] == "cancelled"
    cancelled = first.json()["cancelled"]
    assert cancelled > 0 and again.json()["cancelled"] == 0
    after = progress(api, campaign_id)
    assert after["remaining"] == 0 and set(after["states"]) <= {"sent", "failed"}
    assert after["failed_reasons"] == {"cancelled": cancelled}
    assert after["states"]["sent"] + cancelled == 300
    time.sleep(1.0)
    assert requests_total(sim) == after["states"]["sent"]  # nothing more went out, nothing twice
    resumed = api.client.post(f"/v1/campaigns/{campaign_id}/resume")
    assert resumed.json()["status"] == "cancelled"


# --- refusals: every problem named, nothing recorded ---------------------------------------------


def bad_template() -> dict[str, Any]:
    template = json.loads(json.dumps(CAMPAIGN_TEMPLATE))
    template["action"]["buttons"] = [
        {"type": "reply", "reply": {"id": f"b{i}", "title": f"B{i} {{name}}"}} for i in range(4)
    ]
    template["body"]["text"] = "Hi {first name}"
    return template


def test_a_bad_template_or_provider_gets_every_error_and_records_nothing(api: Api) -> None:
    content = csv_file([[phone(1), "Ann", "1"]])
    answer = upload(api, content, template=bad_template())
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert {"path": "template.body.text", "rule": body["errors"][0]["rule"]} in body["errors"]
    assert "bad placeholder" in body["errors"][0]["rule"]

    four = json.loads(json.dumps(CAMPAIGN_TEMPLATE))
    four["action"]["buttons"] = bad_template()["action"]["buttons"]
    answer = upload(api, content, template=four)
    with pytest.raises(MessageValidationError) as direct:
        Template.parse(four, provider="meta", sender=SENDER)
    expected = [
        {"path": error.path.replace("interactive", "template", 1), "rule": error.rule}
        for error in direct.value.errors
    ]
    assert answer.status_code == 422 and answer.json()["errors"] == expected
    assert "template.action.buttons[3]" in {error["path"] for error in expected}

    answer = upload(api, content, provider="whatsapp")
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["path"] == "provider" and "meta" in error["rule"]
    assert nothing_recorded(api)


def test_missing_parts_bad_fields_and_a_bad_header_are_422(api: Api) -> None:
    answer = api.client.post(
        "/v1/campaigns", files={"colour": ("x.txt", b"red")}, data={"region": "Tanzania"}
    )
    assert answer.status_code == 422
    paths = {error["path"] for error in answer.json()["errors"]}
    assert {"file", "template", "provider", "region", "colour"} <= paths, answer.json()

    answer = upload(api, csv_file([[phone(1), "Ann", "1"]]), filename="customers.xlsx")
    assert [e["path"] for e in answer.json()["errors"]] == ["format"]
    answer = upload(api, csv_file([]), template=b"{not json")
    assert answer.status_code == 422 and answer.json()["errors"][0]["path"] == "template"
    assert "not valid JSON" in answer.json()["errors"][0]["rule"]

    no_order = b"phone,name\n+255700000001,Ann\n"
    answer = upload(api, no_order)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["path"] == "file" and "order" in error["rule"]
    answer = upload(api, csv_file([[phone(1), "Ann", "1"]]), region="ZZ")
    assert [e["path"] for e in answer.json()["errors"]] == ["region"]
    assert nothing_recorded(api)


def test_an_oversize_upload_is_413_and_records_nothing(api: Api) -> None:
    limit = api.settings.api_max_upload_bytes
    rows = [[phone(i), "Ann", str(i)] for i in range(limit // 20)]
    content = csv_file(rows)
    assert len(content) > limit
    answer = upload(api, content)
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")

    boundary = uuid.uuid4().hex

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n\r\n'
        yield head.encode()
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = api.client.post(
        "/v1/campaigns",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")
    answer = api.client.post("/v1/campaigns", json={"provider": "meta"})
    assert (answer.status_code, answer.json()["error"]) == (415, "unsupported_media_type")
    assert nothing_recorded(api)


# --- authentication, unknown ids, the docs -------------------------------------------------------


def test_campaign_routes_need_a_key_and_unknown_ids_are_404(api: Api) -> None:
    unknown = str(uuid.uuid4())
    routes = [
        ("POST", "/v1/campaigns"),
        ("GET", "/v1/campaigns"),
        ("GET", f"/v1/campaigns/{unknown}"),
        ("GET", f"/v1/campaigns/{unknown}/report"),
        *[("POST", f"/v1/campaigns/{unknown}/{action}") for action in ("pause", "resume", "cancel")],
    ]
    with httpx.Client(base_url=api.url, timeout=15) as anonymous:
        for method, path in routes:
            answer = anonymous.request(method, path, headers={"X-API-Key": "wad_not-a-key"})
            assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized"), path
        answer = anonymous.post(
            "/v1/campaigns",
            files={"file": ("c.csv", csv_file([[phone(1), "A", "1"]]))},
            data={"provider": "meta"},
        )
        assert answer.status_code == 401
    assert nothing_recorded(api)
    for method, path in routes[2:]:
        answer = api.client.request(method, path)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), path
        assert unknown in answer.json()["message"]


def test_the_campaign_routes_are_in_the_openapi_docs(api: Api) -> None:
    schema = httpx.get(f"{api.url}/openapi.json").json()
    paths = schema["paths"]
    upload_body = paths["/v1/campaigns"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "template", "provider"} <= set(upload_body["required"])
    models = {
        ("/v1/campaigns", "post", "202"): "CampaignAccepted",
        ("/v1/campaigns", "get", "200"): "CampaignList",
        ("/v1/campaigns/{campaign_id}", "get", "200"): "CampaignProgressOut",
        ("/v1/campaigns/{campaign_id}/pause", "post", "200"): "CampaignOut",
        ("/v1/campaigns/{campaign_id}/cancel", "post", "200"): "CampaignCancelled",
    }
    for (path, method, status), model in models.items():
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith(f"/{model}"), path
    assert "text/csv" in paths["/v1/campaigns/{campaign_id}/report"]["get"]["responses"]["200"]["content"]
    progress_fields = set(schema["components"]["schemas"]["CampaignProgressOut"]["properties"])
    assert {"states", "failed_reasons", "throughput_per_s", "eta_seconds", "remaining"} <= progress_fields
