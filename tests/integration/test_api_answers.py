"""Hostile requests at the running API (uvicorn on loopback): long ids are cut in the answer,
a wrong method names the right ones in ``Allow``, a malformed ``Content-Length`` is a 400 before
the app sees it. SQLite always, PostgreSQL when set."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api_support import Api

pytestmark = pytest.mark.integration

LONG_ID = "x" * 60_000


def raw_request(api: Api, request: bytes) -> bytes:
    """Send ``request`` as is on a new connection; the answer's bytes until the server closes."""
    parts = urlsplit(api.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65_536):
            answer += chunk
    return answer


def test_a_60_kb_id_in_a_path_gets_a_small_404(api: Api) -> None:
    answer = api.client.get(f"/v1/messages/{LONG_ID}")
    assert answer.status_code == 404, answer.text[:200]
    assert len(answer.content) < 300
    assert answer.json()["message"] == "no message " + "x" * 64 + "…"

    unknown = httpx.post(f"{api.url}/webhooks/{LONG_ID}", content=b"{}", timeout=15)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_provider")
    assert len(unknown.content) < 300


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/health", "GET"),
        ("DELETE", "/health", "GET"),
        # GET is /v1/messages/{message_id} with the id "interactive".
        ("DELETE", "/v1/messages/interactive", "GET, POST"),
        ("PUT", "/webhooks/meta", "GET, POST"),
        ("PATCH", "/v1/campaigns", None),
    ],
)
def test_a_wrong_method_is_a_405_naming_the_paths_methods(
    api: Api, method: str, path: str, allow: str | None
) -> None:
    answer = api.client.request(method, path)
    assert answer.status_code == 405
    assert answer.json()["error"] == "method_not_allowed"
    assert answer.headers.get("allow")
    if allow is not None:
        assert answer.headers["allow"] == allow
    else:
        assert method not in answer.headers["allow"].split(", ")


def test_a_content_length_that_is_no_number_is_a_400_from_the_server(api: Api) -> None:
    """uvicorn's HTTP parser refuses the request before the app runs: the answer is its plain
    text 400 (documented in the README), and the server goes on serving."""
    request = (
        b"POST /v1/messages/interactive HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}"
    )
    answer = raw_request(api, request)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: text/plain" in answer.lower()
    assert answer.endswith(b"Invalid HTTP request received.")
    assert httpx.get(f"{api.url}/health", timeout=15).json() == {"ok": True}
