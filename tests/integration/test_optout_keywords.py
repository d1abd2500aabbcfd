"""Opt-out keywords end to end: a signed inbound "STOP" posted to the API's webhook endpoint puts
its writer on the suppression list and stops their campaign messages, queued ones included, on
SQLite and PostgreSQL; a number suppressed after its message was queued is stopped at the claim.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from wadispatch.api import create_app
from wadispatch.api.auth import create_api_key
from wadispatch.campaigns import api as campaigns
from wadispatch.campaigns import store
from wadispatch.ledger import Ledger
from wadispatch.messages import validate_send_request
from wadispatch.settings import Settings
from wadispatch.states import State
from wadispatch.window import RedisWindows

from tests.api_support import WEBHOOK_SECRETS, ApiServer, published, signature_headers, webhook_url
from tests.integration.test_campaign_cli import run
from tests.support import (
    CAMPAIGN_TEMPLATE,
    button_request,
    campaign_phone,
    make_settings,
    wait_for,
    write_recipients,
)

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
OTHER_SENDER = "2207264639145282"


def phone(index: int) -> str:
    return campaign_phone(index, prefix="+2558")


def meta_text(sender: str, number: str | None, typed: str, *, user_id: str | None = None) -> bytes:
    """Meta's webhook for a text message ``typed`` to the business number ``sender``, from a
    phone ``number`` and/or a business-scoped ``user_id``."""
    message: dict[str, Any] = {
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1767225630",
        "type": "text",
        "text": {"body": typed},
    }
    contact: dict[str, Any] = {"profile": {"name": "Ann"}}
    if number:
        message["from"] = contact["wa_id"] = number.lstrip("+")
    if user_id:
        message["from_user_id"] = contact["user_id"] = user_id
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": sender},
        "contacts": [contact],
        "messages": [message],
    }
    change = {"value": value, "field": "messages"}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(body).encode()


def meta_button(sender: str, number: str, title: str) -> bytes:
    """Meta's webhook for a tap on a quick-reply button titled ``title`` (of no known message)."""
    body = json.loads(meta_text(sender, number, ""))
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message |= {
        "type": "interactive",
        "context": {"id": "wamid.unknown"},
        "interactive": {"type": "button_reply", "button_reply": {"id": "opt-out", "title": title}},
    }
    return json.dumps(body).encode()


@dataclass
class OptOutApi:
    """The running API with the opt-out settings of a test, and what it runs on."""

    url: str
    key: str
    ledger: Ledger
    settings: Settings
    worker_env: dict[str, str]

    def get(self, path: str) -> dict[str, Any]:
        answer = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.key}"}, timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, raw: bytes) -> dict[str, int]:
        url = webhook_url(self.url, "meta")
        answer = httpx.post(url, content=raw, headers=signature_headers("meta", raw, url), timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.json()["outcomes"]


@pytest.fixture
def optout_api(
    ledger: Ledger, database_url: str, redis_url: str, queue_name: str, producer_app
) -> Iterator[Callable[..., Any]]:
    """Start the API with these settings (the ``opted_out`` event task configured)."""
    servers: list[tuple[ApiServer, RedisWindows, str]] = []

    def start(**overrides: Any) -> OptOutApi:
        run = uuid.uuid4().hex[:8]
        settings = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            window_prefix=f"wadispatch-test:win:{run}",
            event_tasks={"opted_out": "crm.on_opt_out"},
            event_queue=f"{queue_name}-events-{run}",
            **WEBHOOK_SECRETS,
            **overrides,
        )
        windows = RedisWindows.from_url(redis_url, settings)
        server = ApiServer(create_app(settings, ledger=ledger, windows=windows)).start()
        _, key = create_api_key(ledger, "tests")
        servers.append((server, windows, settings.event_queue))
        worker_env = {"WADISPATCH_WINDOW_PREFIX": settings.window_prefix}
        return OptOutApi(server.url, key, ledger, settings, worker_env)

    yield start
    for server, windows, queue in servers:
        server.stop()
        windows.redis.delete(queue)
        windows.redis.close()


def campaign(api: OptOutApi, tmp_path: Path, numbers: list[str], sender: str = SENDER) -> str:
    """A campaign to ``numbers``, its messages queued."""
    source = write_recipients(tmp_path / f"{uuid.uuid4().hex}.csv", numbers)
    return campaigns.create_campaign(
        source, CAMPAIGN_TEMPLATE, provider="meta", sender=sender, ledger=api.ledger, settings=api.settings
    ).id


def outcome(ledger: Ledger, campaign_id: str, number: str) -> tuple[State, str | None, list[State]]:
    """The state and reason of the campaign's message to ``number``, and its states in order."""
    [message_id] = [
        row.id for page in store.message_pages(ledger, campaign_id) for row in page if row.recipient == number
    ]
    record = ledger.get(message_id)
    return record.state, record.reason, [step.to_state for step in ledger.transitions(message_id)]


def sent(api: OptOutApi, campaign_id: str) -> int:
    return sum(
        count
        for (_, state, _), count in store.state_counts(api.ledger, campaign_id).items()
        if state == State.SENT.value
    )


def finished(api: OptOutApi, campaign_id: str) -> campaigns.CampaignProgress | None:
    progress = campaigns.progress(campaign_id, ledger=api.ledger, settings=api.settings)
    return progress if progress.done else None


def opt_out_counts() -> tuple[float, float]:
    """``wadispatch_opt_outs_total`` and ``wadispatch_opt_out_stopped_messages_total`` for Meta."""
    opt_outs = REGISTRY.get_sample_value("wadispatch_opt_outs_total", {"provider": "meta", "scope": "sender"})
    stopped = REGISTRY.get_sample_value("wadispatch_opt_out_stopped_messages_total", {"provider": "meta"})
    return opt_outs or 0.0, stopped or 0.0


def requested(sim: httpx.Client, number: str) -> int:
    """Requests the simulator accepted for ``number``."""
    log = sim.get("/_sim/stats", params={"log": "true"}).json()["accepted_log"]
    return sum(1 for entry in log if str(entry["recipient"]).lstrip("+") == number.lstrip("+"))


def test_a_stop_reply_mid_campaign_stops_every_later_message_to_that_number(
    tmp_path: Path, optout_api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    """A campaign paced at 3/s; the last recipient writes "Stop." after the first sends: their
    queued message fails ``suppressed`` and never reaches the provider, a later campaign skips
    them, a text that only contains the word changes nothing, the others are all sent."""
    api = optout_api()
    numbers = [phone(100 + index) for index in range(6)]
    stopper, chatty = numbers[-1], numbers[-2]
    first = campaign(api, tmp_path, numbers)
    start_worker(database_url, WADISPATCH_DEFAULT_RATE="3", **api.worker_env)
    wait_for(
        lambda: campaigns.progress(first, ledger=api.ledger, settings=api.settings).states.get("sent"), 30
    )

    assert api.post(meta_text(SENDER, chatty, "please don't stop")) == {"inbound": 1}
    assert api.post(meta_text(SENDER, stopper, " Stop. ")) == {"inbound": 1}
    # At once: the queued message is failed, before the worker gets to it.
    state, reason, steps = outcome(api.ledger, first, stopper)
    assert (state, reason, steps) == (State.FAILED, "suppressed", [State.PENDING, State.FAILED])
    [entry] = store.list_suppressions(api.ledger, recipient=stopper)
    assert (entry.sender, entry.source, entry.reason) == (SENDER, "keyword", "opt-out keyword STOP")
    assert store.list_suppressions(api.ledger, recipient=chatty) == []
    # The user's code hears of it: the stopped message's id, the keyword; no phone number.
    [(task, (message_id, event))] = published(api.settings.redis_url, api.settings.event_queue)
    assert (task, event["type"], event["keyword"], event["scope"]) == (
        "crm.on_opt_out",
        "opted_out",
        "STOP",
        "sender",
    )
    assert event["stopped_messages"] == 1 and api.ledger.get(message_id).recipient == stopper
    assert stopper.lstrip("+") not in json.dumps(event)

    done = wait_for(lambda: finished(api, first), 30)
    assert done.states == {"sent": 5, "failed": 1} and done.failed_reasons == {"suppressed": 1}
    assert done.suppressed_by_keyword == 1 and done.as_json()["suppressed_by_keyword"] == 1
    assert requested(sim, stopper) == 0 and requested(sim, chatty) == 1
    # A later campaign skips the number when it reads it.
    later = campaigns.get_campaign(campaign(api, tmp_path, [stopper, phone(200)]), ledger=api.ledger)
    assert (later.accepted, later.suppressed) == (1, 1)


@pytest.mark.parametrize("scope", ["sender", "all"])
def test_the_scope_says_whether_other_senders_campaigns_stop_too(
    scope: str, tmp_path: Path, optout_api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    """Two campaigns from two business numbers, queued, no worker yet; the recipient taps a
    quick-reply button titled "STOP" on the first number: scope ``sender`` stops that number's
    message only, ``all`` both; then the workers send what is left."""
    api = optout_api(opt_out_scope=scope)
    stopper, other = phone(300 + len(scope)), phone(400 + len(scope))
    ours = campaign(api, tmp_path, [stopper, other])
    theirs = campaign(api, tmp_path, [stopper], sender=OTHER_SENDER)

    # A reply to a message the ledger does not know (yet) is kept; the opt-out applies at once.
    assert api.post(meta_button(SENDER, stopper, "STOP")) == {"kept": 1}
    assert outcome(api.ledger, ours, stopper)[:2] == (State.FAILED, "suppressed")
    expected = (State.FAILED, "suppressed") if scope == "all" else (State.PENDING, None)
    assert outcome(api.ledger, theirs, stopper)[:2] == expected
    [entry] = store.list_suppressions(api.ledger, recipient=stopper)
    assert (entry.sender, entry.source) == (SENDER if scope == "sender" else None, "keyword")
    [(_, (_, event))] = published(api.settings.redis_url, api.settings.event_queue)
    assert (event["scope"], event["stopped_messages"]) == (scope, 2 if scope == "all" else 1)

    start_worker(database_url, **api.worker_env)
    for campaign_id in (ours, theirs):
        wait_for(
            lambda c=campaign_id: campaigns.progress(c, ledger=api.ledger, settings=api.settings).done, 30
        )
    assert outcome(api.ledger, ours, other)[0] is State.SENT
    assert outcome(api.ledger, theirs, stopper)[0] is (State.FAILED if scope == "all" else State.SENT)
    assert requested(sim, stopper) == (0 if scope == "all" else 1)


def test_a_number_suppressed_after_its_message_was_queued_is_stopped_at_the_claim(
    tmp_path: Path, optout_api, start_worker, database_url: str, sim: httpx.Client
) -> None:
    """``suppress add`` does not sweep the queue, and a keyword racing a batch being read can
    miss a message not committed yet: the claim checks the list, so neither goes out."""
    api = optout_api()
    late, other = phone(500), phone(501)
    campaign_id = campaign(api, tmp_path, [late, other])
    campaigns.suppress([late], sender=SENDER, ledger=api.ledger)
    assert outcome(api.ledger, campaign_id, late)[0] is State.PENDING

    start_worker(database_url, **api.worker_env)
    done = wait_for(
        lambda: (p := campaigns.progress(campaign_id, ledger=api.ledger, settings=api.settings)).done and p,
        30,
    )
    assert outcome(api.ledger, campaign_id, late) == (
        State.FAILED,
        "suppressed",
        [State.PENDING, State.FAILED],
    )
    assert done.failed_reasons == {"suppressed": 1} and done.suppressed_by_keyword == 0  # not by keyword
    assert requested(sim, late) == 0 and requested(sim, other) == 1


def test_with_no_keywords_a_stop_changes_nothing(tmp_path: Path, optout_api) -> None:
    api = optout_api(opt_out_keywords="none")
    number = phone(600)
    campaign_id = campaign(api, tmp_path, [number])
    assert api.post(meta_text(SENDER, number, "STOP")) == {"inbound": 1}
    assert outcome(api.ledger, campaign_id, number)[0] is State.PENDING
    assert store.list_suppressions(api.ledger, recipient=number) == []
    assert published(api.settings.redis_url, api.settings.event_queue) == []


def test_a_stop_from_a_user_id_stops_the_messages_to_the_phone_the_ledger_knows_for_it(
    tmp_path: Path, optout_api, database_url: str
) -> None:
    """A username user writes by business-scoped user id alone: the phone number the ledger
    learned for that id (from an earlier webhook naming both) is suppressed and stopped too."""
    api = optout_api()
    number, user_id = phone(700), "US.13491208655302741918"
    campaign_id = campaign(api, tmp_path, [number])
    assert api.post(meta_text(SENDER, number, "hi", user_id=user_id)) == {"inbound": 1}
    assert outcome(api.ledger, campaign_id, number)[0] is State.PENDING

    opt_outs, stopped = opt_out_counts()
    assert api.post(meta_text(SENDER, None, "STOP", user_id=user_id)) == {"inbound": 1}
    assert outcome(api.ledger, campaign_id, number)[:2] == (State.FAILED, "suppressed")
    assert opt_out_counts() == (opt_outs + 1, stopped + 1)  # the API's metrics (this process)
    listed = {(entry.sender, entry.recipient, entry.source) for entry in store.list_suppressions(api.ledger)}
    assert listed == {(SENDER, number, "keyword"), (SENDER, user_id, "keyword")}
    # Writing it again adds nothing and is not announced twice.
    assert api.post(meta_text(SENDER, None, "stop", user_id=user_id)) == {"inbound": 1}
    assert len(store.list_suppressions(api.ledger)) == 2
    assert len(published(api.settings.redis_url, api.settings.event_queue)) == 1
    assert opt_out_counts() == (opt_outs + 1, stopped + 1)

    # Reported over HTTP and on the command line.
    over_http = api.get(f"/v1/campaigns/{campaign_id}")
    assert (over_http["failed_reasons"], over_http["suppressed_by_keyword"]) == ({"suppressed": 1}, 1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env |= {"WADISPATCH_DATABASE_URL": database_url, "WADISPATCH_REDIS_URL": api.settings.redis_url}
    shown = run(env, tmp_path, "campaign", "status", campaign_id)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"of which by opt-out keyword\s*│\s*1", shown.stdout), shown.stdout


def test_a_message_in_flight_at_the_keyword_that_comes_back_for_a_retry_is_not_sent_again(
    tmp_path: Path, ledger: Ledger, database_url: str
) -> None:
    """The sweep leaves a message a worker holds (``sending``); if its attempt ends in a retry,
    the next claim refuses it and it fails ``suppressed`` (ledger level, no worker)."""
    settings = make_settings(database_url=database_url)
    number = phone(800)
    source = write_recipients(tmp_path / "one.csv", [number])
    campaign_id = campaigns.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        ledger=ledger,
        settings=settings,
        dispatch=lambda *_: True,
    ).id
    [message_id] = [row.id for page in store.message_pages(ledger, campaign_id) for row in page]
    assert [record.id for record in ledger.claim_many(ledger.load_pending([message_id]))] == [message_id]

    done = store.opt_out(
        ledger, [number], provider="meta", sender=SENDER, reason="opt-out keyword STOP", source="keyword"
    )
    assert (done.added, done.stopped) == (1, [])  # in flight: left to its worker
    ledger.transition(message_id, State.SENDING, State.PENDING, reason="provider_unavailable")

    assert ledger.claim_many(ledger.load_pending([message_id])) == []
    assert store.fail_suppressed(ledger, [message_id]) == [message_id]
    record = ledger.get(message_id)
    assert (record.state, record.reason, record.attempts) == (State.FAILED, "suppressed", 1)
    # Outside campaigns, the list does not hold a message back.

    plain, _ = ledger.record_pending(validate_send_request(button_request("meta", sender=SENDER, to=number)))
    assert [record.id for record in ledger.claim_many(ledger.load_pending([plain]))] == [plain]
