"""Secrets and personal data after a real run: nowhere in logs, task arguments, Flower, the ledger
or the command line's output.

A worker with known credentials (tests/support.py SECRETS) sends through all five providers,
with a failure, a retry and a poison job, watched by a real Flower; then every place the issue
names is searched for the credentials and for the recipients' phone numbers. A second run adds
a campaign and the HTTP API (``wadispatch api`` with an API key and webhook secrets): its access
log, its answers, the campaign's report and tables are searched too.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from wadispatch import enqueue, enqueue_many
from wadispatch.api.auth import create_api_key
from wadispatch.campaigns import api as campaigns
from wadispatch.celery import RECONCILE_TASK, SEND_BATCH_TASK
from wadispatch.engine import send_batch
from wadispatch.ledger import Ledger, messages, metadata
from wadispatch.localstack import stop_process_group
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome, ProviderAdapter, ProviderRequest
from wadispatch.ratelimit import Unlimited
from wadispatch.states import State
from wadispatch.transport import SendLoop

from tests.api_support import URL_SECRETS, WEBHOOK_SECRETS, signature_headers
from tests.integration.test_api_cli import serve_api
from tests.integration.test_flower import AUTH
from tests.integration.test_flower import flower as flower_url  # noqa: F401 (a fixture)
from tests.support import CAMPAIGN_TEMPLATE, SECRETS, button_request, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
CREDENTIALS = [value for name, value in SECRETS.items() if name.endswith(("_KEY", "_TOKEN"))]
SENDERS = {
    "briq": "255700000001",
    "bird": "channel-1",
    "zixflow": "phone-1",
    "wacr": None,
    "meta": "1107264639",
}


def ledger_text(ledger: Ledger) -> str:
    """Every row of every table, as text."""
    with ledger.engine.connect() as conn:
        return "\n".join(
            json.dumps([str(value) for value in row])
            for table in metadata.sorted_tables
            for row in conn.execute(select(table)).all()
        )


def leaks(text: str, needles: list[str]) -> list[str]:
    return [needle for needle in needles if needle in text]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what leaks into logs and Flower does not depend on the database."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


def test_known_secrets_and_phone_numbers_appear_nowhere_after_a_run(
    tmp_path: Path,
    database_url: str,
    ledger: Ledger,
    flower_url: str,  # noqa: F811 (the fixture imported above)
    producer_app,
    redis_url: str,
    queue_name: str,
    start_worker,
    sim: httpx.Client,
) -> None:
    worker = start_worker(database_url)
    sim.post("/_sim/script", json={"provider": "bird", "answers": [{"kind": "auth"}]}).raise_for_status()
    sim.post(
        "/_sim/script", json={"provider": "meta", "answers": [{"kind": "rate_limited"}]}
    ).raise_for_status()
    phones = [f"+2557123{index:05d}" for index in range(10)]
    ids = [
        enqueue(button_request(provider, sender=sender, to=phones[index]), ledger=ledger).message_id
        for index, (provider, sender) in enumerate(SENDERS.items())
    ]
    ids += [
        r.message_id
        for r in enqueue_many(
            [button_request("briq", sender=SENDERS["briq"], to=phone) for phone in phones[5:]], ledger=ledger
        )
    ]
    producer_app.send_task(SEND_BATCH_TASK, args=[[str(uuid.uuid4())]])  # a poison job
    producer_app.send_task(RECONCILE_TASK)
    wait_for(lambda: all(ledger.get(i).state in (State.SENT, State.FAILED) for i in ids), timeout=60)
    wait_for(lambda: ledger.dead_letters(), timeout=30)
    assert ledger.get(ids[1]).reason == "auth"  # the run did fail and retry, not only succeed
    assert any(
        t.to_state is State.PENDING and t.from_state is State.SENDING for t in ledger.transitions(ids[4])
    )
    tasks = wait_for(lambda: (found := _flower_tasks(flower_url)) and len(found) >= 8 and found, timeout=30)

    cli_env = {
        "WADISPATCH_DATABASE_URL": database_url,
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        **SECRETS,
        "PATH": str(Path(sys.executable).parent),
    }
    outputs = [
        subprocess.run(
            [WADISPATCH, *args], env=cli_env, capture_output=True, text=True, timeout=60, check=False
        )
        for args in (
            ["status", ids[1], "--json"],
            ["status", ids[1]],
            ["dead-letters", "list", "--json"],
            ["reconcile", "--json"],
        )
    ]
    assert all(output.returncode == 0 for output in outputs), [output.stderr for output in outputs]
    cli_text = "\n".join(output.stdout + output.stderr for output in outputs)

    logs = "\n".join(path.read_text(errors="replace") for path in tmp_path.glob("*.log"))
    assert "succeeded" in logs and worker.name in logs  # the logs are the worker's, and not empty
    places = {
        "logs": logs,
        "flower tasks": json.dumps(tasks),
        "ledger": ledger_text(ledger),
        "cli": cli_text,
    }
    for place, text in places.items():
        assert leaks(text, CREDENTIALS) == [], place
    # Phone numbers: masked in logs and absent from what Flower shows (jobs carry ids only).
    for place in ("logs", "flower tasks"):
        assert leaks(places[place], phones + [phone.lstrip("+") for phone in phones]) == [], place


#: The HTTP API's own secrets: webhook signing secrets, URL secrets and Meta's verify token.
API_SECRETS = {f"WADISPATCH_{name.upper()}": value for name, value in WEBHOOK_SECRETS.items()} | {
    "WADISPATCH_META_VERIFY_TOKEN": "meta-verify-token-4e4e"
}


def test_known_secrets_appear_nowhere_after_a_campaign_and_the_http_api(
    tmp_path: Path,
    database_url: str,
    ledger: Ledger,
    producer_app,
    redis_url: str,
    queue_name: str,
    start_worker,
    sim: httpx.Client,
) -> None:
    worker = start_worker(database_url)
    _, key = create_api_key(ledger, "secrets-scan")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("WADISPATCH_")},
        "WADISPATCH_DATABASE_URL": database_url,
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        **SECRETS,
        **API_SECRETS,
    }
    needles = [*CREDENTIALS, key, *API_SECRETS.values()]
    phones = [f"+2557124{index:05d}" for index in range(20)]
    source = tmp_path / "customers.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([phone, f"N{index}", str(index)] for index, phone in enumerate(phones))
        writer.writerow(["not a phone", "Bad", "x"])  # a row error in the report too
    log_path = tmp_path / "api-access.log"
    base, process = serve_api(env, tmp_path, log_path)
    answers: list[httpx.Response] = []
    try:
        campaign = campaigns.create_campaign(
            source,
            CAMPAIGN_TEMPLATE,
            provider="meta",
            sender="1107264639145282",
            ledger=ledger,
            settings=make_settings(campaign_batch_size=8),
        )
        with httpx.Client(base_url=base, timeout=15) as client:
            for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
                answers.append(
                    client.post(
                        "/v1/messages/interactive",
                        json=button_request("meta", to="+255712499999"),
                        headers=headers,
                    )
                )
            assert [answer.status_code for answer in answers] == [202, 202]
            answers.append(
                client.post("/v1/messages/interactive", json={}, headers={"X-API-Key": "wad_nope"})
            )
            assert answers[-1].status_code == 401
            for provider in ("zixflow", "wacr"):
                answers.append(client.post(f"/webhooks/{provider}/{URL_SECRETS[provider]}", content=b"{}"))
            raw = b'{"object": "whatsapp_business_account", "entry": []}'
            answers.append(
                client.post("/webhooks/meta", content=raw, headers=signature_headers("meta", raw, ""))
            )
            verify = {
                "hub.mode": "subscribe",
                "hub.verify_token": API_SECRETS["WADISPATCH_META_VERIFY_TOKEN"],
                "hub.challenge": "42",
            }
            answers.append(client.get("/webhooks/meta", params=verify))
            assert [answer.status_code for answer in answers[3:]] == [200, 200, 200, 200]
            wait_for(lambda: campaigns.progress(campaign.id, ledger=ledger).done, timeout=60)
            with ledger.engine.connect() as conn:
                ids = list(
                    conn.execute(select(messages.c.id).where(messages.c.campaign_id == campaign.id)).scalars()
                )
            ids += [answer.json()["message_id"] for answer in answers[:2]]
            for message_id in ids:
                answers.append(client.get(f"/v1/messages/{message_id}", headers={"X-API-Key": key}))
            assert {answer.status_code for answer in answers[-len(ids) :]} == {200}
    finally:
        stop_process_group(process, 15)
    report = tmp_path / "report.csv"
    assert campaigns.report(campaign.id, report, ledger=ledger) == len(phones) + 1
    cli_env = {**env, "PATH": str(Path(sys.executable).parent)}
    outputs = [
        subprocess.run(
            [WADISPATCH, *args], env=cli_env, capture_output=True, text=True, timeout=60, check=False
        )
        for args in (
            ["campaign", "status", campaign.id, "--json"],
            ["campaign", "list"],
            ["campaign", "report", campaign.id, "--out", str(tmp_path / "cli-report.csv")],
            ["api-key", "list"],
        )
    ]
    assert all(output.returncode == 0 for output in outputs), [output.stderr for output in outputs]

    access_log = log_path.read_text(errors="replace")
    assert "POST /webhooks/zixflow/*** HTTP/1.1" in access_log  # the log is the API's, and not empty
    places = {
        "api access log": access_log,
        "worker logs": worker.log_path.read_text(errors="replace"),
        "api answers": "\n".join(answer.text for answer in answers),
        "campaign report": report.read_text() + (tmp_path / "cli-report.csv").read_text(),
        "ledger (campaign tables included)": ledger_text(ledger),
        "cli": "\n".join(output.stdout + output.stderr for output in outputs),
    }
    assert campaign.id in places["ledger (campaign tables included)"]
    assert "succeeded" in places["worker logs"] and phones[0] in places["campaign report"]
    for place, text in places.items():
        assert leaks(text, needles) == [], place
    # Phone numbers: masked in the logs (the API's answers and the report carry them by design).
    for place in ("api access log", "worker logs"):
        assert leaks(places[place], phones + [phone.lstrip("+") for phone in phones]) == [], place


def _flower_tasks(url: str) -> dict[str, object]:
    answer = httpx.get(f"{url}/api/tasks", auth=AUTH, timeout=5)
    answer.raise_for_status()
    return answer.json()


class EchoingTransport:
    """A provider that answers 401 quoting the credential it was sent."""

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return Outcome.permanent("auth", status_code=401, code="190", message=f"Invalid OAuth token {token}")

    async def aclose(self) -> None:
        pass


def test_a_provider_echoing_the_credential_leaves_no_trace_in_the_ledger(ledger: Ledger) -> None:
    settings = make_settings()
    token = settings.meta_access_token.get_secret_value()
    message_id, _ = ledger.record_pending(validate_send_request(button_request("meta")))
    loop = SendLoop(settings)
    try:
        loop.transport = EchoingTransport()  # type: ignore[assignment]
        result = send_batch([message_id], ledger=ledger, limiter=Unlimited(), loop=loop, settings=settings)
    finally:
        loop.close()
    assert result.failed == {message_id: "auth"}
    record = ledger.get(message_id)
    assert record.provider_error_message == "Invalid OAuth token [redacted]"
    assert token not in ledger_text(ledger)
