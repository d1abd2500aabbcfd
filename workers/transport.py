"""The HTTP calls to providers: httpx's API on aiohttp's transport, in one event loop per process.

Sends are I/O-bound (100-300 ms each), so a worker keeps many in flight on one event loop thread
rather than one OS thread per request. ``httpx.AsyncClient`` on its default transport manages
about 75 requests/s here; ``httpx-aiohttp``'s transport, about ten times that (see
``make bench``).

Network failures become ``transient`` outcomes here, so the engine only ever sees an
:class:`~wadispatch.providers.Outcome`. Request headers (which carry the credentials) are never
logged or put into an outcome.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from httpx_aiohttp import AiohttpTransport
from wadispatch.errors import ConfigurationError
from wadispatch.providers.base import Outcome, ProviderAdapter, ProviderAnswer, ProviderRequest
from wadispatch.ratelimit import CooldownView, Limiter
from wadispatch.settings import Settings

T = TypeVar("T")

# httpx logs every request at INFO: noise at hundreds a second, and URLs have no place in logs.
logging.getLogger("httpx").setLevel(logging.WARNING)


def new_http_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The pooled HTTP transport of one process: aiohttp's, behind httpx's transport API."""
    return AiohttpTransport(
        limits=httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=settings.http_max_connections,
        )
    )


def request_timeout(settings: Settings) -> httpx.Timeout:
    """The timeouts of every provider request."""
    return httpx.Timeout(
        connect=settings.http_connect_timeout,
        read=settings.http_read_timeout,
        write=settings.http_write_timeout,
        pool=settings.http_pool_timeout,
    )


class Transport:
    """Sends :class:`ProviderRequest` s and has the adapter classify the answers.

    Requests go straight to an httpx transport rather than through ``httpx.AsyncClient``: the
    client's layers (authentication flows, redirects, a cookie jar shared by every provider) are
    all things a provider call must not use, and skipping them saves about a third of the CPU a
    request costs (see ``make bench``). Redirects are therefore never followed.
    """

    def __init__(self, http: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        self.http = http
        self._extensions = {"timeout": timeout.as_dict()}

    async def send(self, request: ProviderRequest, adapter: ProviderAdapter) -> Outcome:
        """One HTTP attempt; never raises for network trouble."""
        http_request = httpx.Request(
            request.method,
            _parsed_url(request.url),
            content=request.body,
            headers={"Content-Type": "application/json", **request.headers},
            extensions=self._extensions,
        )
        try:
            response = await self.http.handle_async_request(http_request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
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
            body=body,
        )
        return adapter.classify(answer)

    async def aclose(self) -> None:
        await self.http.aclose()


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    # Parsing a URL costs more than building the rest of the request; a sender's URL repeats.
    return httpx.URL(url)


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (``WADISPATCH_SEND_LOOP``): uvloop, asyncio's, or ``auto``."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError as exc:
        if kind == "uvloop":
            raise ConfigurationError(
                "WADISPATCH_SEND_LOOP=uvloop but uvloop is not installed (pip install uvloop); "
                "use auto or asyncio"
            ) from exc
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class SendLoop:
    """An asyncio loop on a daemon thread, shared by the worker threads of one process."""

    def __init__(self, settings: Settings) -> None:
        self.loop = new_event_loop(settings.send_loop)
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="wadispatch-send-loop", daemon=True
        )
        self._thread.start()
        self.transport: Transport = self.run(self._make_transport(settings))
        self.in_flight = self.run(self._make_semaphore(settings.max_in_flight))
        self._cooldown_views: dict[int, CooldownView] = {}

    @staticmethod
    async def _make_transport(settings: Settings) -> Transport:
        return Transport(new_http_transport(settings), request_timeout(settings))

    @staticmethod
    async def _make_semaphore(size: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(size)

    def cooldowns(self, limiter: Limiter) -> CooldownView:
        """This loop's view of the cooldowns ``limiter`` keeps."""
        view = self._cooldown_views.get(id(limiter))
        if view is None:
            view = self._cooldown_views[id(limiter)] = CooldownView(limiter)
        return view

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.run(self.transport.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


_loops: dict[int, SendLoop] = {}
_lock = threading.Lock()


def get_send_loop(settings: Settings) -> SendLoop:
    """The send loop of this process (a forked child gets its own)."""
    pid = os.getpid()
    with _lock:
        loop = _loops.get(pid)
        if loop is None:
            loop = _loops[pid] = SendLoop(settings)
        return loop
