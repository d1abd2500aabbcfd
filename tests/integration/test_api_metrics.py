"""``GET /metrics`` on the running API: Prometheus' text format, no API key, the product's names."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families
from wadispatch.api.app import create_app

from tests.api_support import Api, ApiServer
from tests.integration.test_api import message_body
from tests.support import CAMPAIGN_TEMPLATE


def test_metrics_answer_the_text_format_without_a_key_with_the_products_names(api: Api) -> None:
    answer = api.client.post("/v1/messages/interactive", json=message_body("meta"))
    assert answer.status_code == 202, answer.text
    scraped = httpx.get(f"{api.url}/metrics", timeout=15)  # no Authorization header
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    for name in (
        "wadispatch_messages_accepted",
        "wadispatch_enqueue_seconds",
        "wadispatch_messages_sent",
        "wadispatch_webhook_events",
        "wadispatch_queue_jobs",
        "wadispatch_workers_alive",
    ):
        assert name in families, name
    accepted = [
        sample.value
        for sample in families["wadispatch_messages_accepted"].samples
        if sample.name.endswith("_total") and sample.labels == {"provider": "meta"}
    ]
    assert accepted and accepted[0] >= 1
    states = {sample.labels["state"] for sample in families["wadispatch_queue_jobs"].samples}
    assert states == {"queued", "unacked"}
    # Not part of the product's API document.
    assert "/metrics" not in api.client.get("/openapi.json").json()["paths"]


def test_metrics_can_be_turned_off(api: Api) -> None:
    settings = api.settings.model_copy(update={"api_metrics": False})
    server = ApiServer(create_app(settings, ledger=api.ledger, windows=api.windows)).start()
    try:
        assert httpx.get(f"{server.url}/metrics", timeout=15).status_code == 404
    finally:
        server.stop()


def test_a_scraper_asking_for_openmetrics_gets_it(api: Api) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    scraped = httpx.get(f"{api.url}/metrics", headers={"Accept": accept}, timeout=15)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    assert scraped.text.rstrip().endswith("# EOF")


def metric_values(api: Api, name: str, label: str) -> dict[str, float]:
    scraped = httpx.get(f"{api.url}/metrics", timeout=15)
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    return {sample.labels[label]: sample.value for sample in families[name].samples if label in sample.labels}


def accepted_meta(api: Api) -> float:
    return metric_values(api, "wadispatch_messages_accepted", "provider").get("meta", 0.0)


def test_a_campaigns_rows_count_as_accepted_and_its_progress_is_scraped(api: Api) -> None:
    before = accepted_meta(api)
    content = "phone,name,order\n" + "".join(f"+2557{i:08d},N{i},{i}\n" for i in range(4))
    answer = api.client.post(
        "/v1/campaigns",
        files={
            "file": ("customers.csv", content.encode(), "text/csv"),
            "template": ("template.json", json.dumps(CAMPAIGN_TEMPLATE)),
        },
        data={"provider": "meta", "sender": "1107264639145282"},
    )
    assert answer.status_code == 202, answer.text
    assert accepted_meta(api) == before + 4
    statuses = metric_values(api, "wadispatch_campaigns", "status")
    assert statuses["running"] >= 1 and set(statuses) == {"running", "paused", "done", "cancelled"}
    states = metric_values(api, "wadispatch_campaign_messages", "state")
    assert states["pending"] >= 4  # no worker runs here: the campaign's messages wait
