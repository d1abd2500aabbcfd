"""Held campaign messages: no job in the queue until their start time or send window comes.

At ingest a message outside its window gets ``held_until`` (its window's next opening, or the
campaign's start) and no job. Celery beat runs :func:`release_due` every
``WADISPATCH_RELEASE_INTERVAL_SECONDS``: it clears ``held_until`` of the messages whose time has
come and publishes their jobs. A message whose window closed before a worker reached it is held
again at the claim (:func:`window_holds`), never sent outside its window.

A message whose 24-hour window is open but closes before its send window opens is not held for
nothing (:func:`lapse_plan`): without a fallback template it is held only until that window
closes, and then, no newer message having reopened it, fails ``window_closed``; with one it keeps
its opening, and then goes as the template, the window being known closed by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wadispatch.campaigns import store
from wadispatch.campaigns.schedule import Schedule, SendWindow
from wadispatch.ledger import Ledger, MessageRecord, utcnow
from wadispatch.settings import Settings, get_settings
from wadispatch.window import Lapse, Pair, Windows

log = logging.getLogger("wadispatch.campaigns")

#: How long past a held message's opening its lapsing window is remembered (Unix seconds).
LAPSE_KEEP_SECONDS = 3600.0
#: Released this long after its window closes: Redis has expired the open window by then.
LAPSE_MARGIN = timedelta(seconds=1)

#: Held messages released per UPDATE.
RELEASE_PAGE = 5000
#: Pages per run: a run stays short; the next one goes on.
RELEASE_MAX_PAGES = 20

# A campaign's schedule never changes once it is created: read once per process.
_schedules: dict[str, Schedule | None] = {}


def campaign_schedule(campaign: store.CampaignRecord, default_zone: str) -> Schedule:
    """The campaign's start and send window as a :class:`Schedule`."""
    window = SendWindow.parse(campaign.send_window) if campaign.send_window else None
    return Schedule(campaign.start_at, window, campaign.time_zone, default_zone)


def _schedule_of(ledger: Ledger, campaign_id: str, default_zone: str) -> Schedule | None:
    if campaign_id not in _schedules:
        campaign = store.get_campaign(ledger, campaign_id)
        if campaign is None:
            return None
        schedule = campaign_schedule(campaign, default_zone)
        _schedules[campaign_id] = schedule if schedule.window is not None else None
    return _schedules[campaign_id]


def window_holds(
    records: list[MessageRecord], ledger: Ledger, now: datetime, settings: Settings | None = None
) -> list[tuple[MessageRecord, datetime]]:
    """The campaign messages among ``records`` whose send window is closed at ``now``, each with
    its next opening (one read per campaign and process, no I/O after that)."""
    default_zone = (settings or get_settings()).default_timezone
    holds: list[tuple[MessageRecord, datetime]] = []
    for record in records:
        if record.campaign_id is None:
            continue
        schedule = _schedule_of(ledger, record.campaign_id, default_zone)
        if schedule is None or schedule.window is None:
            continue
        opening = schedule.window.next_opening(now, schedule.zone_for(record.recipient))
        if opening is not None:
            holds.append((record, opening))
    return holds


def release_due(ledger: Ledger, publish: Callable[[list[str]], int], *, now: datetime | None = None) -> int:
    """Release the held messages of running campaigns whose time has come and publish their jobs;
    how many were released. A paused campaign's stay held until it runs again."""
    now = now or utcnow()
    released = 0
    for _ in range(RELEASE_MAX_PAGES):
        ids = store.release_held(ledger, now, RELEASE_PAGE)
        if not ids:
            break
        released += len(ids)
        published = publish(ids)
        if published < len(ids):
            log.warning(
                "released %d held message(s), published %d: the reconciler republishes the rest",
                len(ids),
                published,
            )
            break
        if len(ids) < RELEASE_PAGE:
            break
    if released:
        log.info("released %d held message(s) whose send window or start came", released)
    return released


@dataclass(frozen=True)
class Hold:
    """A message to hold: its pair, its opening, and whether it has a fallback template."""

    pair: Pair
    until: datetime
    has_fallback: bool


def lapse_plan(holds: list[Hold], closes: list[float | None]) -> tuple[list[datetime], list[Lapse]]:
    """Each hold's time, given when each pair's open window closes (``None``: not known open), and
    the lapses to remember. Pure.

    A window closing before the opening makes the message certain to find it closed (unless the
    person writes again): without a fallback the message is held only until that closing (then
    it fails ``window_closed``); with one it keeps its opening (then it goes as the template).
    """
    times: list[datetime] = []
    lapses: list[Lapse] = []
    for hold, closing in zip(holds, closes, strict=True):
        if closing is None or closing >= hold.until.timestamp():
            times.append(hold.until)
            continue
        lapses.append((hold.pair, closing, hold.until.timestamp() + LAPSE_KEEP_SECONDS))
        times.append(hold.until if hold.has_fallback else datetime.fromtimestamp(closing, UTC) + LAPSE_MARGIN)
    return times, lapses


def hold_times(holds: list[Hold], windows: Windows) -> list[datetime]:
    """:func:`lapse_plan` with the windows read and the lapses remembered (two Redis round trips);
    the openings as they are when Redis cannot be reached (the provider then decides)."""
    if not holds:
        return []
    try:
        times, lapses = lapse_plan(holds, windows.closes_at([hold.pair for hold in holds]))
        if lapses:
            windows.watch_lapse(lapses)
    except Exception as exc:  # a shortcut only: held until the opening, the provider decides then
        log.warning("could not read the 24-hour windows of held messages: %s", type(exc).__name__)
        return [hold.until for hold in holds]
    return times
