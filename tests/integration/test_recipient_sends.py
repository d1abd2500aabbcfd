"""Recipients by BSUID and Meta's per-user limit, with real parts.

A BSUID message goes through the simulator's Meta dialect (sent as ``recipient``) and ends ``sent``;
Meta's documented 131049 answer ends a message ``failed`` with reason ``recipient_limited`` after
one request and no retry, and a campaign counts that reason apart. Runs on SQLite and, when
TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from wadispatch import enqueue
from wadispatch.campaigns import api
from wadispatch.engine import BatchResult, send_batch
from wadispatch.ledger import Ledger, messages
from wadispatch.messages import validate_send_request
from wadispatch.providers import Outcome, ProviderAdapter, ProviderAnswer, ProviderRequest, adapter_for
from wadispatch.ratelimit import Unlimited
from wadispatch.simulator import SimulatorServer
from wadispatch.states import State
from wadispatch.transport import SendLoop

from tests.api_support import Api
from tests.support import SECRETS, button_request, make_settings, wait_for

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "meta"
SENDER = "1107264639145282"
BSUID = "US.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"
TEMPLATE = {
    "type": "button",
    "body": {"text": "Hi {name}, your order is ready"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
}


def meta_answer(name: str, status: int) -> Outcome:
    """Meta's documented answer body, read by the real Meta adapter."""
    body = (SAMPLES / f"{name}.json").read_bytes()
    return adapter_for("meta").classify(ProviderAnswer(status_code=status, headers={}, body=body))


class ScriptedTransport:
    """Answers each send with the next outcome and remembers the requests."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[ProviderRequest] = []

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        self.requests.append(request)
        return self.outcomes.pop(0)

    async def aclose(self) -> None:
        pass


@pytest.fixture(scope="module")
def loop() -> Iterator[SendLoop]:
    send_loop = SendLoop(make_settings())
    yield send_loop
    send_loop.close()


def attempt(ledger: Ledger, loop: SendLoop, transport: ScriptedTransport, ids: list[str]) -> BatchResult:
    loop.transport = transport  # type: ignore[assignment]
    return send_batch(
        ids, ledger=ledger, limiter=Unlimited(), loop=loop, settings=make_settings(), rng=random.Random(7)
    )


@pytest.mark.parametrize("to", [BSUID, PARENT_BSUID])
def test_a_bsuid_message_goes_through_the_simulator_and_ends_sent(
    to: str, ledger: Ledger, database_url: str, producer_app, start_worker, sim: httpx.Client
) -> None:
    start_worker(database_url)
    message_id = enqueue(button_request("meta", sender=SENDER, to=to), ledger=ledger).message_id
    assert ledger.get(message_id).recipient == to
    wait_for(lambda: ledger.get(message_id).state in (State.SENT, State.FAILED))
    record = ledger.get(message_id)
    assert (record.state, record.attempts) == (State.SENT, 1), (record.reason, record.provider_error_message)
    [accepted] = sim.get("/_sim/stats").json()["accepted_log"]
    assert accepted["recipient"] == to
    assert accepted["body"]["recipient"] == to and "to" not in accepted["body"]
    assert record.provider_message_id == accepted["provider_message_id"]


def test_the_simulator_answers_a_bsuid_send_with_user_id(
    simulator: SimulatorServer, sim: httpx.Client
) -> None:
    request = adapter_for("meta").build_request(
        validate_send_request(button_request("meta", sender=SENDER, to=BSUID)), make_settings(), "m-1"
    )
    answer = httpx.post(
        f"{simulator.url}/v23.0/{SENDER}/messages",
        json=request.json,
        headers={"Authorization": "Bearer test-meta-access-token"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["contacts"] == [{"input": BSUID, "user_id": BSUID}]
    assert body["messages"][0]["id"].startswith("wamid.")
    refused = httpx.post(
        f"{simulator.url}/v23.0/{SENDER}/messages",
        json={**request.json, "recipient": "us.1"},
        headers={"Authorization": "Bearer test-meta-access-token"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 100


def test_131049_fails_recipient_limited_after_one_request_and_is_never_retried(
    ledger: Ledger, loop: SendLoop
) -> None:
    message_id = ledger.record_pending(validate_send_request(button_request("meta")))[0]
    transport = ScriptedTransport(meta_answer("error_131049", 400))
    result = attempt(ledger, loop, transport, [message_id])
    assert result.failed == {message_id: "recipient_limited"}
    assert not result.later  # no retry scheduled, at any delay
    record = ledger.get(message_id)
    assert (record.state, record.reason, record.attempts, record.next_attempt_at) == (
        State.FAILED,
        "recipient_limited",
        1,
        None,
    )
    assert record.provider_error_code == "131049"
    # A failed message is settled: another job for it sends nothing.
    again = attempt(ledger, loop, ScriptedTransport(), [message_id])
    assert again.skipped == [message_id]
    assert len(transport.requests) == 1


def test_131062_fails_recipient_unsupported(ledger: Ledger, loop: SendLoop) -> None:
    message_id = ledger.record_pending(validate_send_request(button_request("meta", to=BSUID)))[0]
    result = attempt(ledger, loop, ScriptedTransport(meta_answer("error_131062", 400)), [message_id])
    assert result.failed == {message_id: "recipient_unsupported"} and not result.later


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name"])
        writer.writerows(rows)
    return path


def test_a_campaign_counts_recipient_limited_apart(tmp_path: Path, ledger: Ledger, loop: SendLoop) -> None:
    source = write_csv(
        tmp_path / "people.csv",
        [["+255712345601", "Ann"], [BSUID, "Ben"], ["+255712345603", "Cy"], ["us.1", "Di"]],
    )
    settings = make_settings()
    campaign = api.create_campaign(
        source,
        TEMPLATE,
        provider="meta",
        sender=SENDER,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,
    )
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.recipient)
            .where(messages.c.campaign_id == campaign.id)
            .order_by(messages.c.campaign_row)
        ).all()
    ids = [row.id for row in rows]
    assert [row.recipient for row in rows] == ["+255712345601", BSUID, "+255712345603"]
    transport = ScriptedTransport(
        Outcome.accepted("wamid.1", 200),
        meta_answer("error_131049", 400),
        Outcome.accepted("wamid.3", 200),
    )
    attempt(ledger, loop, transport, ids)
    progress = api.progress(campaign.id, ledger=ledger, settings=settings)
    assert progress.failed_reasons == {"recipient_limited": 1}
    assert progress.as_json()["failed_reasons"] == {"recipient_limited": 1}
    assert progress.campaign.invalid == 1  # the malformed BSUID row
    report = tmp_path / "report.csv"
    api.report(campaign.id, report, ledger=ledger)
    lines = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(line["state"], line["reason"]) for line in lines] == [
        ("sent", ""),
        ("failed", "recipient_limited"),
        ("sent", ""),
        ("invalid", lines[3]["reason"]),
    ]
    assert lines[3]["reason"].startswith("phone: must be a BSUID")


def test_a_bsuid_row_in_a_campaign_for_a_provider_without_bsuids_is_a_row_error(
    tmp_path: Path, ledger: Ledger
) -> None:
    source = write_csv(tmp_path / "people.csv", [["+255712345601", "Ann"], [BSUID, "Ben"]])
    campaign = api.create_campaign(
        source,
        TEMPLATE,
        provider="bird",
        sender="channel-1",
        ledger=ledger,
        settings=make_settings(),
        dispatch=lambda *_: True,
    )
    assert (campaign.accepted, campaign.invalid) == (1, 1)
    report = tmp_path / "report.csv"
    api.report(campaign.id, report, ledger=ledger)
    lines = list(csv.DictReader(report.open(encoding="utf-8")))
    [refused] = [line for line in lines if line["state"] == "invalid"]
    assert refused["row"] == "2"
    assert "bird does not document BSUID recipients" in refused["reason"]


# --- the same rule at the HTTP API and the command line ---------------------------------------------


def test_the_api_takes_a_bsuid_for_meta_and_names_field_and_provider_otherwise(api: Api) -> None:
    accepted = api.client.post(
        "/v1/messages/interactive", json=button_request("meta", sender=SENDER, to=BSUID)
    )
    assert accepted.status_code == 202, accepted.text
    assert api.client.get(f"/v1/messages/{accepted.json()['message_id']}").json()["to"] == BSUID
    refused = api.client.post(
        "/v1/messages/interactive", json=button_request("bird", sender="channel-1", to=BSUID)
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "path": "to",
            "rule": "bird does not document BSUID recipients (business-scoped user ids); use a phone number",
        }
    ]
    spaced = button_request("meta", sender=SENDER)
    spaced["interactive"]["action"]["buttons"][0]["reply"]["id"] = "yes "  # type: ignore[index]
    answer = api.client.post("/v1/messages/interactive", json=spaced)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {
            "path": "interactive.action.buttons[0].reply.id",
            "rule": "must not start or end with whitespace (WhatsApp returns ids trimmed in replies)",
        }
    ]


def test_the_openapi_schema_describes_to_as_phone_or_bsuid(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    body = schema["paths"]["/v1/messages/interactive"]["post"]["requestBody"]["content"]["application/json"]
    variants = json.dumps(body["schema"]) + json.dumps(schema.get("components", {}))
    # Meta's variant takes a phone number or a BSUID; the others a phone number.
    assert "BSUID" in variants and "E.164" in variants


def test_the_cli_sends_to_a_bsuid_and_refuses_one_for_a_provider_without_them(
    tmp_path: Path, simulator: SimulatorServer, redis_url: str, queue_name: str, sim: httpx.Client
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env |= {
        "WADISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        **simulator.base_urls(),
        **SECRETS,
    }
    interactive = tmp_path / "interactive.json"
    interactive.write_text(json.dumps(TEMPLATE | {"body": {"text": "Ready?"}}), encoding="utf-8")

    def send(provider: str, sender: str) -> subprocess.CompletedProcess[str]:
        args = ["send", "--provider", provider, "--sender", sender, "--to", BSUID]
        return subprocess.run(
            [WADISPATCH, *args, "--interactive", str(interactive), "--eager"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    sent = send("meta", SENDER)
    assert sent.returncode == 0, sent.stderr
    [accepted] = sim.get("/_sim/stats").json()["accepted_log"]
    assert accepted["recipient"] == BSUID
    refused = send("zixflow", "phone-1")
    assert refused.returncode == 1
    assert "to: zixflow does not document BSUID recipients" in refused.stderr
