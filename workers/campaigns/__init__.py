"""Bulk campaigns: one interactive message to every recipient of a CSV or JSONL file.

    from wadispatch.campaigns import create_campaign, progress

    campaign = create_campaign("customers.csv", template, provider="meta", sender="1107264639145282")
    progress(campaign.id).as_json()    # counts per state and reason, throughput, ETA

The public API (create, progress, pause, resume, cancel, report, list, the suppression list) is
:mod:`wadispatch.campaigns.api`, importable from here too; ``wadispatch campaign ...``
(:mod:`wadispatch.cli.campaigns`) wraps it. ``template`` (placeholders), ``phones`` (E.164) and
``reader`` (streamed rows) are pure; ``ingest`` turns rows into ledger batches through ``store``
(all the campaigns' SQL); ``fanout`` publishes the send jobs (run by the
``wadispatch.campaign_fanout`` task). Sender pools: ``pool`` (which senders, which sender for
each recipient) is pure, ``assignments`` gives each batch's rows their sticky senders, and
``senders`` is the progress per sender. ``schedule`` (pure) reads start times and send windows in
each recipient's time zone; ``holding`` keeps messages outside their window without a job and
releases them (the ``wadispatch.release_held`` beat task).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wadispatch.campaigns.api import (
        CampaignInputError,
        CampaignProgress,
        CampaignRecord,
        UnknownCampaign,
        cancel,
        create_campaign,
        get_campaign,
        list_campaigns,
        pause,
        progress,
        report,
        resume,
        suppress,
        suppressions,
        unsuppress,
    )

__all__ = [
    "CampaignInputError",
    "CampaignProgress",
    "CampaignRecord",
    "UnknownCampaign",
    "cancel",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "pause",
    "progress",
    "report",
    "resume",
    "suppress",
    "suppressions",
    "unsuppress",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that the ledger-side modules (``store``) load without the file
    # readers and the phone-number library.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("wadispatch.campaigns.api"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
