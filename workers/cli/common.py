"""What the command groups share: the two consoles, settings and ledger loading, JSON input, exits.

Group modules import this module, never :mod:`wadispatch.cli.root`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from wadispatch import jsonread
from wadispatch.errors import MessageValidationError
from wadispatch.settings import Settings, get_settings

if TYPE_CHECKING:
    from wadispatch.ledger import Ledger

#: Results (ids, tables, summaries): what a script reads.
out = Console()
#: Errors, warnings and progress.
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` (rich markup) on stderr and exit with ``code``."""
    err.print(message)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The settings, or exit 2 naming the environment variable that is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        for detail in exc.errors(include_url=False):
            name = "WADISPATCH_" + "_".join(str(part) for part in detail["loc"]).upper()
            err.print(f"[red]configuration error[/]: {name}: {detail['msg']}")
        raise typer.Exit(2) from None


def open_ledger() -> Ledger:
    """The ledger of the configured database (exit 2 if the settings are wrong)."""
    from wadispatch.ledger import get_ledger

    return get_ledger(load_settings().database_url)


def read_json(path: Path, what: str) -> Any:
    """The JSON in ``path``, or exit 1 saying why it cannot be read (``what`` names the file's role)."""
    try:
        return jsonread.loads(path.read_bytes())
    except OSError as exc:
        fail(f"[red]error[/]: cannot read {what} {path}: {exc.strerror}")
    except jsonread.JsonInputError as exc:
        fail(f"[red]error[/]: {exc.describe(str(path))}")


def print_validation_errors(exc: MessageValidationError, options: dict[str, str] | None = None) -> None:
    """One line per broken rule of a send request, after a count; ``options`` names the
    command-line option of a field where it differs."""
    err.print(f"[red]invalid request[/]: {len(exc.errors)} problem(s)")
    for error in exc.errors:
        err.print(f"  {(options or {}).get(error.path, error.path)}: {error.rule}")
