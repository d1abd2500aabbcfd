"""The ``wadispatch`` console script, run as a user would: a subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from wadispatch.ledger import Ledger
from wadispatch.simulator import SimulatorServer

from tests.support import SECRETS, button_request

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))


@pytest.fixture
def cli_env(tmp_path: Path, simulator: SimulatorServer, redis_url: str, queue_name: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    return {
        **base,
        "WADISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        **simulator.base_urls(),
        **SECRETS,
    }


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WADISPATCH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_validate_accepts_a_valid_request(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run(cli_env, tmp_path, "validate", str(write(tmp_path / "ok.json", button_request("briq"))))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_validate_lists_every_error_and_exits_1(tmp_path: Path, cli_env: dict[str, str]) -> None:
    request = button_request("wacr")
    request["interactive"]["action"]["buttons"] *= 2  # 4 buttons, duplicate ids and titles
    request["interactive"]["header"] = {"type": "image", "image": {"link": "https://cdn.example/a.png"}}
    result = run(cli_env, tmp_path, "validate", str(write(tmp_path / "bad.json", request)))
    assert result.returncode == 1
    assert "interactive.action.buttons[3]: at most 3 buttons" in result.stderr
    assert "interactive.header.type: wacr carries only text headers" in result.stderr
    assert "button ids must be unique" in result.stderr


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), (None, "cannot read")])
def test_validate_reports_unreadable_files(
    tmp_path: Path, cli_env: dict[str, str], content: str | None, message: str
) -> None:
    path = tmp_path / "request.json"
    if content is not None:
        path.write_text(content)
    result = run(cli_env, tmp_path, "validate", str(path))
    assert result.returncode == 1
    assert message in result.stderr


def send_args(tmp_path: Path, provider: str = "meta", to: str = "+255712345678") -> list[str]:
    interactive = write(tmp_path / "interactive.json", button_request(provider)["interactive"])
    return [
        "send",
        "--provider",
        provider,
        "--sender",
        "1107264639145282",
        "--to",
        to,
        "--interactive",
        str(interactive),
    ]


def test_send_eager_sends_and_status_shows_the_transitions(
    tmp_path: Path, cli_env: dict[str, str], sim: httpx.Client
) -> None:
    sent = run(cli_env, tmp_path, *send_args(tmp_path), "--eager")
    assert sent.returncode == 0, sent.stderr
    message_id = sent.stdout.strip()
    status = run(cli_env, tmp_path, "status", message_id, "--json")
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["state"] == "sent"
    assert (
        summary["provider_message_id"]
        == sim.get("/_sim/stats").json()["accepted_log"][0]["provider_message_id"]
    )
    assert [t["to"] for t in summary["transitions"]] == ["pending", "sending", "sent"]
    human = run(cli_env, tmp_path, "status", message_id)
    assert human.returncode == 0 and "sent" in human.stdout and "attempts 1" in human.stdout


def test_send_eager_exits_1_with_the_reason_when_not_sent(
    tmp_path: Path, cli_env: dict[str, str], sim: httpx.Client
) -> None:
    sim.post(
        "/_sim/script", json={"provider": "meta", "answers": [{"kind": "window_closed"}]}
    ).raise_for_status()
    result = run(cli_env, tmp_path, *send_args(tmp_path), "--eager")
    assert result.returncode == 1
    assert "failed" in result.stderr and "window_closed" in result.stderr
    status = json.loads(run(cli_env, tmp_path, "status", result.stdout.strip(), "--json").stdout)
    assert (status["state"], status["reason"]) == ("failed", "window_closed")


def test_send_refuses_bad_input_and_records_nothing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run(cli_env, tmp_path, *send_args(tmp_path, to="0712"), "--eager")
    assert result.returncode == 1
    assert "to: must be an E.164 phone number" in result.stderr
    ledger = Ledger.from_url(cli_env["WADISPATCH_DATABASE_URL"])
    assert ledger.count_by_state() == {}
    ledger.dispose()


def test_send_enqueues_and_the_idempotency_key_returns_the_first_id(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    first = run(cli_env, tmp_path, *send_args(tmp_path), "--idempotency-key", "k-1")
    again = run(cli_env, tmp_path, *send_args(tmp_path, to="+255700000002"), "--idempotency-key", "k-1")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.strip() == again.stdout.strip()
    assert "already used" in again.stderr
    status = json.loads(run(cli_env, tmp_path, "status", first.stdout.strip(), "--json").stdout)
    assert status["state"] == "pending"  # no worker in this test: the job waits in the queue


def test_status_of_an_unknown_message_exits_1(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run(cli_env, tmp_path, "status", "no-such-message")
    assert result.returncode == 1
    assert "no message no-such-message" in result.stderr


def test_a_bad_setting_names_the_environment_variable(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run(
        {**cli_env, "WADISPATCH_HTTP_READ_TIMEOUT": "soon"}, tmp_path, *send_args(tmp_path), "--eager"
    )
    assert result.returncode == 2
    assert "WADISPATCH_HTTP_READ_TIMEOUT" in result.stderr


def test_secrets_never_reach_the_output(tmp_path: Path, cli_env: dict[str, str], sim: httpx.Client) -> None:
    sim.post("/_sim/script", json={"provider": "meta", "answers": [{"kind": "auth"}]}).raise_for_status()
    result = run(cli_env, tmp_path, *send_args(tmp_path), "--eager")
    status = run(cli_env, tmp_path, "status", result.stdout.strip(), "--json")
    output = result.stdout + result.stderr + status.stdout + status.stderr
    assert json.loads(status.stdout)["reason"] == "auth"
    for secret in SECRETS.values():
        if "secret" in secret:
            assert secret not in output
