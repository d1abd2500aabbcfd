"""``wadispatch prune``: delete what the ledger keeps past its retention, by hand."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from wadispatch.cli.common import load_settings, open_ledger, out


def register(app: typer.Typer) -> None:
    """Add ``prune`` to the ``wadispatch`` command."""
    app.command("prune")(prune_command)


def prune_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete webhook event keys, transitions of settled messages, replayed dead letters and ended
    campaigns' skipped rows past their retention (WADISPATCH_PRUNE_*_AFTER_DAYS)."""
    from wadispatch.prune import prune

    settings = load_settings()
    report = prune(open_ledger(), settings, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
        return
    for line in report.lines():
        out.print(line, highlight=False)
