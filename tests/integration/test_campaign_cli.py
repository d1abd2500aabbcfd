"""``wadispatch campaign ...`` and ``wadispatch suppress ...`` run as a user would, with a real worker."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from wadispatch.simulator import SimulatorServer

from tests.support import SECRETS

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))
SENDER = "1107264639145282"
TEMPLATE = {
    "type": "button",
    "body": {"text": "Hi {name}"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "ok", "title": "OK {name}"}}]},
}


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


def run(env: dict[str, str], cwd: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WADISPATCH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def files(tmp_path: Path, rows: list[list[str]]) -> tuple[Path, Path]:
    source = tmp_path / "people.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["phone", "name"], *rows])
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE), encoding="utf-8")
    return source, template


def test_send_watches_to_the_end_then_status_report_and_list_agree(
    tmp_path: Path, cli_env: dict[str, str], start_worker, producer_app, sim: httpx.Client
) -> None:
    start_worker(cli_env["WADISPATCH_DATABASE_URL"])
    rows = [[f"+2557120000{i:02d}", f"N{i}"] for i in range(40)] + [
        ["+2557bad", "X"],
        ["+255712000000", "Dup"],
    ]
    source, template = files(tmp_path, rows)
    assert run(cli_env, tmp_path, "suppress", "add", "+255712000039").returncode == 0

    sent = run(
        cli_env,
        tmp_path,
        "campaign",
        "send",
        str(source),
        "-m",
        str(template),
        "--provider",
        "meta",
        "--sender",
        SENDER,
        "--name",
        "cli-test",
    )
    assert sent.returncode == 0, sent.stderr
    campaign_id = sent.stdout.split()[0]
    assert "42 rows read: 39 accepted, 1 invalid, 1 duplicate, 1 suppressed" in sent.stderr
    assert "done" in sent.stdout

    status = run(cli_env, tmp_path, "campaign", "status", campaign_id, "--json")
    data = json.loads(status.stdout)
    assert (data["status"], data["states"], data["remaining"]) == ("done", {"sent": 39}, 0)
    assert data["rows"] == {"read": 42, "accepted": 39, "invalid": 1, "duplicate": 1, "suppressed": 1}

    report = tmp_path / "report.csv"
    assert run(cli_env, tmp_path, "campaign", "report", campaign_id, "--out", str(report)).returncode == 0
    with report.open(newline="", encoding="utf-8") as handle:
        states = [line["state"] for line in csv.DictReader(handle)]
    assert states == ["sent"] * 39 + ["suppressed", "invalid", "duplicate"]

    listed = json.loads(run(cli_env, tmp_path, "campaign", "list", "--json").stdout)
    assert [(item["id"], item["name"], item["status"]) for item in listed] == [
        (campaign_id, "cli-test", "done")
    ]
    for command in ("pause", "cancel", "resume"):  # a done campaign stays done
        assert run(cli_env, tmp_path, "campaign", command, campaign_id).returncode == 0
    assert (
        json.loads(run(cli_env, tmp_path, "campaign", "status", campaign_id, "--json").stdout)["status"]
        == "done"
    )


def test_detach_returns_at_once_and_suppressions_are_listed(tmp_path: Path, cli_env: dict[str, str]) -> None:
    source, template = files(tmp_path, [["+255712000001", "Ann"]])
    sent = run(
        cli_env,
        tmp_path,
        "campaign",
        "send",
        str(source),
        "-m",
        str(template),
        "--provider",
        "meta",
        "--sender",
        SENDER,
        "--detach",
    )
    assert sent.returncode == 0, sent.stderr
    assert "watch it with: wadispatch campaign status" in sent.stderr
    assert run(cli_env, tmp_path, "suppress", "add", "+255 712 000 002", "--sender", SENDER).returncode == 0
    listed = run(cli_env, tmp_path, "suppress", "list")
    assert "+255712000002" in listed.stdout and SENDER in listed.stdout
    assert run(cli_env, tmp_path, "suppress", "remove", "+255712000002", "--sender", SENDER).returncode == 0
    assert run(cli_env, tmp_path, "suppress", "remove", "+255712000002", "--sender", SENDER).returncode == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provider": "nope"}, "unknown provider 'nope'"),
        ({"file": "missing.csv"}, "cannot read"),
        (
            {"template": {"type": "button", "body": {"text": "Hi {name}"}, "action": {"buttons": []}}},
            "interactive.action.buttons: at least 1 button",
        ),
        ({"template": {**TEMPLATE, "body": {"text": "Hi {city}"}}}, "the header has no column city"),
        ({"region": "XX"}, "unknown region"),
    ],
)
def test_bad_input_exits_1_naming_the_problem_and_records_nothing(
    tmp_path: Path, cli_env: dict[str, str], change: dict, message: str
) -> None:
    source, template = files(tmp_path, [["+255712000001", "Ann"]])
    if "template" in change:
        template.write_text(json.dumps(change["template"]), encoding="utf-8")
    args = [
        "campaign",
        "send",
        change.get("file", str(source)),
        "-m",
        str(template),
        "--provider",
        change.get("provider", "meta"),
        "--sender",
        SENDER,
        "--detach",
    ]
    if "region" in change:
        args += ["--region", change["region"]]
    result = run(cli_env, tmp_path, *args)
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split()), result.stderr
    assert json.loads(run(cli_env, tmp_path, "campaign", "list", "--json").stdout) == []


def test_unknown_campaign_ids_exit_1(tmp_path: Path, cli_env: dict[str, str]) -> None:
    for command in ("status", "pause", "resume", "cancel"):
        result = run(cli_env, tmp_path, "campaign", command, "no-such-id")
        assert result.returncode == 1
        assert "no campaign no-such-id" in result.stderr
