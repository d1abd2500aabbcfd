"""``wadispatch campaign ...`` and ``wadispatch suppress ...``: bulk campaigns from the command line.

Exit codes: 0 done (or detached, or the command did what it says), 1 bad input (template, file,
region, start, send window, time zone, validity, unknown campaign id), 2 configuration error,
130 interrupted by Ctrl-C while watching (the campaign keeps running).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from wadispatch.campaigns.errors import CampaignInputError, UnknownCampaign
from wadispatch.cli.common import err, load_settings, out, read_json
from wadispatch.errors import MessageValidationError
from wadispatch.settings import PROVIDER_NAMES

# Each command imports the campaigns API itself: it loads the ledger and phonenumbers, which
# `wadispatch --help` and every other command can do without.
if TYPE_CHECKING:
    from wadispatch.campaigns import api

campaign_app = typer.Typer(
    help="Bulk campaigns: one interactive message to every row of a CSV or JSONL file."
)
suppress_app = typer.Typer(help="The suppression list: numbers campaigns skip (all senders, or one).")
POLL_SECONDS = 1.0

CampaignId = Annotated[
    str, typer.Argument(help="The campaign's id (`campaign send` and `campaign list` show it).")
]


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` and ``suppress`` groups to the ``wadispatch`` command."""
    app.add_typer(campaign_app, name="campaign", no_args_is_help=True)
    app.add_typer(suppress_app, name="suppress", no_args_is_help=True)


@campaign_app.command("send")
def send(
    file: Annotated[
        Path, typer.Argument(help="Recipients: .csv with a header row, or .jsonl (one object a line).")
    ],
    message: Annotated[
        Path,
        typer.Option(
            "--message", "-m", help="JSON file: the interactive object, with {column} placeholders."
        ),
    ],
    provider: Annotated[str, typer.Option(help=f"One of {', '.join(PROVIDER_NAMES)}.")],
    sender: Annotated[
        list[str] | None,
        typer.Option(
            help="The provider's sender handle; repeat it for a pool of senders (each recipient gets "
            "one, the same in later pool campaigns; at most 50)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the campaign (default: the file's).")] = None,
    phone_column: Annotated[str, typer.Option(help="The column holding the phone number.")] = "phone",
    region: Annotated[
        str | None, typer.Option(help="Region of numbers without a country code, e.g. TZ (ISO 3166).")
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: from the file's extension).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once the file is read; do not watch.")
    ] = False,
    fallback_template: Annotated[
        Path | None,
        typer.Option(
            "--fallback-template",
            help="JSON file: an approved template sent instead when a recipient's 24-hour window is "
            "closed (Meta only): name, language, body_parameters, quick_replies ({column} placeholders).",
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            help="Send nothing before this time: ISO 8601 with its offset, e.g. 2026-05-01T09:00+02:00."
        ),
    ] = None,
    send_window: Annotated[
        str | None,
        typer.Option(
            help="Send only between these local times of each recipient, e.g. 09:00-20:00 (22:00-06:00 "
            "crosses midnight); the zone comes from the phone number unless --timezone forces one."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Read --send-window in this IANA zone for every recipient, e.g. Europe/Paris."),
    ] = None,
    valid_for: Annotated[
        int | None,
        typer.Option(help="Seconds from the start a message may still be sent; later it fails `expired`."),
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(help="A message not sent by this ISO 8601 time (with offset) fails `expired`."),
    ] = None,
) -> None:
    """Read FILE into a campaign, queue its sends and watch it to the end (Ctrl-C stops watching only)."""
    from wadispatch.campaigns import api

    settings = load_settings()
    if provider not in PROVIDER_NAMES:
        err.print(f"[red]unknown provider[/] {provider!r}: use one of {', '.join(PROVIDER_NAMES)}")
        raise typer.Exit(1)
    if file_format not in (None, "csv", "jsonl"):
        err.print(f"[red]unknown format[/] {file_format!r}: use csv or jsonl")
        raise typer.Exit(1)
    template = read_json(message, "message template")
    if isinstance(template, dict) and "interactive" in template and "type" not in template:
        template = template["interactive"]  # a send request's shape is fine too
    fallback = None if fallback_template is None else read_json(fallback_template, "fallback template")
    reading = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True)
    task = reading.add_task(f"reading {file.name}")
    started: list[str] = []
    unpublished: list[int] = []

    def dispatch(campaign_id: str, first_row: int, last_row: int | None) -> bool:
        published = api.dispatch_fanout(campaign_id, first_row, last_row)
        if not published:
            unpublished.append(first_row)
        return published

    def on_batch(campaign_id: str, counts: Any) -> None:
        started[:] = [campaign_id]
        reading.update(
            task,
            description=f"reading {file.name}: {counts.rows_read} rows, {counts.accepted} accepted "
            f"(campaign {campaign_id})",
        )

    try:
        with reading:
            campaign = api.create_campaign(
                file,
                template,
                provider=provider,
                **_senders(sender),
                name=name,
                phone_column=phone_column,
                region=region,
                file_format=file_format,  # type: ignore[arg-type]
                settings=settings,
                on_batch=on_batch,
                dispatch=dispatch,
                fallback=fallback,
                start_at=start_at,
                send_window=send_window,
                timezone=timezone,
                valid_for_seconds=valid_for,
                expires_at=expires_at,
            )
    except KeyboardInterrupt:
        if not started:
            err.print("[yellow]interrupted[/]: nothing was recorded")
            raise typer.Exit(130) from None
        err.print(
            f"[yellow]interrupted while reading[/]: campaign {started[0]} holds the rows read so far and "
            f"sends them.\n  cancel it: wadispatch campaign cancel {started[0]}"
        )
        raise typer.Exit(130) from None
    except MessageValidationError as exc:
        if all(error.path in _TIMING_OPTIONS for error in exc.errors):
            err.print(f"[red]invalid campaign timing[/]: {len(exc.errors)} problem(s)")
            for error in exc.errors:
                err.print(f"  {_TIMING_OPTIONS[error.path]}: {error.rule}")
            raise typer.Exit(1) from None
        if all(error.path.startswith("sender") for error in exc.errors):
            err.print(f"[red]invalid --sender[/]: {len(exc.errors)} problem(s)")
        else:
            about = f"{message}" + (f" / {fallback_template}" if fallback_template else "")
            err.print(f"[red]invalid message template[/] {about}: {len(exc.errors)} problem(s)")
        for error in exc.errors:
            err.print(f"  {error.path}: {error.rule}")
        raise typer.Exit(1) from None
    except CampaignInputError as exc:
        err.print(f"[red]cannot start the campaign[/]: {exc}")
        raise typer.Exit(1) from None
    out.print(campaign.id)
    err.print(
        f"{campaign.rows_read} rows read: {campaign.accepted} accepted, {campaign.invalid} invalid, "
        f"{campaign.duplicate} duplicate, {campaign.suppressed} suppressed"
    )
    if unpublished:
        err.print(
            "[yellow]broker unreachable[/]: the accepted messages are recorded pending; queue them "
            f"once it is back with: wadispatch campaign resume {campaign.id}"
        )
    if detach:
        err.print(f"watch it with: wadispatch campaign status {campaign.id}")
        return
    _watch(campaign.id)


def _senders(given: list[str] | None) -> dict[str, Any]:
    """``--sender`` once is the campaign's sender; repeated, its pool (``senders[i]`` in errors)."""
    if not given:
        return {"sender": None}
    return {"sender": given[0]} if len(given) == 1 else {"senders": given}


#: The timing fields of a campaign and their command-line options.
_TIMING_OPTIONS = {
    "start_at": "--start-at",
    "send_window": "--send-window",
    "timezone": "--timezone",
    "valid_for_seconds": "--valid-for",
    "expires_at": "--expires-at",
}


def _watch(campaign_id: str) -> None:
    from wadispatch.campaigns import api

    settings = load_settings()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=err,
    )
    try:
        with bar:
            task = bar.add_task("sending", total=None, detail="")
            while True:
                state = api.progress(campaign_id, settings=settings)
                bar.update(
                    task,
                    description=state.campaign.status,
                    total=sum(state.states.values()),
                    completed=state.terminal,
                    detail=_detail(state),
                )
                if state.done:
                    break
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        err.print(
            f"[yellow]stopped watching[/]: campaign {campaign_id} keeps running.\n"
            f"  watch:  wadispatch campaign status {campaign_id}\n"
            f"  pause:  wadispatch campaign pause {campaign_id}\n"
            f"  cancel: wadispatch campaign cancel {campaign_id}"
        )
        raise typer.Exit(130) from None
    _print_progress(state)


def _detail(state: api.CampaignProgress) -> str:
    parts = [f"{name} {count}" for name, count in sorted(state.states.items())]
    if state.waiting_for_window:
        parts.append(f"waiting for window {state.waiting_for_window}")
    if state.throughput:
        parts.append(f"{state.throughput:.1f}/s")
    if state.eta_seconds:
        parts.append(f"ETA {_duration(state.eta_seconds)}")
    elif state.eta_note and state.eta_note.startswith("unknown"):
        parts.append(f"ETA {state.eta_note}")
    return ", ".join(parts)


@campaign_app.command("status")
def status(
    campaign_id: CampaignId,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Counts per state and reason, start, end, rates, the sender's limit, 429s, retries and ETA."""
    from wadispatch.campaigns import api

    state = _call(api.progress, campaign_id, settings=load_settings())
    if as_json:
        sys.stdout.write(json.dumps(state.as_json()) + "\n")
        return
    _print_progress(state)


def _print_progress(state: api.CampaignProgress) -> None:
    data = state.as_json()
    out.print(f"[bold]{data['id']}[/]  {data['name']}  [bold]{data['status']}[/]")
    senders = ", ".join(data["senders"]) or "-"
    label = "senders" if len(data["senders"]) > 1 else "sender"
    out.print(f"{data['provider']} {label} {senders}, created {data['created_at']}")
    rows = data["rows"]
    out.print(
        f"rows: {rows['read']} read{' so far' if data['reading'] else ''}, {rows['accepted']} accepted, "
        f"{rows['invalid']} invalid, {rows['duplicate']} duplicate, {rows['suppressed']} suppressed"
    )
    table = Table("state", "messages")
    for name, count in sorted(state.states.items()):
        table.add_row(name, str(count))
    for reason, count in sorted(state.failed_reasons.items()):
        table.add_row(f"  failed: {reason}", str(count))
    if state.sent_as_template:
        table.add_row("  sent as template", str(state.sent_as_template))
    if state.suppressed_by_keyword:
        table.add_row("    of which by opt-out keyword", str(state.suppressed_by_keyword))
    if state.waiting_for_window:
        table.add_row("  pending: waiting for window", str(state.waiting_for_window))
    out.print(table)
    if len(state.senders) > 1:
        out.print(_sender_table(state))
    schedule = {key: value for key, value in data["schedule"].items() if value is not None}
    if schedule:
        out.print("schedule: " + ", ".join(f"{key} {value}" for key, value in schedule.items()))
    if state.next_release_at is not None:
        out.print(f"next release: {_when(state.next_release_at)}")
    for line in progress_lines(state):
        out.print(line)


def _sender_table(state: api.CampaignProgress) -> Table:
    """A pool's senders: their messages per state and their limits."""
    names = sorted({name for item in state.senders for name in item.states})
    table = Table("sender", *names, "limit")
    for item in state.senders:
        effective = item.limit.effective
        limit = f"{item.limit.declared:.1f}/s" + (
            f" ({effective:.1f}/s now)" if effective is not None else ""
        )
        table.add_row(item.sender or "-", *[str(item.states.get(name, 0)) for name in names], limit)
    return table


def progress_lines(state: api.CampaignProgress) -> list[str]:
    """The timing, rate and ETA lines of ``campaign status`` (plain text)."""
    started = _when(state.started_at)
    finished = _when(state.finished_at) if state.finished_at else "-"
    duration = _duration(state.duration_seconds) if state.duration_seconds is not None else "-"
    effective = f"{state.effective_rate:.1f}/s" if state.effective_rate is not None else "unknown"
    cooling = f", cooling down {state.cooldown_seconds:.1f}s" if state.cooldown_seconds else ""
    eta = _duration(state.eta_seconds) if state.eta_seconds is not None else state.eta_note or "-"
    limit_label = f"pool limit ({len(state.senders)} senders)" if len(state.senders) > 1 else "sender limit"
    return [
        f"started {started}, finished {finished}, duration {duration}",
        f"rate: average {_rate(state.average_rate)}, current {_rate(state.throughput)}",
        f"{limit_label}: {effective} effective of {state.limit_rate:.1f}/s configured{cooling}",
        f"429s {state.rate_limited}, retries {state.retries} ({state.held_back} held back by the limiter)",
        f"{state.remaining} remaining, ETA {eta}",
    ]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@campaign_app.command("pause")
def pause(campaign_id: CampaignId) -> None:
    """Stop sending (within about a second; sends in flight finish). Safe to repeat."""
    from wadispatch.campaigns import api

    load_settings()
    campaign = _call(api.pause, campaign_id)
    out.print(f"{campaign.id} {campaign.status}")


@campaign_app.command("resume")
def resume(campaign_id: CampaignId) -> None:
    """Send again after a pause (and queue again what is pending). Safe to repeat."""
    from wadispatch.campaigns import api

    load_settings()
    campaign = _call(api.resume, campaign_id)
    out.print(f"{campaign.id} {campaign.status}")


@campaign_app.command("cancel")
def cancel(campaign_id: CampaignId) -> None:
    """End the campaign: what is not sent yet ends failed (reason cancelled). Safe to repeat."""
    from wadispatch.campaigns import api

    load_settings()
    count = _call(api.cancel, campaign_id)
    out.print(f"{campaign_id} cancelled: {count} message(s) will not be sent")


@campaign_app.command("report")
def report(
    campaign_id: CampaignId,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The CSV file to write.")],
) -> None:
    """Write a CSV with one line per row of the campaign's file (skipped rows included)."""
    from wadispatch.campaigns import api

    load_settings()
    try:
        written = _call(api.report, campaign_id, out_file)
    except OSError as exc:
        err.print(f"[red]cannot write[/] {out_file}: {exc.strerror}")
        raise typer.Exit(1) from None
    out.print(f"{written} row(s) written to {out_file}")


@campaign_app.command("list")
def list_campaigns(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """The latest campaigns, newest first."""
    from wadispatch.campaigns import api

    load_settings()
    campaigns = api.list_campaigns()
    if as_json:
        fields = (
            "id",
            "name",
            "provider",
            "sender",
            "status",
            "rows_read",
            "accepted",
            "invalid",
            "duplicate",
        )
        rows = [
            {**{key: getattr(c, key) for key in fields}, "created_at": c.created_at.isoformat()}
            for c in campaigns
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("id", "name", "status", "provider", "accepted", "skipped", "created")
    for c in campaigns:
        skipped = c.invalid + c.duplicate + c.suppressed
        table.add_row(
            c.id,
            c.name,
            c.status,
            c.provider,
            str(c.accepted),
            str(skipped),
            f"{c.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@suppress_app.command("add")
def suppress_add(
    phones: Annotated[list[str], typer.Argument(help="Phone numbers (E.164, e.g. +255712345678).")],
    sender: Annotated[str | None, typer.Option(help="Only for this sender (default: every sender).")] = None,
    reason: Annotated[str, typer.Option(help="Why (shown in `suppress list`).")] = "opted out",
) -> None:
    """Put numbers on the suppression list: campaigns skip them."""
    from wadispatch.campaigns import api

    load_settings()
    added = _call(api.suppress, phones, sender=sender, reason=reason)
    out.print(f"{added} added ({len(phones) - added} already there)")


@suppress_app.command("remove")
def suppress_remove(
    phone: Annotated[str, typer.Argument(help="The phone number.")],
    sender: Annotated[
        str | None, typer.Option(help="The sender it was added for (default: every sender).")
    ] = None,
) -> None:
    """Take a number off the suppression list (exit 1 if it was not on it)."""
    from wadispatch.campaigns import api

    load_settings()
    if not _call(api.unsuppress, phone, sender=sender):
        err.print(f"{phone} is not on the suppression list" + (f" for {sender}" if sender else ""))
        raise typer.Exit(1)
    out.print(f"{phone} removed")


@suppress_app.command("list")
def suppress_list(
    phone: Annotated[str | None, typer.Option(help="Only this number.")] = None,
    sender: Annotated[str | None, typer.Option(help="Only what applies to this sender.")] = None,
) -> None:
    """The suppression list, newest first."""
    from wadispatch.campaigns import api

    load_settings()
    table = Table("phone", "sender", "source", "reason", "since")
    for item in api.suppressions(recipient=phone, sender=sender):
        table.add_row(
            item.recipient,
            item.sender or "(all)",
            item.source,
            item.reason or "",
            f"{item.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an API call; unknown ids and bad input exit 1 with the reason."""
    try:
        return function(*args, **kwargs)
    except UnknownCampaign as exc:
        err.print(f"[red]no campaign {exc}[/]")
    except CampaignInputError as exc:
        err.print(f"[red]error[/]: {exc}")
    raise typer.Exit(1)


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )
