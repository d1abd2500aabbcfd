"""The ``wadispatch`` command: the root, and the one list of the command groups it is made of.

A group module exposes ``register(app)`` and imports only :mod:`wadispatch.cli.common`; adding a
group is adding its module to :data:`GROUPS`.
"""

from __future__ import annotations

import sys
from types import ModuleType

import typer
from wadispatch.cli import api, campaigns, db, demo, messages, prune, recovery, simulator, worker
from wadispatch.cli.common import err
from wadispatch.errors import ConfigurationError

#: In the order ``wadispatch --help`` lists them.
GROUPS: tuple[ModuleType, ...] = (messages, worker, demo, simulator, api, recovery, prune, campaigns, db)

app = typer.Typer(
    name="wadispatch",
    help="A queue for WhatsApp interactive messages (reply buttons and lists).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in GROUPS:
    group.register(app)


def main() -> None:
    """Console-script entry point: run the command; a configuration error exits 2."""
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[red]configuration error[/]: {exc}")
        sys.exit(2)
