"""Running the simulator: in a background thread for tests and the demo, or in the foreground.

``SimulatorServer`` owns a thread with its own event loop; every method that touches the
simulator's state (``stats``, ``reset``, ``configure``, ``script``) runs on that loop, so callers in
other threads never race the request handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web
from wadispatch.settings import ProviderName
from wadispatch.simulator.app import create_app
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.engine import Simulator
from wadispatch.simulator.script import Script, ScriptedAnswer

DEFAULT_PORT = 8787
META_API_VERSION = "v23.0"
SHUTDOWN_TIMEOUT_SECONDS = 1.0
_T = TypeVar("_T")


def base_urls(url: str) -> dict[str, str]:
    """The ``WADISPATCH_<P>_BASE_URL`` values that point every provider at ``url``."""
    url = url.rstrip("/")
    return {
        "WADISPATCH_BRIQ_BASE_URL": url,
        "WADISPATCH_BIRD_BASE_URL": url,
        "WADISPATCH_ZIXFLOW_BASE_URL": url,
        "WADISPATCH_WACR_BASE_URL": url,
        "WADISPATCH_META_BASE_URL": f"{url}/{META_API_VERSION}",
    }


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start_site(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


class SimulatorServer:
    """The simulator on a loopback port, served from a background thread.

    >>> with SimulatorServer(SimulatorConfig(latency="fixed", latency_ms=0)) as sim:
    ...     env = sim.base_urls()   # {"WADISPATCH_BRIQ_BASE_URL": "http://127.0.0.1:54321", ...}
    """

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = Simulator(config)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    def base_urls(self) -> dict[str, str]:
        """The ``WADISPATCH_*_BASE_URL`` environment values pointing at this server."""
        return base_urls(self.url)

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; return once the port listens (raise if it cannot)."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._url = _url(sock)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="wadispatch-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("the simulator did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError("the simulator failed to start") from self._error
        return self

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(sock))
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = await _start_site(create_app(self.simulator), sock)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close everything and join the thread (at most ``timeout`` seconds)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- thread-safe access to the simulator's state ------------------------------------------

    def call(self, func: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``func()`` on the server's event loop and return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the simulator is not started")

        async def run() -> _T:
            return func()

        coroutine: Coroutine[Any, Any, _T] = run()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    @property
    def config(self) -> SimulatorConfig:
        """The config in force."""
        return self.simulator.config

    def stats(self, *, include_log: bool = True) -> dict[str, Any]:
        """What ``GET /_sim/stats`` answers."""
        return self.call(lambda: self.simulator.snapshot(include_log=include_log))

    def reset(self) -> None:
        """What ``POST /_sim/reset`` does."""
        self.call(self.simulator.reset)

    def configure(self, config: SimulatorConfig | None = None, /, **changes: Any) -> SimulatorConfig:
        """Replace the config, or change some of its fields; return the config now in force."""
        new = config if config is not None else self.simulator.config.updated(changes)
        self.call(lambda: self.simulator.apply(new))
        return new

    def script(
        self,
        provider: ProviderName,
        answers: Sequence[Mapping[str, Any] | ScriptedAnswer | str],
        sender: str | None = None,
    ) -> int:
        """Queue scripted answers (``"drop"`` is short for ``{"kind": "drop"}``)."""
        items = [{"kind": item} if isinstance(item, str) else item for item in answers]
        script = Script.model_validate({"provider": provider, "sender": sender, "answers": items})
        return self.call(lambda: self.simulator.add_script(script))


def serve(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    asyncio.run(_serve(config, host, port, announce))


async def _serve(
    config: SimulatorConfig | None, host: str, port: int, announce: Callable[[str], None]
) -> None:
    sock = _listen(host, port)
    url = _url(sock)
    runner = await _start_site(create_app(Simulator(config)), sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    announce(f"wadispatch simulator listening on {url} (stats: {url}/_sim/stats)")
    for name, value in base_urls(url).items():
        announce(f"  {name}={value}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
