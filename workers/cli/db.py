"""``wadispatch db upgrade|current|history``: the ledger's schema revisions."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from wadispatch.cli.common import err, fail, load_settings, out

db_app = typer.Typer(
    name="db",
    help="The ledger's schema: upgrade it to this release, show its revision, list the revisions.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``db`` group to the ``wadispatch`` command."""
    app.add_typer(db_app)


def _database_url() -> str:
    from wadispatch.ledger import normalise_database_url

    return normalise_database_url(load_settings().database_url)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Upgrade the ledger to this release's revision (creating it when empty), keeping every row.

    A ledger of the release before migrations is recognised by its tables. Safe to run again,
    and while other processes start: they wait for it.
    """
    from wadispatch.ledger import revisions

    result = revisions.upgrade(_database_url())
    out.print(result.describe(), highlight=False, soft_wrap=True)


@db_app.command("current")
def current_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: revision, head, standing.")
    ] = False,
) -> None:
    """Show the ledger's revision and whether it is behind this release.

    Exit 0 when up to date, 1 when `wadispatch db upgrade` has work to do (behind, or no ledger
    yet), 2 when the ledger is at a revision this release does not know.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool
    from wadispatch.ledger import revisions

    engine = create_engine(_database_url(), poolclass=NullPool)
    try:
        status = revisions.ledger_status(engine)
    finally:
        engine.dispose()
    if as_json:
        record = {"revision": status.revision, "head": status.head, "standing": str(status.standing)}
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        out.print(f"ledger {status.describe()}", highlight=False, soft_wrap=True)
    if status.standing is revisions.Standing.UNKNOWN:
        raise typer.Exit(2)
    if status.needs_upgrade:
        raise typer.Exit(1)


@db_app.command("history")
def history_command() -> None:
    """List the schema's revisions, oldest first; the last is this release's (head)."""
    from wadispatch.ledger import revisions

    listed = revisions.history()
    if not listed:
        fail("[red]error[/]: no revisions found")
    for revision in listed:
        mark = " (head)" if revision is listed[-1] else ""
        out.print(f"{revision.revision}{mark}  {revision.summary}", highlight=False, soft_wrap=True)
    err.print(f"{len(listed)} revisions; `wadispatch db current` shows the ledger's")
