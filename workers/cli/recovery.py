"""``wadispatch reconcile`` and ``wadispatch dead-letters``: recovery by hand."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from wadispatch.cli.common import err, fail, load_settings, open_ledger, out

if TYPE_CHECKING:
    from wadispatch.ledger import DeadLetter

dead_letters_app = typer.Typer(
    name="dead-letters",
    help="Jobs no worker could run (undecodable, unknown task or message id): list, replay, purge.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``reconcile`` and the ``dead-letters`` group to the ``wadispatch`` command."""
    app.command("reconcile")(reconcile_command)
    app.add_typer(dead_letters_app)


def reconcile_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be done; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Republish pending messages whose job was lost; settle messages stuck in sending (by policy).

    One run at a time per queue: a run that finds another holding the lock says so and exits.
    Republishing holds back while no worker is alive or the queue is over its bound.
    """
    from wadispatch.publishing import publish_many
    from wadispatch.reconciler import run_once

    settings = load_settings()
    report = run_once(open_ledger(), settings, publish_many, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
        return
    out.print(report.summary())
    if report.held_back or report.held_back_stuck:
        err.print(f"[yellow]held back[/]: {report.hold_reason}; republished once a worker takes jobs")
    if report.publish_failed:
        err.print("[yellow]broker unreachable[/]: those messages stay pending and are tried again next run")


@dead_letters_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    pending_only: Annotated[bool, typer.Option("--pending", help="Only those not replayed yet.")] = False,
) -> None:
    """List dead letters, oldest first."""
    letters = open_ledger().dead_letters(include_replayed=not pending_only)
    if as_json:
        sys.stdout.write(json.dumps([_as_dict(letter) for letter in letters]) + "\n")
        return
    if not letters:
        out.print("no dead letters")
        return
    table = Table("id", "at", "reason", "task", "replayable", "replayed", "error")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.created_at.strftime("%Y-%m-%d %H:%M:%S") if letter.created_at else "",
            letter.reason,
            letter.task or "-",
            "yes" if letter.replayable else "no",
            letter.replayed_at.strftime("%Y-%m-%d %H:%M:%S") if letter.replayed_at else "",
            (letter.error or "")[:80],
        )
    out.print(table)


@dead_letters_app.command("replay")
def replay_command(
    letter_ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (see `list`).")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead letter not replayed yet.")] = False,
) -> None:
    """Publish dead letters' jobs again. One whose body could not be decoded cannot be replayed."""
    from wadispatch.deadletters import replay

    ledger = open_ledger()
    if replay_all == bool(letter_ids):
        fail("[red]error[/]: give dead letter ids or --all (not both)", code=2)
    ids = letter_ids or [letter.id for letter in ledger.dead_letters(include_replayed=False) if letter.id]
    try:
        result = replay(ledger, ids)
    except LookupError as exc:
        fail(f"[red]error[/]: {exc.args[0]}")
    out.print(f"replayed {len(result.replayed)}")
    for letter_id in result.not_replayable:
        err.print(f"#{letter_id} cannot be replayed: its body could not be decoded (nothing to publish)")
    if result.failed:
        err.print(f"[yellow]broker unreachable[/]: {len(result.failed)} not replayed; try again")
    if result.not_replayable or result.failed:
        raise typer.Exit(1)


@dead_letters_app.command("purge")
def purge_command(
    purge_all: Annotated[bool, typer.Option("--all", help="Also those never replayed.")] = False,
) -> None:
    """Delete replayed dead letters (with --all, every dead letter)."""
    removed = open_ledger().purge_dead_letters(replayed_only=not purge_all)
    out.print(f"purged {removed}")


def _as_dict(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "created_at": letter.created_at.isoformat() if letter.created_at else None,
        "reason": letter.reason,
        "error": letter.error,
        "queue": letter.queue,
        "task": letter.task,
        "args": letter.args,
        "replayable": letter.replayable,
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        "headers": letter.headers,
        "body": letter.body,
        "body_encoding": letter.body_encoding,
        "body_truncated": letter.body_truncated,
    }
