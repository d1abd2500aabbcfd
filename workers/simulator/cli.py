"""``wadispatch simulator``: serve the provider simulator in the foreground.

:func:`simulator_command` is a plain function with typer-annotated parameters; the ``wadispatch``
command registers it (:mod:`wadispatch.cli.simulator`), and ``python -m wadispatch.simulator`` runs
it alone. Flags override the config file, which overrides the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from wadispatch.simulator.config import LatencyDistribution, SimulatorConfig, load_config
from wadispatch.simulator.server import DEFAULT_PORT, serve


def simulator_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A JSON or TOML file of SimulatorConfig fields."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = DEFAULT_PORT,
    latency: Annotated[
        LatencyDistribution | None,
        typer.Option(help="Latency distribution: lognormal, fixed or uniform."),
    ] = None,
    latency_ms: Annotated[
        float | None, typer.Option(help="Fixed latency, or the lognormal's median (ms).")
    ] = None,
    latency_p99_ms: Annotated[
        float | None, typer.Option(help="The lognormal's 99th percentile (ms).")
    ] = None,
    sender_limit: Annotated[
        int | None, typer.Option(help="Messages per sender per second (0: unlimited).")
    ] = None,
    pair_limit: Annotated[
        int | None,
        typer.Option(help="Messages per (sender, recipient) per pair window (0: unlimited)."),
    ] = None,
    window_closed_share: Annotated[
        float | None, typer.Option(help="Share of recipients whose 24-hour window is closed.")
    ] = None,
    window_closed_by_webhook: Annotated[
        bool | None,
        typer.Option(
            "--window-closed-by-webhook/--window-closed-at-once",
            help="Meta: accept a message to a closed window and report it failed (131047) by webhook.",
        ),
    ] = None,
    opted_out_share: Annotated[float | None, typer.Option(help="Share of recipients who opted out.")] = None,
    error_rate: Annotated[float | None, typer.Option(help="Share of 5xx answers.")] = None,
    hang_rate: Annotated[float | None, typer.Option(help="Share of hung requests.")] = None,
    drop_rate: Annotated[float | None, typer.Option(help="Share of dropped connections.")] = None,
    hang_seconds: Annotated[
        float | None, typer.Option(help="How long a hung request waits before closing.")
    ] = None,
    rate_limited_rate: Annotated[
        float | None, typer.Option(help="Share of requests answered with the provider's 429 (a storm).")
    ] = None,
    rate_limited_retry_after: Annotated[
        float | None, typer.Option(help="The Retry-After (seconds) of those 429s.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where every provider's callbacks are posted.")
    ] = None,
    reply_share: Annotated[
        float | None, typer.Option(help="Share of read messages the user answers.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of fates and random draws.")] = None,
) -> None:
    """Run the simulator of all five providers (briq, bird, zixflow, wacr, meta) until Ctrl-C."""
    flags: dict[str, Any] = {
        "latency": latency,
        "latency_ms": latency_ms,
        "latency_p99_ms": latency_p99_ms,
        "sender_limit": sender_limit,
        "pair_limit": pair_limit,
        "window_closed_share": window_closed_share,
        "window_closed_by_webhook": window_closed_by_webhook,
        "opted_out_share": opted_out_share,
        "error_rate": error_rate,
        "hang_rate": hang_rate,
        "drop_rate": drop_rate,
        "hang_seconds": hang_seconds,
        "rate_limited_rate": rate_limited_rate,
        "rate_limited_retry_after": rate_limited_retry_after,
        "webhook_url": webhook_url,
        "reply_share": reply_share,
        "seed": seed,
    }
    try:
        base = load_config(config) if config is not None else SimulatorConfig()
        settings = base.updated({key: value for key, value in flags.items() if value is not None})
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(str(exc)) from exc
    serve(settings, host, port, announce=typer.echo)


def main() -> None:
    """Entry point of ``python -m wadispatch.simulator``."""
    typer.run(simulator_command)
