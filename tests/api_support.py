"""The HTTP API served for real on loopback (uvicorn in a thread), and helpers around it."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis
import uvicorn
from fastapi import FastAPI
from wadispatch.ledger import Ledger
from wadispatch.settings import Settings
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.providers import make_dialects
from wadispatch.window import RedisWindows

SIM = SimulatorConfig()
URL_SECRETS = {"zixflow": "zixflow-url-secret", "wacr": "wacr-url-secret"}
#: The API's webhook secrets: the simulator's defaults, and our own URL secrets.
WEBHOOK_SECRETS: dict[str, Any] = {
    "meta_app_secret": SIM.meta_app_secret,
    "briq_webhook_secret": SIM.briq_webhook_secret,
    "bird_signing_key": SIM.bird_signing_key,
    "zixflow_webhook_secret": URL_SECRETS["zixflow"],
    "wacr_webhook_secret": URL_SECRETS["wacr"],
}


@dataclass
class Api:
    """The running API, an authorised client, and what it runs on."""

    url: str
    client: httpx.Client
    key: str
    ledger: Ledger
    windows: RedisWindows
    settings: Settings
    worker_env: dict[str, str]


class ApiServer:
    """``app`` served by uvicorn on a free loopback port, from a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="api-server", daemon=True
        )

    def start(self, timeout: float = 15.0) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def webhook_url(base: str, provider: str) -> str:
    """Where a provider posts: ``/webhooks/<provider>``, plus our secret for the unsigned ones."""
    url = f"{base}/webhooks/{provider}"
    return f"{url}/{URL_SECRETS[provider]}" if provider in URL_SECRETS else url


def signature_headers(provider: str, raw: bytes, url: str) -> dict[str, str]:
    """The headers the provider signs with (as the simulator signs its callbacks)."""
    return {"Content-Type": "application/json", **make_dialects()[provider].signature_headers(raw, url, SIM)}  # type: ignore[index]


def published(redis_url: str, queue: str) -> list[tuple[str, list[Any]]]:
    """``(task name, args)`` of every job waiting in a Celery queue on Redis."""
    client = redis.Redis.from_url(redis_url)
    try:
        jobs = []
        for raw in client.lrange(queue, 0, -1):
            envelope = json.loads(raw)
            args = json.loads(base64.b64decode(envelope["body"]))[0]
            jobs.append((envelope["headers"]["task"], args))
        return jobs
    finally:
        client.close()
