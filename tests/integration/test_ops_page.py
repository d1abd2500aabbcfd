"""The live operations page ``/ops``: its access (the API keys, Basic auth for a browser), its parts,
and a real headless Chromium that watches a running campaign with every non-local request blocked.
SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from wadispatch.api import create_app
from wadispatch.api.auth import create_api_key
from wadispatch.campaigns import api as campaigns
from wadispatch.ledger import Ledger, messages
from wadispatch.settings import Settings
from wadispatch.simulator import SimulatorServer
from wadispatch.states import State

from tests.api_support import ApiServer
from tests.integration.test_api_docs import LOCAL_HOSTS, chromium_binary
from tests.support import CAMPAIGN_TEMPLATE, make_settings, wait_for

pytestmark = pytest.mark.integration

SENDER = "1107264639145282"
RATE = 25
CLOSED = [f"+2557{900_000 + i:08d}" for i in range(6)]


@dataclass
class Ops:
    url: str
    key: str
    ledger: Ledger
    settings: Settings


@pytest.fixture
def ops(ledger: Ledger, redis_url: str, queue_name: str, producer_app) -> Iterator[Ops]:
    """The API (with /ops) on loopback, reading the test queue's workers and limiter."""
    settings = make_settings(
        redis_url=redis_url,
        queue=queue_name,
        default_rate=RATE,
        window_prefix=f"{queue_name}:win",
        campaign_batch_size=100,
        campaign_fanout_rows=100,
    )
    server = ApiServer(create_app(settings, ledger=ledger)).start()
    _, key = create_api_key(ledger, "operator")
    try:
        yield Ops(server.url, key, ledger, settings)
    finally:
        server.stop()


def write_csv(path: Path, phones: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "order"])
        writer.writerows([phone, "Ann", str(i)] for i, phone in enumerate(phones))
    return path


def idle_campaign(ops: Ops, tmp_path: Path, name: str, count: int = 5) -> campaigns.CampaignRecord:
    """A campaign whose sends are queued nowhere (no worker will take them)."""
    source = write_csv(tmp_path / "idle.csv", [f"+2557{i:08d}" for i in range(count)])
    return campaigns.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        name=name,
        ledger=ops.ledger,
        settings=ops.settings,
        dispatch=lambda *_: True,
    )


# --- access and parts over HTTP -------------------------------------------------------------------


def test_the_page_needs_a_key_and_a_browser_is_asked_for_it(ops: Ops) -> None:
    for auth in (None, ("ops", "wad_not-a-key"), ("ops", "")):
        answer = httpx.get(ops.url + "/ops", auth=auth, timeout=10)
        assert answer.status_code == 401, auth
        assert answer.headers["www-authenticate"].startswith('Basic realm="wadispatch operations"')
        assert answer.json()["error"] == "unauthorized"
    for headers in ({"Authorization": f"Bearer {ops.key}"}, {"X-API-Key": ops.key}):
        assert httpx.get(ops.url + "/ops/live", headers=headers, timeout=10).status_code == 200
    page = httpx.get(ops.url + "/ops", auth=("anyone", ops.key), timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "://" not in page.text, "an absolute URL in the page"
    assert 'src="/ops/static/htmx.min.js"' in page.text and 'hx-get="/ops/live"' in page.text
    # /v1 keeps answering a missing key with its Bearer challenge
    assert httpx.get(ops.url + "/v1/campaigns", timeout=10).headers["www-authenticate"] == "Bearer"
    schema = httpx.get(ops.url + "/openapi.json", timeout=10).json()
    assert not [path for path in schema["paths"] if path.startswith("/ops")]


def test_the_static_files_are_public_and_only_those(ops: Ops) -> None:
    script = httpx.get(ops.url + "/ops/static/htmx.min.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"htmx" in script.content and len(script.content) > 40_000
    license_text = httpx.get(ops.url + "/ops/static/htmx-LICENSE.txt", timeout=10)
    assert license_text.status_code == 200 and "Zero-Clause BSD" in license_text.text
    assert httpx.get(ops.url + "/ops/static/ops.css", timeout=10).status_code == 200
    for path in ("/ops/static/ops.py", "/ops/static/..%2Fops.py", "/ops/static/"):
        assert httpx.get(ops.url + path, timeout=10).status_code == 404, path


def test_the_live_part_shows_campaigns_escaped_and_the_eta_without_a_worker(ops: Ops, tmp_path: Path) -> None:
    campaign = idle_campaign(ops, tmp_path, "<b>spring</b> & co")
    part = httpx.get(ops.url + "/ops/live", auth=("ops", ops.key), timeout=10)
    assert part.status_code == 200 and "<html" not in part.text
    assert "&lt;b&gt;spring&lt;/b&gt; &amp; co" in part.text and "<b>spring" not in part.text
    assert campaign.id in part.text
    assert "0 of 5 settled (0%)" in part.text
    assert "unknown: no worker running" in part.text
    assert 'id="workers-alive" class="warn">0<' in part.text


def test_the_message_lookup_as_a_part_and_as_a_page(ops: Ops, tmp_path: Path) -> None:
    campaign = idle_campaign(ops, tmp_path, "lookup")
    with ops.ledger.engine.connect() as conn:
        message_id = conn.execute(
            select(messages.c.id).where(messages.c.campaign_id == campaign.id).limit(1)
        ).scalar_one()
    auth = ("ops", ops.key)
    part = httpx.get(
        ops.url + "/ops/message",
        params={"id": message_id},
        headers={"HX-Request": "true"},
        auth=auth,
        timeout=10,
    )
    assert part.status_code == 200 and "<html" not in part.text
    assert message_id in part.text and "pending" in part.text and "(new) → pending" in part.text
    assert "+2557*****" in part.text and "+255700000" not in part.text  # the recipient is masked
    whole = httpx.get(ops.url + "/ops/message", params={"id": message_id}, auth=auth, timeout=10)
    assert whole.status_code == 200 and "<html" in whole.text and "(new) → pending" in whole.text
    missing = httpx.get(ops.url + "/ops/message", params={"id": "nope"}, auth=auth, timeout=10)
    assert "nope: no such message" in missing.text
    too_long = httpx.get(ops.url + "/ops/message", params={"id": "x" * 65}, auth=auth, timeout=10)
    assert too_long.status_code == 422
    nul = httpx.get(ops.url + "/ops/message", params={"id": "a\x00b"}, auth=auth, timeout=10)
    assert nul.status_code == 200 and "ab: no such message" in nul.text  # not a 500 (PostgreSQL)


# --- a real browser during a running campaign -----------------------------------------------------


@pytest.fixture
def closed_windows(simulator: SimulatorServer) -> Iterator[None]:
    """A few recipients whose window is closed (failures to show) and a few 429s; undone after."""
    simulator.configure(window_closed_recipients=CLOSED, rate_limited_rate=0.03, rate_limited_retry_after=0.2)
    yield
    simulator.configure(window_closed_recipients=[], rate_limited_rate=0.0, rate_limited_retry_after=1.0)


def test_a_browser_watches_a_running_campaign_with_the_network_blocked(
    ops: Ops, tmp_path: Path, database_url: str, start_worker, sim: httpx.Client, closed_windows: None
) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extras install playwright")

    start_worker(
        database_url,
        WADISPATCH_DEFAULT_RATE=str(RATE),
        WADISPATCH_WINDOW_PREFIX=f"{ops.settings.window_prefix}",
    )
    phones = CLOSED + [f"+2557{i:08d}" for i in range(400)]
    source = write_csv(tmp_path / "customers.csv", phones)
    campaign = campaigns.create_campaign(
        source,
        CAMPAIGN_TEMPLATE,
        provider="meta",
        sender=SENDER,
        name="order-ready",
        ledger=ops.ledger,
        settings=ops.settings,
    )
    total = len(phones)
    wait_for(
        lambda: campaigns.progress(campaign.id, ledger=ops.ledger, settings=ops.settings).terminal >= 10,
        timeout=60,
    )

    requested: list[str] = []
    blocked: list[str] = []
    page_errors: list[str] = []
    console: list[str] = []

    def only_loopback(route, request) -> None:  # type: ignore[no-untyped-def]
        requested.append(request.url)
        where = urlsplit(request.url)
        if where.hostname in LOCAL_HOSTS or where.scheme in ("data", "blob"):
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("blockedbyclient")

    shot = tmp_path / "ops-page.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=binary,
            headless=True,
            proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"},
            args=["--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 1100},
                http_credentials={"username": "operator", "password": ops.key},
            )
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.set_default_timeout(20_000)

            page.goto(ops.url + "/ops")
            article = page.locator(f"#campaign-{campaign.id}")
            article.wait_for()
            first = int(article.get_attribute("data-settled") or 0)
            first_read = page.locator("#read-at").inner_text()
            assert "order-ready" in article.inner_text()
            # htmx swaps the live part in: the count moves without reloading the page
            page.wait_for_function(
                "([id, seen]) => Number(document.getElementById('campaign-' + id).dataset.settled) > seen",
                arg=[campaign.id, first],
                timeout=20_000,
            )
            second = int(page.locator(f"#campaign-{campaign.id}").get_attribute("data-settled") or 0)
            assert first < second <= total
            assert page.locator("#read-at").inner_text() != first_read
            value = float(page.locator(f"#campaign-{campaign.id} progress").get_attribute("value") or 0)
            assert value >= second
            text = page.locator("#live").inner_text()
            for label in ("Started", "Average rate", "Current rate", "ETA", "429s", "Effective rate"):
                assert label in text, label
            assert "Workers alive" in text and page.locator("#workers-alive").inner_text() == "1"
            assert "unknown: no worker running" not in text
            wait_for(lambda: "window_closed" in page.locator("#live").inner_text(), timeout=30)
            page.screenshot(path=str(shot), full_page=True)

            failed_id = page.locator("#live table code").first.inner_text()
            page.fill("#message-id", failed_id)
            page.click("button[type=submit]")
            page.locator("#lookup-result").wait_for()
            assert "window_closed" in page.locator("#lookup-result").inner_text()
            assert page.url.endswith("/ops")  # htmx answered in place
        finally:
            browser.close()

    assert blocked == [], f"requests that would have left the machine: {blocked}"
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in requested), requested
    assert page_errors == [], page_errors
    assert [line for line in console if line.startswith("error:")] == []  # no CSP refusal either
    assert any(url.endswith("/ops/static/htmx.min.js") for url in requested), requested
    assert sum(urlsplit(url).path == "/ops/live" for url in requested) >= 1, requested
    assert shot.stat().st_size > 20_000
    if target := os.environ.get("OPS_SCREENSHOT"):  # to refresh docs/ops-page.png
        shutil.copyfile(shot, target)
    print(f"screenshot: {shot}")
    with ops.ledger.engine.connect() as conn:
        failed = conn.execute(
            select(messages.c.id).where(
                messages.c.campaign_id == campaign.id, messages.c.state == State.FAILED.value
            )
        ).all()
    assert len(failed) >= 1
