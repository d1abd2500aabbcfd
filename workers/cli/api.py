"""``wadispatch api`` (serve the HTTP API) and ``wadispatch api-key create|list|revoke``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from wadispatch.cli.common import err, fail, load_settings, open_ledger

# Key listings are read by people and pasted; no highlighting of ids and dates.
plain = Console(highlight=False)

api_key_app = typer.Typer(
    name="api-key",
    help="Create, list and revoke HTTP API keys (stored hashed; a key is shown once).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``api`` and the ``api-key`` group to the ``wadispatch`` command."""
    app.command("api")(api_command)
    app.add_typer(api_key_app)


def api_command(
    host: Annotated[str | None, typer.Option(help="Address to bind (default WADISPATCH_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default WADISPATCH_API_PORT, 8000).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the HTTP API (enqueue, message status, provider webhooks; docs at /docs)."""
    import logging

    import uvicorn
    from wadispatch.api import create_app
    from wadispatch.api.logs import RedactAccessLog

    settings = load_settings()
    config = uvicorn.Config(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=log_level,
        proxy_headers=True,
        server_header=False,
    )
    # After uvicorn configured its loggers: webhook URL secrets stay out of the access log.
    logging.getLogger("uvicorn.access").addFilter(RedactAccessLog())
    uvicorn.Server(config).run()


@api_key_app.command("create")
def create(name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. helpdesk-web.")]) -> None:
    """Create a key and print it (stdout, once: it is stored only as a hash)."""
    from wadispatch.api.auth import create_api_key

    if not name.strip() or len(name) > 128:
        fail("[red]error[/]: NAME must be 1 to 128 characters")
    key_id, key = create_api_key(open_ledger(), name.strip())
    err.print(f"created API key {key_id} ({name.strip()}); store it now, it is not shown again:")
    sys.stdout.write(key + "\n")


@api_key_app.command("list")
def list_keys() -> None:
    """Every key, one a line: id, name, first characters, created, revoked (or active)."""
    for record in open_ledger().list_api_keys():
        revoked = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
        created = f"created {record.created_at:%Y-%m-%d %H:%M}"
        plain.print(f"{record.id}  {record.name}  {record.prefix}…  {created}  {revoked}", soft_wrap=True)


@api_key_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The id `api-key list` shows.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    if not open_ledger().revoke_api_key(key_id):
        fail(f"[red]no active API key {key_id}[/]")
    err.print(f"revoked {key_id}")
