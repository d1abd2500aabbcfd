"""Secrets and personal data after a real run: nowhere in logs, task arguments, Flower, the ledger
or the command line's output.

A worker with known credentials (tests/support.py SECRETS) sends through all five providers,
with a failure, a retry and a poison job, watched by a real Flower; then every place the issue
names is searched for the credentials and for the recipients' phone numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.integration.test_flower import AUTH
from tests.integration.test_flower import flower as flower_url  # noqa: F401 (a fixture)
from tests.support import SECRETS, button_request, make_settings, wait_for
from workers.app import RECONCILE_TASK, SEND_BATCH_TASK
from workers.engine import send_batch
from workers.ledger import Ledger, metadata
from workers.messages import validate_send_request
from workers.producer import enqueue, enqueue_many
from workers.providers import Outcome, ProviderAdapter, ProviderRequest
from workers.ratelimit import Unlimited
from workers.states import State
from workers.transport import SendLoop

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
