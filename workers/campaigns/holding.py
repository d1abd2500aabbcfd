"""Held campaign messages: no job in the queue until their start time or send window comes.

At ingest a message outside its window gets ``held_until`` (its window's next opening, or the
campaign's start) and no job. Celery beat runs :func:`release_due` every
``WADISPATCH_RELEASE_INTERVAL_SECONDS``: it clears ``held_until`` of the messages whose time has
come and publishes their jobs. A message whose window closed before a worker reached it is held
again at the claim (:func:`window_holds`), never sent outside its window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from wadispatch.campaigns import store
from wadispatch.campaigns.schedule import Schedule, SendWindow
from wadispatch.ledger import Ledger, MessageRecord, utcnow
from wadispatch.settings import Settings, get_settings

log = logging.getLogger("wadispatch.campaigns")

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
