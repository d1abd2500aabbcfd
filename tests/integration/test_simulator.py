"""The provider simulator over real HTTP: every provider's answers, limits, faults, scripts, stats
and webhooks, against a :class:`SimulatorServer` on 127.0.0.1 with no latency."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from wadispatch.simulator import SimulatorConfig, SimulatorServer, load_config, recipient_fate
from wadispatch.simulator.latency import LatencySampler
from wadispatch.simulator.providers import make_dialects
from wadispatch.simulator.providers.base import Choice, SendInfo, Sent

pytestmark = pytest.mark.integration

PROVIDERS = ("briq", "bird", "zixflow", "wacr", "meta")
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "webhooks"
TO = "255712345678"
SENDER = {
    "briq": "255700000001",
    "bird": "channel-1",
    "zixflow": "phone-1",
    "wacr": "default",
    "meta": "1107264639145282",
}
BUTTONS: dict[str, Any] = {
    "type": "button",
    "body": {"text": "Did this resolve your issue?"},
    "footer": {"text": "Reply below"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}},
        ]
    },
}
LIST: dict[str, Any] = {
    "type": "list",
    "header": {"type": "text", "text": "What would you like to buy today?"},
    "body": {"text": "Tap Main Menu and choose"},
    "action": {
        "button": "Main Menu",
        "sections": [
            {"title": "Bundles", "rows": [{"id": "row-1", "title": "Buy bundles"}]},
            {
                "title": "Airtime",
                "rows": [{"id": "row-2", "title": "Buy airtime", "description": "Top up"}],
            },
        ],
    },
}
CHOICES = {"button": {"yes": "Yes", "no": "No"}, "list": {"row-1": "Buy bundles", "row-2": "Buy airtime"}}


# --- building each provider's documented request -------------------------------------------------


def _bird_interactive(interactive: dict[str, Any]) -> dict[str, Any]:
    if interactive["type"] != "button":
        return interactive
    flat = [
        {"id": b["reply"]["id"], "type": "reply", "title": b["reply"]["title"]}
        for b in interactive["action"]["buttons"]
    ]
    return {**interactive, "action": {"buttons": flat}}


def _wacr_body(interactive: dict[str, Any], to: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phone": f"+{to}",
        "type": interactive["type"],
        "body_text": interactive["body"]["text"],
    }
    if "header" in interactive:
        body["header_text"] = interactive["header"]["text"]
    action = interactive["action"]
    if interactive["type"] == "button":
        body["buttons"] = [b["reply"] for b in action["buttons"]]
    else:
        body["list_button_text"] = action["button"]
        body["sections"] = action["sections"]
    return body


def build(
    provider: str,
    kind: str = "button",
    *,
    to: str = TO,
    sender: str | None = None,
    credential: str | None = "secret-key",
    post_back_url: str | None = None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The (path, headers, JSON body) of a send, exactly as docs/providers.md describes it."""
    interactive = BUTTONS if kind == "button" else LIST
    sender = sender or SENDER[provider]
    headers: dict[str, str] = {}
    if provider == "briq":
        if credential is not None:
            headers["X-API-Key"] = credential
        return (
            "/v1/whatsapp/messages/interactive",
            headers,
            {"to": to, "sender": sender, "interactive": interactive},
        )
    if provider == "bird":
        if credential is not None:
            headers["Authorization"] = f"AccessKey {credential}"
        body = {
            "to": f"+{to}",
            "from": sender,
            "type": "interactive",
            "content": {"interactive": _bird_interactive(interactive)},
        }
        return "/v1/send", headers, body
    if provider == "zixflow":
        if credential is not None:
            headers.update({"x-api-key": credential, "x-workspace-id": "workspace-1"})
        endpoint = "reply-buttons" if kind == "button" else "list"
        path = f"/api/ingest/whatsapp/v1/message/interactive/{endpoint}/send"
        body = {"recipient": to, "phone_id": sender, "interactive": interactive, "post_back_data": "wd-msg-1"}
        if post_back_url:
            body["post_back_url"] = post_back_url
        return path, headers, body
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    if provider == "wacr":
        return "/messages/interactive", headers, _wacr_body(interactive, to)
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": interactive,
    }
    return f"/v23.0/{sender}/messages", headers, body


def send(client: httpx.Client, provider: str, kind: str = "button", **options: Any) -> httpx.Response:
    path, headers, body = build(provider, kind, **options)
    return client.post(path, json=body, headers=headers)


# --- fixtures ---------------------------------------------------------------------------------------


FAST = {"latency": "fixed", "latency_ms": 0.0, "callbacks": False}


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorServer]]:
    """Start simulators with no latency (plus the given knobs); all stopped after the test."""
    servers: list[SimulatorServer] = []

    def start(**knobs: Any) -> SimulatorServer:
        server = SimulatorServer(SimulatorConfig(**{**FAST, **knobs})).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def simple(start_sim: Callable[..., SimulatorServer]) -> SimulatorServer:
    return start_sim()


@pytest.fixture
def client(simple: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simple.url, timeout=5) as http:
        yield http


class Receiver:
    """A webhook receiver on loopback that records every POST (path, headers, raw body)."""

    def __init__(self, status: int = 200) -> None:
        self.events: list[tuple[str, dict[str, str], bytes]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._changed:
                    receiver.events.append((self.path, dict(self.headers.items()), raw))
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.events)} of {count} webhooks arrived"
                self._changed.wait(left)
            return list(self.events)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# --- documented success answers ---------------------------------------------------------------------


def check_accepted(provider: str, response: httpx.Response) -> str:
    """Assert the provider's documented success answer; return its provider message id."""
    body = response.json()
    if provider == "briq":
        assert response.status_code == 202
        assert body["success"] is True and body["errors"] is None and body["request_id"]
        data = body["data"]
        assert set(data) == {
            "message_id",
            "conversation_id",
            "sender_id",
            "sender",
            "provider_message_id",
            "status",
        }
        assert data["status"] == "pending" and data["sender"] == SENDER["briq"]
        return data["message_id"]
    if provider == "bird":
        assert response.status_code == 202
        assert body["status"] == "accepted" and len(body["id"]) == 32
        return body["id"]
    if provider == "zixflow":
        assert response.status_code == 200
        assert body["success"] is True and body["message"] == "WhatsApp request queued successfully"
        return body["request_id"]
    if provider == "wacr":
        assert response.status_code == 200
        assert body["success"] is True and body["data"]["status"] == "sent"
        assert body["data"]["phone"] == TO
        return body["data"]["message_id"]
    assert response.status_code == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": TO, "wa_id": TO}]
    assert body["messages"][0]["id"].startswith("wamid.")
    return body["messages"][0]["id"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_buttons_and_list_get_the_documented_success_answer(
    provider: str, simple: SimulatorServer, client: httpx.Client
) -> None:
    ids = [check_accepted(provider, send(client, provider, kind)) for kind in ("button", "list")]

    stats = client.get("/_sim/stats").json()
    assert stats["requests"][provider] == 2
    assert stats["answers"][provider]["accepted"] == 2
    log = stats["accepted_log"]
    assert [entry["provider_message_id"] for entry in log] == ids
    assert [entry["kind"] for entry in log] == ["button", "list"]
    assert {(entry["provider"], entry["sender"], entry["recipient"]) for entry in log} == {
        (provider, SENDER[provider], TO)
    }
    assert log[0]["body"] == build(provider, "button")[2]
    if provider == "zixflow":
        assert log[0]["post_back_data"] == "wd-msg-1"


def test_briq_conversation_id_targets_the_same_thread(client: httpx.Client) -> None:
    first = send(client, "briq").json()["data"]
    again = client.post(
        "/v1/whatsapp/messages/interactive",
        json={"conversation_id": first["conversation_id"], "interactive": BUTTONS},
        headers={"X-API-Key": "k"},
    )
    assert again.status_code == 202
    assert again.json()["data"]["conversation_id"] == first["conversation_id"]
    entry = client.get("/_sim/stats").json()["accepted_log"][-1]
    assert (entry["sender"], entry["recipient"]) == (SENDER["briq"], TO)


def test_zixflow_refuses_a_list_on_the_buttons_path(client: httpx.Client) -> None:
    path, headers, body = build("zixflow", "list")
    response = client.post(path.replace("/list/", "/reply-buttons/"), json=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "message": "Validation failed: interactive.type must be button on the reply-buttons path",
    }


# --- throughput limits ------------------------------------------------------------------------------


RATE_LIMIT_MARK = {
    "briq": lambda body: body["errors"][0]["code"] == "RATE_LIMITED",
    "bird": lambda body: body["errors"][0]["code"] == 429,
    "zixflow": lambda body: body["success"] is False,
    "wacr": lambda body: body["error"]["code"] == "RATE_LIMIT_EXCEEDED",
    "meta": lambda body: body["error"]["code"] == 130429,
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_sender_over_its_limit_gets_429_with_retry_after(
    provider: str, start_sim: Callable[..., SimulatorServer]
) -> None:
    server = start_sim(sender_limit=5)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        answers = [send(http, provider) for _ in range(8)]
        other = send(http, provider, sender="another-sender") if provider != "wacr" else None
        stats = http.get("/_sim/stats?log=0").json()

    assert [a.status_code for a in answers].count(429) == 3
    assert all(a.status_code in (200, 202) for a in answers[:5])
    for refused in answers[5:]:
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert RATE_LIMIT_MARK[provider](refused.json())
    if other is not None:
        assert other.status_code in (200, 202)  # the limit is per sender
    assert stats["limit_violations"] == {"sender": 3, "pair": 0}
    assert stats["limit_violations_by_sender"] == {provider: {SENDER[provider]: 3}}
    assert stats["max_rate"][provider][SENDER[provider]] == 5  # refused requests are not sends
    assert stats["max_request_rate"][provider][SENDER[provider]] == 8
    assert stats["answers"][provider]["rate_limited"] == 3
    assert "accepted_log" not in stats


def test_the_limit_frees_up_after_the_window(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(sender_limit=2)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        codes = [send(http, "meta").status_code for _ in range(3)]
        time.sleep(1.05)
        later = send(http, "meta").status_code
    assert (codes, later) == ([200, 200, 429], 200)


def test_meta_pair_limit_answers_131056(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(sender_limit=None, pair_limit=1, pair_window_seconds=2.0)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        first = send(http, "meta")
        second = send(http, "meta")
        other_recipient = send(http, "meta", to="255712345679")
        stats = http.get("/_sim/stats?log=0").json()
    assert first.status_code == 200 and other_recipient.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == 131056
    assert second.headers["Retry-After"] == "2"
    assert stats["limit_violations"] == {"sender": 0, "pair": 1}


# --- recipients' fates ------------------------------------------------------------------------------


def window_closed_answer(provider: str, response: httpx.Response) -> bool:
    body = response.json()
    return {
        "briq": lambda: response.status_code == 422 and body["errors"][0]["code"] == "WINDOW_CLOSED",
        "bird": lambda: body["errors"][0]["code"] == 470,
        "zixflow": lambda: response.status_code == 400 and "24-hour window" in body["message"],
        "wacr": lambda: (
            response.status_code == 500
            and body["error"]["code"] == "MESSAGE_SEND_FAILED"
            and "131047" in body["error"]["message"]
        ),
        "meta": lambda: body["error"]["code"] == 131047,
    }[provider]()


def opted_out_answer(provider: str, response: httpx.Response) -> bool:
    body = response.json()
    return {
        "briq": lambda: response.status_code == 422 and body["errors"][0]["code"] == "OPTED_OUT",
        "bird": lambda: body["errors"][0]["code"] == 131050,
        "zixflow": lambda: response.status_code == 400 and "opted out" in body["message"],
        "wacr": lambda: response.status_code == 403 and body["error"]["code"] == "CONTACT_OPTED_OUT",
        "meta": lambda: body["error"]["code"] == 131050,
    }[provider]()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_listed_recipients_get_window_closed_and_opted_out(
    provider: str, start_sim: Callable[..., SimulatorServer]
) -> None:
    server = start_sim(window_closed_recipients=["+255 711 000 001"], opted_out_recipients=["255711000002"])
    with httpx.Client(base_url=server.url, timeout=5) as http:
        closed = send(http, provider, to="255711000001")
        opted = send(http, provider, to="255711000002")
        fine = send(http, provider, to="255711000003")
        stats = http.get("/_sim/stats").json()
    assert window_closed_answer(provider, closed), closed.text
    assert opted_out_answer(provider, opted), opted.text
    assert fine.status_code in (200, 202)
    assert stats["answers"][provider]["window_closed"] == 1
    assert stats["answers"][provider]["opted_out"] == 1
    assert [entry["recipient"] for entry in stats["accepted_log"]] == ["255711000003"]


def test_recipient_fate_is_a_stable_share_that_the_server_follows(
    start_sim: Callable[..., SimulatorServer],
) -> None:
    config = SimulatorConfig(window_closed_share=0.2, opted_out_share=0.1, seed=7)
    numbers = [f"2557{n:08d}" for n in range(2000)]
    fates = [recipient_fate(number, config) for number in numbers]
    assert fates == [recipient_fate(number, config) for number in numbers]  # deterministic
    assert 300 <= fates.count("window_closed") <= 500
    assert 120 <= fates.count("opted_out") <= 280
    reseeded = [recipient_fate(number, config.updated({"seed": 8})) for number in numbers]
    assert reseeded != fates

    server = start_sim(sender_limit=None, window_closed_share=0.2, opted_out_share=0.1, seed=7)
    expected = {"ok": 200, "window_closed": 400, "opted_out": 400}
    with httpx.Client(base_url=server.url, timeout=5) as http:
        for number, fate in list(zip(numbers, fates, strict=True))[:60]:
            response = send(http, "meta", to=number)
            assert response.status_code == expected[fate]
            if fate != "ok":
                assert (
                    response.json()["error"]["code"] == {"window_closed": 131047, "opted_out": 131050}[fate]
                )
        assert http.get("/_sim/fate", params={"recipient": numbers[0]}).json()["fate"] == fates[0]


# --- credentials and validation ---------------------------------------------------------------------


AUTH_MARK = {
    "briq": lambda body: body["errors"][0]["code"] == "UNAUTHORIZED",
    "bird": lambda body: body["errors"][0]["code"] == 2,
    "zixflow": lambda body: body["success"] is False,
    "wacr": lambda body: body["error"]["code"] == "UNAUTHORIZED",
    "meta": lambda body: body["error"]["code"] == 190,
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rejected_or_missing_credentials_get_401(provider: str, client: httpx.Client) -> None:
    for credential in ("invalid", None):
        response = send(client, provider, credential=credential)
        assert response.status_code == 401
        assert AUTH_MARK[provider](response.json())
    assert client.get("/_sim/stats").json()["answers"][provider]["auth"] == 2


def test_zixflow_needs_its_workspace_header(client: httpx.Client) -> None:
    path, headers, body = build("zixflow")
    del headers["x-workspace-id"]
    assert client.post(path, json=body, headers=headers).status_code == 401


INVALID_CASES = {
    "briq": (
        lambda body: body.pop("to"),
        422,
        lambda b: (
            b["errors"][0]
            == {"code": "VALIDATION_ERROR", "message": "to is required (or conversation_id)", "field": "to"}
        ),
    ),
    "bird": (
        lambda body: body["content"]["interactive"]["action"]["buttons"][0].update(type="url"),
        422,
        lambda b: (
            b["errors"][0]["code"] == 10
            and b["errors"][0]["parameter"] == "content.interactive.action.buttons[0].type"
        ),
    ),
    "zixflow": (
        lambda body: body.update(recipient="+255712345678"),
        400,
        lambda b: b["success"] is False and "recipient" in b["message"],
    ),
    "wacr": (
        lambda body: body.pop("body_text"),
        422,
        lambda b: b["error"] == {"code": "VALIDATION_ERROR", "message": "Body text is required"},
    ),
    "meta": (
        lambda body: body.update(messaging_product="sms"),
        400,
        lambda b: b["error"]["code"] == 100 and "messaging_product" in b["error"]["error_data"]["details"],
    ),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_malformed_body_gets_the_providers_invalid_answer(provider: str, client: httpx.Client) -> None:
    path, headers, body = build(provider)
    breaks, status, matches = INVALID_CASES[provider]
    breaks(body)
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status
    assert matches(response.json()), response.text
    not_json = client.post(
        path, content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert not_json.status_code == status
    assert client.get("/_sim/stats").json()["answers"][provider]["invalid"] == 2


def test_whatsapp_limits_are_checked(client: httpx.Client) -> None:
    path, headers, body = build("meta")
    body["interactive"] = json.loads(json.dumps(BUTTONS))
    body["interactive"]["action"]["buttons"] *= 2  # 4 buttons
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 400
    assert (
        response.json()["error"]["error_data"]["details"] == "interactive.action.buttons: at most 3 buttons"
    )


# --- faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status"), [("briq", 503), ("bird", 500), ("zixflow", 503), ("wacr", 500), ("meta", 503)]
)
def test_error_rate_one_answers_every_request_with_a_5xx(
    provider: str, status: int, start_sim: Callable[..., SimulatorServer]
) -> None:
    server = start_sim(error_rate=1.0)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        codes = [send(http, provider).status_code for _ in range(3)]
        stats = http.get("/_sim/stats").json()
    assert codes == [status] * 3
    assert stats["answers"][provider]["transient"] == 3 and stats["accepted_log"] == []


def test_fault_rates_are_shares_of_the_requests(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(error_rate=0.3, drop_rate=0.2, sender_limit=None, seed=3)
    outcomes = {"ok": 0, "5xx": 0, "dropped": 0}
    with httpx.Client(base_url=server.url, timeout=5) as http:
        for _ in range(300):
            try:
                code = send(http, "meta").status_code
            except httpx.RemoteProtocolError:
                outcomes["dropped"] += 1
                continue
            outcomes["5xx" if code >= 500 else "ok"] += 1
        answers = http.get("/_sim/stats?log=0").json()["answers"]["meta"]
    assert 35 <= outcomes["dropped"] <= 90 and 60 <= outcomes["5xx"] <= 120
    assert (answers["drop"], answers["transient"], answers["accepted"]) == (
        outcomes["dropped"],
        outcomes["5xx"],
        outcomes["ok"],
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_storm_answers_a_share_with_the_providers_rate_limit_answer(
    provider: str, start_sim: Callable[..., SimulatorServer]
) -> None:
    server = start_sim(rate_limited_rate=0.3, sender_limit=None, seed=5)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        answers = [send(http, provider) for _ in range(300)]
        stats = http.get("/_sim/stats").json()
    refused = [answer for answer in answers if answer.status_code == 429]
    assert 60 <= len(refused) <= 120
    assert all(answer.status_code in (200, 202) for answer in answers if answer.status_code != 429)
    for answer in refused:
        assert answer.headers["Retry-After"] == "1"
        assert RATE_LIMIT_MARK[provider](answer.json())
    assert stats["answers"][provider]["rate_limited"] == len(refused)
    assert stats["answers"][provider]["accepted"] == len(stats["accepted_log"]) == 300 - len(refused)
    assert stats["limit_violations"] == {"sender": 0, "pair": 0}  # a storm, not a limit


def test_a_429_storm_has_its_own_retry_after_and_is_checked_with_the_faults(
    start_sim: Callable[..., SimulatorServer],
) -> None:
    server = start_sim(rate_limited_rate=1.0, rate_limited_retry_after=2.5)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        refused = send(http, "meta")
        http.put("/_sim/config", json={"rate_limited_rate": 0.0}).raise_for_status()
        accepted = send(http, "meta")
        too_much = http.put("/_sim/config", json={"rate_limited_rate": 0.6, "error_rate": 0.5})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2.5"
    assert refused.json()["error"]["code"] == 130429
    assert accepted.status_code == 200
    assert too_much.status_code == 422
    with pytest.raises(ValueError, match="rate_limited_rate"):
        SimulatorConfig(rate_limited_rate=0.5, drop_rate=0.6)


def test_a_hung_request_times_the_client_out(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(hang_rate=1.0, hang_seconds=0.6)
    with httpx.Client(base_url=server.url, timeout=0.2) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            send(http, "wacr")
        assert time.monotonic() - started < 0.5
    with httpx.Client(base_url=server.url, timeout=5) as http:
        started = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):  # after hang_seconds: closed, no answer
            send(http, "wacr")
        assert time.monotonic() - started >= 0.55
        assert http.get("/_sim/stats").json()["answers"]["wacr"]["hang"] == 2


def test_a_dropped_connection_has_no_answer(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(drop_rate=1.0)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            send(http, "briq")
        assert http.get("/_sim/stats").json()["answers"]["briq"]["drop"] == 1


def test_stop_is_bounded_with_a_request_hanging(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(hang_rate=1.0, hang_seconds=60)
    failures: list[BaseException] = []

    def hang() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                send(http, "meta")
        except httpx.HTTPError as exc:
            failures.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    deadline = time.monotonic() + 5
    while server.stats(include_log=False)["answers"]["meta"]["hang"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert len(failures) == 1 and not thread.is_alive()


def test_latency_is_applied_and_drawn_from_the_distribution(
    start_sim: Callable[..., SimulatorServer],
) -> None:
    server = start_sim(latency="fixed", latency_ms=150)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        started = time.monotonic()
        assert send(http, "bird").status_code == 202
        assert time.monotonic() - started >= 0.15

    sampler = LatencySampler(SimulatorConfig(), random.Random(1))
    draws = sorted(sampler.draw() for _ in range(20_000))
    assert 0.14 <= statistics.median(draws) <= 0.16
    assert 0.52 <= draws[int(len(draws) * 0.99)] <= 0.68
    uniform = LatencySampler(
        SimulatorConfig(latency="uniform", latency_min_ms=10, latency_max_ms=20), random.Random(1)
    )
    assert all(0.01 <= uniform.draw() <= 0.02 for _ in range(1000))


# --- the script queue -------------------------------------------------------------------------------


def test_scripted_answers_come_in_order_then_normal_behaviour_resumes(client: httpx.Client) -> None:
    kinds = ["rate_limited", "transient", "auth", "window_closed", "opted_out", "invalid", "accepted"]
    answers = [{"kind": "rate_limited", "retry_after": 3}] + [{"kind": k} for k in kinds[1:]]
    queued = client.post("/_sim/script", json={"provider": "briq", "answers": answers})
    assert queued.json() == {"queued": 7, "pending": {"briq": 7}}

    got = [send(client, "briq") for _ in range(8)]
    codes = [r.json()["errors"][0]["code"] if r.json()["errors"] else r.status_code for r in got]
    assert codes == [
        "RATE_LIMITED",
        "SERVICE_UNAVAILABLE",
        "UNAUTHORIZED",
        "WINDOW_CLOSED",
        "OPTED_OUT",
        "VALIDATION_ERROR",
        202,
        202,
    ]
    assert [r.status_code for r in got[:6]] == [429, 503, 401, 422, 422, 422]
    assert got[0].headers["Retry-After"] == "3"
    stats = client.get("/_sim/stats").json()
    assert stats["answers"]["briq"] == {
        "accepted": 2,
        "rate_limited": 1,
        "transient": 1,
        "auth": 1,
        "window_closed": 1,
        "opted_out": 1,
        "invalid": 1,
        "hang": 0,
        "drop": 0,
    }
    assert stats["script_pending"] == {}


def test_scripted_hang_and_drop(client: httpx.Client, simple: SimulatorServer) -> None:
    simple.script("meta", [{"kind": "hang", "seconds": 0.3}, "drop"])
    path, headers, body = build("meta")
    with pytest.raises(httpx.ReadTimeout):
        client.post(path, json=body, headers=headers, timeout=0.1)
    with pytest.raises(httpx.RemoteProtocolError):
        send(client, "meta")
    assert send(client, "meta").status_code == 200


def test_a_script_can_be_scoped_to_one_sender(client: httpx.Client) -> None:
    client.post(
        "/_sim/script", json={"provider": "meta", "sender": "2222", "answers": [{"kind": "auth"}]}
    ).raise_for_status()
    assert send(client, "meta").status_code == 200  # another sender: untouched
    assert send(client, "meta", sender="2222").status_code == 401
    assert send(client, "meta", sender="2222").status_code == 200


def test_a_bad_script_is_refused(client: httpx.Client) -> None:
    response = client.post("/_sim/script", json={"provider": "briq", "answers": [{"kind": "teapot"}]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["answers", 0, "kind"]


# --- stats, reset and config at run time ------------------------------------------------------------


def test_reset_clears_counters_log_script_and_limits(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(sender_limit=1)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        send(http, "bird")
        assert send(http, "bird").status_code == 429
        http.post("/_sim/script", json={"provider": "bird", "answers": [{"kind": "auth"}]})
        assert http.post("/_sim/reset").json() == {"ok": True}
        stats = http.get("/_sim/stats").json()
        assert stats["requests_total"] == 0 and stats["accepted_log"] == []
        assert stats["limit_violations"] == {"sender": 0, "pair": 0}
        assert stats["script_pending"] == {} and stats["max_rate"] == {}
        assert send(http, "bird").status_code == 202  # no script, and the window is empty again


def test_config_can_be_read_and_changed_at_run_time(client: httpx.Client) -> None:
    assert client.get("/_sim/config").json()["sender_limit"] == 80
    changed = client.put("/_sim/config", json={"sender_limit": 1, "rejected_credentials": ["nope"]})
    assert changed.status_code == 200
    assert changed.json()["sender_limit"] == 1 and changed.json()["latency_ms"] == 0.0
    assert send(client, "meta", credential="invalid").status_code == 200
    assert send(client, "meta", credential="nope").status_code == 401
    assert send(client, "meta").status_code == 429
    refused = client.put("/_sim/config", json={"error_rate": 2})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["error_rate"]
    assert client.put("/_sim/config", json={"no_such_knob": 1}).status_code == 422


def test_config_files_and_the_server_helpers(tmp_path: Path, simple: SimulatorServer) -> None:
    toml = tmp_path / "sim.toml"
    toml.write_text(
        '[simulator]\nlatency = "uniform"\nsender_limit = 10\nopted_out_recipients = ["+1 555 0100"]\n'
    )
    loaded = load_config(toml)
    assert (loaded.latency, loaded.sender_limit, loaded.opted_out_recipients) == ("uniform", 10, ["15550100"])
    as_json = tmp_path / "sim.json"
    as_json.write_text(json.dumps({"pair_limit": 2, "webhook_url": "http://127.0.0.1:9/hooks"}))
    assert load_config(as_json).pair_limit == 2

    assert simple.base_urls() == {
        "WADISPATCH_BRIQ_BASE_URL": simple.url,
        "WADISPATCH_BIRD_BASE_URL": simple.url,
        "WADISPATCH_ZIXFLOW_BASE_URL": simple.url,
        "WADISPATCH_WACR_BASE_URL": simple.url,
        "WADISPATCH_META_BASE_URL": f"{simple.url}/v23.0",
    }
    assert simple.configure(sender_limit=3).sender_limit == 3
    assert simple.stats()["requests_total"] == 0


# --- webhooks ---------------------------------------------------------------------------------------


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_signature(
    provider: str, url: str, headers: dict[str, str], raw: bytes, config: SimulatorConfig
) -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    if provider == "meta":
        expected = hmac.new(config.meta_app_secret.encode(), raw, hashlib.sha256).hexdigest()
        assert lower["x-hub-signature-256"] == f"sha256={expected}"
    elif provider == "briq":
        expected = hmac.new(config.briq_webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        assert lower["x-briq-signature"] == expected
    elif provider == "bird":
        header, payload, signature = lower["messagebird-signature-jwt"].split(".")
        mac = hmac.new(config.bird_signing_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
        assert b64url_decode(signature) == mac.digest()
        claims = json.loads(b64url_decode(payload))
        assert json.loads(b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
        assert claims["iss"] == "MessageBird" and claims["nbf"] <= time.time() < claims["exp"]
        assert claims["url_hash"] == hashlib.sha256(url.encode()).hexdigest()
        assert claims["payload_hash"] == hashlib.sha256(raw).hexdigest()
    else:
        assert not any("signature" in name for name in lower)


def statuses_and_reply(provider: str, events: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """The statuses in order, and the reply as {"answers": <message id>, "id", "title"}."""
    statuses: list[str] = []
    reply: dict[str, str] = {}
    for event in events:
        if provider == "meta":
            value = event["entry"][0]["changes"][0]["value"]
            if "statuses" in value:
                statuses.append(value["statuses"][0]["status"])
            else:
                message = value["messages"][0]
                inner = message["interactive"]
                chosen = inner[inner["type"]]
                reply = {"answers": message["context"]["id"], "id": chosen["id"], "title": chosen["title"]}
        elif provider == "briq":
            if event["event"] == "whatsapp.inbound":
                inner = event["data"]["interactive"]
                chosen = inner[inner["type"]]
                reply = {
                    "answers": event["data"]["context"]["message_id"],
                    "id": chosen["id"],
                    "title": chosen["title"],
                }
            else:
                statuses.append(event["event"].removeprefix("whatsapp."))
        elif provider == "bird":
            if event["direction"] == "received":
                chosen = event["content"]["interactive"]["reply"]
                reply = {"answers": event["replyTo"]["id"], "id": chosen["id"], "title": chosen["text"]}
            else:
                statuses.append(event["status"])
        elif provider == "zixflow":
            assert event["post_back_data"] == "wd-msg-1"
            if event["status"] == "replied":
                inner = event["interactive"]
                chosen = inner[inner["type"]]
                reply = {"answers": event["request_id"], "id": chosen["id"], "title": chosen["title"]}
            else:
                statuses.append(event["status"])
        elif event["event"] == "message.received":
            inner = event["interactive"]
            reply = {"answers": event["reply_to"], "id": inner["id"], "title": inner["title"]}
        else:
            statuses.append(event["status"])
    return statuses, reply


@pytest.mark.parametrize("kind", ["button", "list"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_callbacks_and_replies_are_posted_in_the_providers_format(
    provider: str, kind: str, receiver: Receiver, start_sim: Callable[..., SimulatorServer]
) -> None:
    knobs: dict[str, Any] = {"callbacks": True, "reply_share": 1.0, "callback_delay_ms": 5}
    if provider != "zixflow":
        knobs["webhook_urls"] = {provider: receiver.url}  # Zixflow posts to the request's URL
    server = start_sim(**knobs)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        message_id = check_accepted(
            provider,
            send(http, provider, kind, post_back_url=receiver.url if provider == "zixflow" else None),
        )
    expected = ["delivered", "read"] if provider == "zixflow" else ["sent", "delivered", "read"]
    posted = receiver.wait_for(len(expected) + 1)
    assert {path for path, _, _ in posted} == {"/hooks"}
    for _, headers, raw in posted:
        verify_signature(provider, receiver.url, headers, raw, server.config)
    statuses, reply = statuses_and_reply(provider, [json.loads(raw) for _, _, raw in posted])
    assert statuses == expected
    assert reply["answers"] == message_id
    assert CHOICES[kind][reply["id"]] == reply["title"]
    deadline = time.monotonic() + 5
    while server.stats()["callbacks"]["delivered"] < len(posted):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert server.stats()["callbacks"]["failed"] == 0


def test_failed_messages_report_failed_and_receiver_errors_are_counted(
    start_sim: Callable[..., SimulatorServer],
) -> None:
    refusing = Receiver(status=500)
    try:
        server = start_sim(callbacks=True, failed_share=1.0, callback_delay_ms=0, webhook_url=refusing.url)
        with httpx.Client(base_url=server.url, timeout=5) as http:
            message_id = check_accepted("meta", send(http, "meta"))
            posted = refusing.wait_for(2)
            deadline = time.monotonic() + 5
            while server.stats()["callbacks"]["failed"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert send(http, "meta").status_code == 200  # the server is unharmed
        statuses = [json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"][0] for _, _, raw in posted]
        assert [s["status"] for s in statuses] == ["sent", "failed"]
        assert statuses[1]["id"] == message_id and statuses[1]["errors"][0]["code"] == 131026
        assert server.stats()["callbacks"]["last_error"] == f"HTTP 500 from {refusing.url}"
    finally:
        refusing.close()


def test_unreachable_webhooks_never_crash_the_server(start_sim: Callable[..., SimulatorServer]) -> None:
    server = start_sim(callbacks=True, callback_delay_ms=0, webhook_url="http://127.0.0.1:9/unreachable")
    with httpx.Client(base_url=server.url, timeout=5) as http:
        assert send(http, "briq").status_code == 202
        deadline = time.monotonic() + 5
        while server.stats()["callbacks"]["failed"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert send(http, "briq").status_code == 202


# --- webhook samples --------------------------------------------------------------------------------


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


@pytest.mark.parametrize("provider", PROVIDERS)
def test_webhook_samples_match_what_the_simulator_posts(provider: str) -> None:
    dialect = make_dialects()[provider]
    choices = {"button": (Choice("yes", "Yes"),), "list": (Choice("row-2", "Buy airtime", "Top up"),)}
    ids = {"conversation_id": "c", "provider_message_id": "wamid.x"}
    samples = sorted((SAMPLES / provider).glob("*.json"))
    names = {path.stem for path in samples}
    statuses = {"status_delivered", "status_read", "status_failed"} | (
        {"status_sent"} if dialect.reports_sent else set()
    )
    assert names == statuses | {"reply_button", "reply_list"}
    for path in samples:
        sample = json.loads(path.read_text())
        kind = "list" if path.stem == "reply_list" else "button"
        info = SendInfo(SENDER[provider], TO, kind, choices[kind], post_back_data="d")
        sent = Sent(provider, info, "m", time.time(), ids)  # type: ignore[arg-type]
        if path.stem.startswith("reply_"):
            made = dialect.reply_event(sent, choices[kind][0], time.time())
        else:
            made = dialect.status_event(sent, path.stem.removeprefix("status_"), time.time())  # type: ignore[arg-type]
        assert shape(made) == shape(sample), path.name
