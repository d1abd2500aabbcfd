"""``--fallback-template`` on the command line: ``send`` (eager, through the simulator) goes as
the template when the provider refuses for a closed window; a bad template exits 1 naming its
field, for ``send`` and ``campaign send``, and records nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from wadispatch.ledger import Ledger

from tests.integration import test_cli
from tests.integration.test_cli import run, send_args, write
from tests.support import CAMPAIGN_TEMPLATE

pytestmark = pytest.mark.integration

cli_env = test_cli.cli_env  # the same fixture: the CLI's environment

TEMPLATE = {"name": "order_ready", "language": "en_US", "body_parameters": ["Asha"], "quick_replies": ["yes"]}


def test_send_eager_goes_as_the_template_when_the_window_is_closed(
    tmp_path: Path, cli_env: dict[str, str], sim: httpx.Client
) -> None:
    sim.post(
        "/_sim/script", json={"provider": "meta", "answers": [{"kind": "window_closed"}]}
    ).raise_for_status()
    fallback = write(tmp_path / "fallback.json", TEMPLATE)

    sent = run(cli_env, tmp_path, *send_args(tmp_path), "--eager", "--fallback-template", str(fallback))

    assert sent.returncode == 0, sent.stderr
    status = json.loads(run(cli_env, tmp_path, "status", sent.stdout.strip(), "--json").stdout)
    assert (status["state"], status["sent_as"], status["attempts"]) == ("sent", "template", 2)
    [accepted] = sim.get("/_sim/stats").json()["accepted_log"]
    assert accepted["body"]["template"]["name"] == "order_ready"


def test_a_bad_fallback_template_exits_1_naming_its_field(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bad = write(tmp_path / "bad.json", {**TEMPLATE, "name": "Order Ready", "quick_replies": ["maybe"]})
    result = run(cli_env, tmp_path, *send_args(tmp_path), "--fallback-template", str(bad))
    assert result.returncode == 1
    assert "fallback.name: only lowercase letters" in result.stderr
    assert "fallback.quick_replies[0]: must be one of the interactive message's reply ids" in result.stderr

    recipients = tmp_path / "customers.csv"
    recipients.write_text("phone,name,order\n+255712345678,Ann,1\n", encoding="utf-8")
    message = write(tmp_path / "template.json", CAMPAIGN_TEMPLATE)
    campaign = run(
        cli_env,
        tmp_path,
        "campaign",
        "send",
        str(recipients),
        "--message",
        str(message),
        "--provider",
        "meta",
        "--sender",
        "1107264639145282",
        "--fallback-template",
        str(write(tmp_path / "campaign-bad.json", {**TEMPLATE, "language": "english"})),
    )
    assert campaign.returncode == 1
    assert "fallback.language: must be a WhatsApp language code" in campaign.stderr
    ledger = Ledger.from_url(cli_env["WADISPATCH_DATABASE_URL"])
    assert ledger.count_by_state() == {}
    ledger.dispose()
