"""``wadispatch validate``, ``send`` and ``status``: one message at a time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from wadispatch.cli.common import (
    err,
    fail,
    load_settings,
    open_ledger,
    out,
    print_validation_errors,
    read_json,
)
from wadispatch.errors import MessageValidationError, UnknownMessage
from wadispatch.settings import PROVIDER_NAMES


def register(app: typer.Typer) -> None:
    """Add ``validate``, ``send`` and ``status`` to the ``wadispatch`` command."""
    app.command()(validate)
    app.command()(send)
    app.command()(status)


def validate(
    file: Annotated[Path, typer.Argument(help="JSON file holding a send request.")],
) -> None:
    """Check a send request {"provider", "sender", "to", "interactive"}: exit 0 if valid, 1 if not."""
    from wadispatch.messages import validate_send_request

    try:
        request = validate_send_request(read_json(file, "request"))
    except MessageValidationError as exc:
        print_validation_errors(exc)
        raise typer.Exit(1) from None
    out.print(f"valid: {request.interactive.type} message for {request.provider}")


#: Request fields whose command-line option has another name.
_OPTIONS = {"valid_for_seconds": "--valid-for", "expires_at": "--expires-at"}


def send(
    provider: Annotated[str, typer.Option(help=f"One of {', '.join(PROVIDER_NAMES)}.")],
    interactive: Annotated[Path, typer.Option(help="JSON file with the WhatsApp interactive object.")],
    to: Annotated[
        str | None, typer.Option(help="Recipient: an E.164 phone number, or a BSUID (US.1349...) for meta.")
    ] = None,
    sender: Annotated[str | None, typer.Option(help="The provider's sender handle.")] = None,
    conversation_id: Annotated[str | None, typer.Option(help="Briq only: an existing thread.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same message: sent once.")] = None,
    eager: Annotated[
        bool, typer.Option("--eager", help="Run the whole pipeline here, without a broker.")
    ] = False,
    fallback_template: Annotated[
        Path | None,
        typer.Option(
            "--fallback-template",
            help="JSON file: an approved template sent instead if the recipient's 24-hour window is "
            "closed (meta only): name, language, body_parameters, quick_replies.",
        ),
    ] = None,
    valid_for: Annotated[
        int | None,
        typer.Option(help="Seconds (1-36000) it may still be sent; not sent by then, it fails `expired`."),
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            help="Not sent by this ISO 8601 time (with offset, at most 10 h away), it fails `expired`."
        ),
    ] = None,
) -> None:
    """Enqueue one interactive message and print its id (--eager: send it now, exit 1 unless sent)."""
    from wadispatch import enqueue
    from wadispatch.eager import send_eagerly

    settings = load_settings()
    request: dict[str, Any] = {
        "provider": provider,
        "sender": sender,
        "to": to,
        "conversation_id": conversation_id,
        "interactive": read_json(interactive, "interactive object"),
        "idempotency_key": idempotency_key,
        "fallback": None if fallback_template is None else read_json(fallback_template, "fallback template"),
        "valid_for_seconds": valid_for,
        "expires_at": expires_at,
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
        print_validation_errors(exc, _OPTIONS)
        raise typer.Exit(1) from None
    out.print(result.message_id)
    if result.duplicate:
        err.print(f"idempotency key already used: this is the first message's id ({result.status})")
    elif not result.published:
        err.print("[yellow]broker unreachable[/]: the message is recorded pending and will be re-queued")


def status(
    message_id: Annotated[str, typer.Argument(help="The id `send` printed.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a message's state, provider id, attempts, last error and transitions."""
    ledger = open_ledger()
    try:
        record = ledger.get(message_id)
    except UnknownMessage:
        fail(f"[red]no message {message_id}[/]")
    history = ledger.transitions(message_id)
    summary = {
        "message_id": record.id,
        "state": record.state.value,
        "reason": record.reason,
        "provider": record.provider,
        "provider_message_id": record.provider_message_id,
        "attempts": record.attempts,
        "sent_as": record.sent_as,
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
    if record.sent_as:
        out.print(f"sent as {record.sent_as} (the recipient's 24-hour window was closed)")
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
