"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: ``wadispatch api`` on loopback serves
their pages with local assets only, and a real Chromium whose every non-local request is blocked
renders both."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from wadispatch.localstack import stop_process_group

from tests.integration.test_api_cli import serve_api

pytestmark = pytest.mark.integration

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
#: The attributes of a page that make a browser fetch something.
URL_ATTRIBUTES = {"src", "href", "spec-url", "srcset", "data", "action", "poster"}


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, redis_url: str, queue_name: str) -> Iterator[str]:
    """``wadispatch api`` (the console script) on a free loopback port, for this module's tests."""
    tmp = tmp_path_factory.mktemp("docs-api")
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env |= {
        "WADISPATCH_DATABASE_URL": f"sqlite:///{tmp / 'api.sqlite3'}",
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        "WADISPATCH_WINDOW_PREFIX": f"{queue_name}:win",
    }
    url, process = serve_api(env, tmp, tmp / "api.log")
    try:
        yield url
    finally:
        stop_process_group(process, timeout=10)


class UrlCollector(HTMLParser):
    """Every URL an element of the page points at: ``(tag, attribute, value)``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [(tag, name, value) for name, value in attrs if name in URL_ATTRIBUTES and value]


def page_urls(html: str) -> list[tuple[str, str, str]]:
    collector = UrlCollector()
    collector.feed(html)
    collector.close()
    return collector.urls


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}),
        ("/redoc", {"redoc.standalone.js": "text/javascript"}),
    ],
)
def test_the_docs_pages_reference_only_local_assets_that_answer(
    api_url: str, page: str, assets: dict[str, str]
) -> None:
    answer = httpx.get(api_url + page, timeout=10)  # no API key: the docs pages are public
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    html = answer.text
    assert "://" not in html, "an absolute URL in the page"
    assert "fonts.googleapis" not in html and "cdn." not in html
    urls = page_urls(html)
    assert urls, html
    for tag, attribute, value in urls:
        where = urlsplit(urljoin(api_url + page, value))
        assert (where.scheme, where.hostname) == ("http", "127.0.0.1"), (tag, attribute, value)
    referenced = {urlsplit(value).path.rsplit("/", 1)[-1]: value for _, _, value in urls}
    for name, media_type in assets.items():
        assert name in referenced, (name, urls)
        asset = httpx.get(urljoin(api_url + page, referenced[name]), timeout=10)
        assert asset.status_code == 200, (name, asset.status_code)
        assert asset.headers["content-type"].split(";")[0] == media_type, asset.headers
        assert len(asset.content) > 10_000
    for _, _, value in urls:  # the favicon too
        assert httpx.get(urljoin(api_url + page, value), timeout=10).status_code == 200, value
    # the schema the pages load is unchanged: public, JSON
    schema = httpx.get(api_url + "/openapi.json", timeout=10)
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "wadispatch"


def test_only_the_pages_own_assets_are_served(api_url: str) -> None:
    for path in ("/docs-assets/core.py", "/docs-assets/..%2Fcore.py", "/docs-assets/"):
        answer = httpx.get(api_url + path, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", path


# --- a real browser, offline ----------------------------------------------------------------------


def chromium_binary() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or ``$CHROMIUM`` when set."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def test_a_browser_without_network_renders_swagger_ui_and_redoc(api_url: str, tmp_path: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extras install playwright")

    requested: list[str] = []
    blocked: list[str] = []
    page_errors: list[str] = []
    console: list[str] = []

    def only_loopback(route, request) -> None:  # type: ignore[no-untyped-def]
        requested.append(request.url)
        where = urlsplit(request.url)
        local = where.hostname in LOCAL_HOSTS or where.scheme in ("data", "blob")
        if local:
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("blockedbyclient")

    started = time.monotonic()
    with sync_api.sync_playwright() as playwright:
        # A dead proxy for anything the routes would not see (loopback bypasses it): no way out.
        browser = playwright.chromium.launch(
            executable_path=binary,
            headless=True,
            proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"},
            args=["--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.set_default_timeout(15_000)

            page.goto(api_url + "/docs")
            page.wait_for_selector(".opblock")
            assert page.locator(".opblock").count() >= 5
            assert "wadispatch" in page.locator(".info .title").inner_text()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)

            page.goto(api_url + "/redoc")
            page.wait_for_selector("h1:has-text('wadispatch')")
            page.wait_for_selector("[data-section-id^='operation/']")
            assert page.locator("[data-section-id^='operation/']").count() >= 5
            page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
        finally:
            browser.close()

    assert blocked == [], f"requests that would have left the machine: {blocked}"
    assert page_errors == [], page_errors
    # ReDoc's bundle names one image by an absolute URL (Redocly's logo): the pages' CSP refuses it.
    errors = [line for line in console if line.startswith("error:")]
    assert all("cdn.redoc.ly" in line and "Content Security Policy" in line for line in errors), errors
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in requested), requested
    assert any(url.endswith("/docs-assets/redoc.standalone.js") for url in requested), requested
    assert any(url.endswith("/openapi.json") for url in requested), requested
    shots = [tmp_path / "docs.png", tmp_path / "redoc.png"]
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    print(f"screenshots: {' '.join(map(str, shots))} ({time.monotonic() - started:.1f} s)")
