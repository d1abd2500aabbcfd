"""The HTTP call to a provider: one pooled ``httpx.Client`` per worker process.

Network failures become ``transient`` outcomes here, so the engine only ever sees an
:class:`~workers.providers.Outcome`. Request headers (which carry the credentials) are never
logged or put into an outcome.
"""

from __future__ import annotations

import os
import threading

import httpx

from workers.providers.base import Outcome, ProviderAdapter, ProviderAnswer, ProviderRequest
from workers.settings import Settings


class Transport:
    """Sends :class:`ProviderRequest` s and has the adapter classify the answers."""

    def __init__(self, settings: Settings, *, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(
                connect=settings.http_connect_timeout,
                read=settings.http_read_timeout,
                write=settings.http_write_timeout,
                pool=settings.http_pool_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.http_max_connections,
                max_keepalive_connections=settings.http_max_connections,
            ),
            follow_redirects=False,
        )

    def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        """One HTTP attempt; never raises for network trouble."""
        try:
            response = self.client.request(
                request.method, request.url, json=request.json, headers=dict(request.headers)
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the provider: always safe to try again.
            return Outcome.transient("connect_error", message=type(exc).__name__)
        except httpx.TimeoutException as exc:
            # The provider may have taken the message; see README "Delivery guarantees".
            return Outcome.transient("timeout", message=type(exc).__name__)
        except httpx.TransportError as exc:
            return Outcome.transient("connection_dropped", message=type(exc).__name__)
        answer = ProviderAnswer(
            status_code=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.content,
        )
        return adapter.classify(answer)

    def close(self) -> None:
        self.client.close()


_transports: dict[int, Transport] = {}
_lock = threading.Lock()


def get_transport(settings: Settings) -> Transport:
    """The transport of this process (a forked child gets its own connection pool)."""
    pid = os.getpid()
    with _lock:
        transport = _transports.get(pid)
        if transport is None:
            transport = _transports[pid] = Transport(settings)
        return transport
