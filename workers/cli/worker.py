"""``wadispatch worker`` and ``wadispatch flower``: the Celery programs, run on the wadispatch app."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from wadispatch.cli.common import load_settings

#: Unknown options and extra arguments are passed on to Celery (or Flower) untouched.
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``flower`` to the ``wadispatch`` command."""
    app.command(context_settings=PASS_THROUGH)(worker)
    app.command(context_settings=PASS_THROUGH)(flower)


def worker(
    ctx: typer.Context,
    pool: Annotated[str | None, typer.Option(help="threads (default), gevent, prefork or solo.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("-c", "--concurrency", help="Jobs at once (their sends run concurrently).")
    ] = None,
    loglevel: Annotated[str, typer.Option("-l", "--loglevel")] = "INFO",
    supervise: Annotated[
        bool,
        typer.Option(
            help="Run the Celery worker as a child process and restart it when it exits with an error "
            "(--no-supervise: run it in this process)."
        ),
    ] = True,
    max_restarts: Annotated[
        int, typer.Option(min=0, help="Restarts allowed within --restart-window before giving up.")
    ] = 5,
    restart_window: Annotated[float, typer.Option(min=1.0, help="Seconds (see --max-restarts).")] = 60.0,
) -> None:
    """Start a Celery worker tuned for I/O-bound sends (threads pool). Extra args go to Celery.

    By default it runs supervised: restarted with backoff when it dies (README "Recovery").
    """
    settings = load_settings()
    options = [
        f"--pool={pool or settings.worker_pool}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--loglevel={loglevel}",
    ]
    if supervise:
        from wadispatch.ledger.revisions import require_current
        from wadispatch.supervisor import RestartPolicy, configure_logging

        # A ledger behind this release is refused here, once, not by children restarted in a loop.
        require_current(settings.database_url)
        from wadispatch.supervisor import supervise as run_supervised

        configure_logging(loglevel)
        child = [sys.executable, "-m", "wadispatch", "worker", "--no-supervise", *options, *ctx.args]
        raise typer.Exit(run_supervised(child, RestartPolicy(max_restarts, restart_window)))

    from wadispatch.celery import app as celery_app

    celery_app.worker_main(["worker", *options, f"--queues={settings.queue}", "--task-events", *ctx.args])


def flower(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5555,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Start Flower on the wadispatch app. Set FLOWER_BASIC_AUTH=user:password to require a login.

    Extra arguments go to Flower (e.g. --basic-auth=user:pass, --persistent).
    """
    from wadispatch.celery import app as celery_app

    load_settings()
    celery_app.start(["flower", f"--port={port}", f"--address={address}", *ctx.args])
