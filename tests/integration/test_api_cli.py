"""``wadispatch api`` and ``wadispatch api-key`` through the real console script."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from wadispatch.localstack import stop_process_group

from tests.support import button_request

pytestmark = pytest.mark.integration

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))


@pytest.fixture
def env(tmp_path: Path, redis_url: str, queue_name: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    return {
        **base,
        "WADISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'api.sqlite3'}",
        "WADISPATCH_REDIS_URL": redis_url,
        "WADISPATCH_QUEUE": queue_name,
        "WADISPATCH_ZIXFLOW_WEBHOOK_SECRET": "zixflow-url-s3cret",
        "WADISPATCH_WINDOW_PREFIX": f"{queue_name}:win",
    }


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WADISPATCH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_api(env: dict[str, str], cwd: Path, log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """``wadispatch api`` on a free port, its output (the access log) in ``log_path``; waits for
    /health. Returns its URL and process (stop it with ``stop_process_group``)."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [WADISPATCH, "api", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return base, process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)


def test_api_keys_are_created_listed_and_revoked(tmp_path: Path, env: dict[str, str]) -> None:
    created = run(env, tmp_path, "api-key", "create", "helpdesk-web")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("wad_") and len(key) > 40 and "\n" not in key
    listed = run(env, tmp_path, "api-key", "list")
    [line] = listed.stdout.splitlines()
    key_id = line.split()[0]
    assert "helpdesk-web" in line and "active" in line and key[:12] in line and key not in line
    assert run(env, tmp_path, "api-key", "revoke", key_id).returncode == 0
    assert "revoked" in run(env, tmp_path, "api-key", "list").stdout
    again = run(env, tmp_path, "api-key", "revoke", key_id)
    assert again.returncode == 1 and "no active API key" in again.stderr


def test_wadispatch_api_serves_and_keeps_secrets_out_of_its_log(
    tmp_path: Path, env: dict[str, str], producer_app
) -> None:
    key = run(env, tmp_path, "api-key", "create", "tests").stdout.strip()
    log_path = tmp_path / "api.log"
    base, process = serve_api(env, tmp_path, log_path)
    try:
        answer = httpx.post(
            f"{base}/v1/messages/interactive",
            json=button_request("meta"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=15,
        )
        assert answer.status_code == 202, answer.text
        status = httpx.post(f"{base}/webhooks/zixflow/zixflow-url-s3cret", content=b"{}", timeout=15)
        assert status.status_code == 200, status.text
        assert httpx.get(f"{base}/openapi.json", timeout=15).status_code == 200
    finally:
        stop_process_group(process, 15)
    logged = log_path.read_text()
    assert "POST /webhooks/zixflow/*** HTTP/1.1" in logged, logged
    assert "zixflow-url-s3cret" not in logged and key not in logged
