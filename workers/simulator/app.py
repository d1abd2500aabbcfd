"""The aiohttp application: the five providers' paths and the ``/_sim`` control endpoints.

Provider paths (one host, all distinct)::

    POST /v1/whatsapp/messages/interactive                                   briq
    POST /v1/send                                                            bird
    POST /api/ingest/whatsapp/v1/message/interactive/reply-buttons/send      zixflow (buttons)
    POST /api/ingest/whatsapp/v1/message/interactive/list/send               zixflow (lists)
    POST /messages/interactive                                               wacr
    POST /{version}/{phone_number_id}/messages    (version like v23.0)       meta

Control::

    GET  /_sim/health             {"ok": true}
    GET  /_sim/stats[?log=0]      counters, rates, callbacks and the accepted-message log
    POST /_sim/reset              clear counters, log, scripts, limit windows, planned callbacks
    POST /_sim/script             queue scripted answers (see :mod:`wadispatch.simulator.script`)
    GET  /_sim/script             how many scripted answers wait
    GET  /_sim/config             the current SimulatorConfig
    PUT  /_sim/config             replace knobs (partial JSON allowed); 422 with errors if invalid
    GET  /_sim/fate?recipient=..  a recipient's fate under the current config
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from wadispatch.settings import PROVIDER_NAMES, ProviderName
from wadispatch.simulator.config import SimulatorConfig
from wadispatch.simulator.engine import Simulator
from wadispatch.simulator.fates import digits_of
from wadispatch.simulator.providers.zixflow import BUTTONS_PATH, LIST_PATH
from wadispatch.simulator.script import Script

SIMULATOR = web.AppKey("simulator", Simulator)
META_PATH = r"/{version:v\d+(?:\.\d+)?}/{phone_number_id:[^/]+}/messages"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer; aiohttp's write of the dummy answer then fails
    quietly (it treats a connection error while answering as the client having gone)."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


async def _provider_request(
    provider: ProviderName, request: web.Request, *, params: dict[str, str] | None = None
) -> web.StreamResponse:
    simulator = request.app[SIMULATOR]
    raw = await request.read()
    outcome = simulator.handle(provider, params or request.match_info, request.headers, raw)
    if outcome.kind == "drop":
        return _drop(request)
    if outcome.kind == "hang":
        await simulator.hang(outcome.delay)
        return _drop(request)
    if outcome.delay > 0.0:
        await asyncio.sleep(outcome.delay)
    answer = outcome.answer
    assert answer is not None
    return web.Response(
        body=json.dumps(answer.body, separators=(",", ":")).encode(),
        status=answer.status,
        headers=answer.headers,
        content_type="application/json",
    )


async def _stats(request: web.Request) -> web.Response:
    include_log = request.query.get("log", "1").lower() not in ("0", "false", "no")
    return _json(request.app[SIMULATOR].snapshot(include_log=include_log))


async def _reset(request: web.Request) -> web.Response:
    request.app[SIMULATOR].reset()
    return _json({"ok": True})


async def _add_script(request: web.Request) -> web.Response:
    try:
        script = Script.model_validate_json(await request.read())
    except ValidationError as exc:
        return _json({"errors": json.loads(exc.json(include_url=False))}, status=400)
    queued = request.app[SIMULATOR].add_script(script)
    return _json({"queued": queued, "pending": request.app[SIMULATOR].script.pending()})


async def _script_pending(request: web.Request) -> web.Response:
    return _json({"pending": request.app[SIMULATOR].script.pending()})


async def _get_config(request: web.Request) -> web.Response:
    return _json(request.app[SIMULATOR].config.model_dump(mode="json"))


async def _put_config(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    try:
        changes = json.loads(await request.read())
    except ValueError:
        return _json({"errors": [{"msg": "the body must be a JSON object"}]}, status=400)
    if not isinstance(changes, dict):
        return _json({"errors": [{"msg": "the body must be a JSON object"}]}, status=400)
    try:
        config = simulator.config.updated(changes)
    except ValidationError as exc:
        return _json({"errors": json.loads(exc.json(include_url=False))}, status=422)
    simulator.apply(config)
    return _json(config.model_dump(mode="json"))


async def _fate(request: web.Request) -> web.Response:
    digits = digits_of(request.query.get("recipient", ""))
    if not digits:
        return _json({"errors": [{"msg": "recipient is required"}]}, status=400)
    return _json({"recipient": digits, "fate": request.app[SIMULATOR].fate(digits)})


async def _health(request: web.Request) -> web.Response:
    return _json({"ok": True, "providers": list(PROVIDER_NAMES)})


def create_app(simulator: Simulator | SimulatorConfig | None = None) -> web.Application:
    """The aiohttp application around a :class:`Simulator` (made from a config when given one)."""
    if not isinstance(simulator, Simulator):
        simulator = Simulator(simulator)
    app = web.Application()
    app[SIMULATOR] = simulator

    def provider(name: ProviderName, **params: str) -> Handler:
        if params:
            return partial(_provider_request, name, params=params)
        return partial(_provider_request, name)

    app.router.add_post("/v1/whatsapp/messages/interactive", provider("briq"))
    app.router.add_post("/v1/send", provider("bird"))
    app.router.add_post(BUTTONS_PATH, provider("zixflow", kind="button"))
    app.router.add_post(LIST_PATH, provider("zixflow", kind="list"))
    app.router.add_post("/messages/interactive", provider("wacr"))
    app.router.add_post(META_PATH, provider("meta"))
    app.router.add_get("/_sim/health", _health)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_post("/_sim/script", _add_script)
    app.router.add_get("/_sim/script", _script_pending)
    app.router.add_get("/_sim/config", _get_config)
    app.router.add_put("/_sim/config", _put_config)
    app.router.add_get("/_sim/fate", _fate)

    async def start(app: web.Application) -> None:
        await app[SIMULATOR].start()

    async def close(app: web.Application) -> None:
        await app[SIMULATOR].close()

    app.on_startup.append(start)
    app.on_shutdown.append(close)
    return app
