"""The ``wadispatch`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from wadispatch.errors import ConfigurationError, MessageValidationError, UnknownMessage
from wadispatch.settings import PROVIDER_NAMES, Settings, get_settings

app = typer.Typer(
    name="wadispatch",
    help="A queue for WhatsApp interactive messages (reply buttons and lists).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    """The settings, or exit 2 naming the environment variable that is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        for detail in exc.errors(include_url=False):
            name = "WADISPATCH_" + "_".join(str(part) for part in detail["loc"]).upper()
            err.print(f"[red]configuration error[/]: {name}: {detail['msg']}")
        raise typer.Exit(2) from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        err.print(f"[red]error[/]: cannot read {what} {path}: {exc.strerror}")
    except json.JSONDecodeError as exc:
        err.print(f"[red]error[/]: {path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}")
    raise typer.Exit(1)


def _print_validation_errors(exc: MessageValidationError) -> None:
    err.print(f"[red]invalid request[/]: {len(exc.errors)} problem(s)")
    for error in exc.errors:
        err.print(f"  {error.path}: {error.rule}")


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="JSON file holding a send request.")],
) -> None:
    """Check a send request {"provider", "sender", "to", "interactive"}: exit 0 if valid, 1 if not."""
    from wadispatch.messages import validate_send_request

    try:
        request = validate_send_request(_read_json(file, "request"))
    except MessageValidationError as exc:
        _print_validation_errors(exc)
        raise typer.Exit(1) from None
    out.print(f"valid: {request.interactive.type} message for {request.provider}")


@app.command()
def send(
    provider: Annotated[str, typer.Option(help=f"One of {', '.join(PROVIDER_NAMES)}.")],
    interactive: Annotated[Path, typer.Option(help="JSON file with the WhatsApp interactive object.")],
    to: Annotated[str | None, typer.Option(help="Recipient phone number, E.164.")] = None,
    sender: Annotated[str | None, typer.Option(help="The provider's sender handle.")] = None,
    conversation_id: Annotated[str | None, typer.Option(help="Briq only: an existing thread.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same message: sent once.")] = None,
    eager: Annotated[
        bool, typer.Option("--eager", help="Run the whole pipeline here, without a broker.")
    ] = False,
) -> None:
    """Enqueue one interactive message and print its id (--eager: send it now, exit 1 unless sent)."""
    from wadispatch.producer import enqueue, send_eagerly

    settings = _settings()
    request: dict[str, Any] = {
        "provider": provider,
        "sender": sender,
        "to": to,
        "conversation_id": conversation_id,
        "interactive": _read_json(interactive, "interactive object"),
        "idempotency_key": idempotency_key,
    }
    request = {key: value for key, value in request.items() if value is not None}
    try:
        if eager:
            record = send_eagerly(request, settings=settings)
            out.print(record.id)
            if record.state.value != "sent":
                err.print(f"[red]{record.state.value}[/]: {record.reason or 'not sent'}")
                if record.provider_error_message:
                    err.print(f"  provider said: {record.provider_error_message}")
                raise typer.Exit(1)
            return
        result = enqueue(request)
    except MessageValidationError as exc:
        _print_validation_errors(exc)
        raise typer.Exit(1) from None
    out.print(result.message_id)
    if result.duplicate:
        err.print(f"idempotency key already used: this is the first message's id ({result.status})")
    elif not result.published:
        err.print("[yellow]broker unreachable[/]: the message is recorded pending and will be re-queued")


@app.command()
def status(
    message_id: Annotated[str, typer.Argument(help="The id `send` printed.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a message's state, provider id, attempts, last error and transitions."""
    from wadispatch.ledger import get_ledger

    ledger = get_ledger(_settings().database_url)
    try:
        record = ledger.get(message_id)
    except UnknownMessage:
        err.print(f"[red]no message {message_id}[/]")
        raise typer.Exit(1) from None
    history = ledger.transitions(message_id)
    summary = {
        "message_id": record.id,
        "state": record.state.value,
        "reason": record.reason,
        "provider": record.provider,
        "provider_message_id": record.provider_message_id,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at.isoformat() if record.next_attempt_at else None,
        "last_error": (
            {"code": record.provider_error_code, "message": record.provider_error_message}
            if record.provider_error_code or record.provider_error_message
            else None
        ),
        "created_at": record.created_at.isoformat(),
        "transitions": [
            {
                "from": t.from_state.value if t.from_state else None,
                "to": t.to_state.value,
                "at": t.at.isoformat(),
                "attempt": t.attempt,
                "reason": t.reason,
                "detail": t.detail,
            }
            for t in history
        ],
    }
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(
        f"[bold]{record.id}[/]  {record.state.value}" + (f" ({record.reason})" if record.reason else "")
    )
    out.print(f"provider {record.provider}, provider message id {record.provider_message_id or '-'}")
    out.print(f"attempts {record.attempts}")
    if summary["last_error"]:
        out.print(f"last error: {record.provider_error_code or '-'} {record.provider_error_message or ''}")
    table = Table("at", "from", "to", "attempt", "reason", "detail")
    for t in history:
        table.add_row(
            t.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            t.from_state.value if t.from_state else "",
            t.to_state.value,
            str(t.attempt),
            t.reason or "",
            json.dumps(t.detail) if t.detail else "",
        )
    out.print(table)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    pool: Annotated[str | None, typer.Option(help="threads (default), gevent, prefork or solo.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("-c", "--concurrency", help="Jobs at once (their sends run concurrently).")
    ] = None,
    loglevel: Annotated[str, typer.Option("-l", "--loglevel")] = "INFO",
) -> None:
    """Start a Celery worker tuned for I/O-bound sends (threads pool). Extra args go to Celery."""
    from wadispatch.celery import app as celery_app

    settings = _settings()
    argv = [
        "worker",
        f"--pool={pool or settings.worker_pool}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--queues={settings.queue}",
        f"--loglevel={loglevel}",
        "--task-events",
        *ctx.args,
    ]
    celery_app.worker_main(argv)


@app.command()
def demo(
    messages: Annotated[int, typer.Option(min=1, help="Messages to send.")] = 2000,
    rate: Annotated[int, typer.Option(min=1, help="The simulator's limit per sender, messages/s.")] = 80,
    latency_ms: Annotated[float, typer.Option(min=0, help="Median simulated provider latency.")] = 150.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs the worker runs at once.")] = 8,
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower and print its URL.")] = False,
    flower_port: Annotated[int, typer.Option(help="Flower's port on 127.0.0.1.")] = 5555,
    out: Annotated[Path, typer.Option(help="Where to write the CSV of outcomes.")] = Path(
        "demo-outcomes.csv"
    ),
    timeout: Annotated[float, typer.Option(min=1, help="Give up waiting after this many seconds.")] = 150.0,
) -> None:
    """Run the whole system on embedded defaults: Valkey, SQLite, the simulator and a worker."""
    from wadispatch.demo import DemoOptions, run_demo

    options = DemoOptions(
        messages=messages,
        rate=rate,
        latency_ms=latency_ms,
        concurrency=concurrency,
        flower=flower,
        flower_port=flower_port,
        out=out,
        timeout=timeout,
    )
    raise typer.Exit(run_demo(options))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def flower(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5555,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Start Flower on the wadispatch app. Set FLOWER_BASIC_AUTH=user:password to require a login.

    Extra arguments go to Flower (e.g. --basic-auth=user:pass, --persistent).
    """
    from wadispatch.celery import app as celery_app

    _settings()
    celery_app.start(["flower", f"--port={port}", f"--address={address}", *ctx.args])


def _register_simulator() -> None:
    from wadispatch.simulator.cli import simulator_command

    app.command("simulator", help="Run the provider simulator: all five provider APIs on one local server.")(
        simulator_command
    )


_register_simulator()


def _register_api() -> None:
    from wadispatch.api.cli import api_command, api_key_app

    app.command("api")(api_command)
    app.add_typer(api_key_app)


_register_api()


def _register_recovery() -> None:
    from wadispatch.recovery_cli import dead_letters_app, reconcile_command

    app.command("reconcile")(reconcile_command)
    app.add_typer(dead_letters_app)


_register_recovery()


def _register_campaigns() -> None:
    """``wadispatch campaign ...`` and ``wadispatch suppress ...`` (issue 5)."""
    from wadispatch.campaign_cli import register

    register(app, settings=_settings, read_json=_read_json)


_register_campaigns()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[red]configuration error[/]: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
