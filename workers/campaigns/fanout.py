"""Publishing a campaign's send jobs from the ledger: pages of pending ids, jobs of ids only.

Run by the ``wadispatch.campaign_fanout`` task (:mod:`wadispatch.tasks.campaigns`), so that the caller of
:func:`wadispatch.campaigns.api.create_campaign` never waits for the broker; :func:`fan_out` is the
task's whole body, callable directly (the benchmark times it that way).
"""

from __future__ import annotations

from collections.abc import Callable

from wadispatch.campaigns import store
from wadispatch.ledger import RUNNING, Ledger

Publish = Callable[[list[list[str]]], None]
"""Publishes send jobs, one per list of message ids."""


def fan_out(
    ledger: Ledger,
    campaign_id: str,
    first_row: int,
    last_row: int | None,
    *,
    publish: Publish,
    job_size: int,
    page_size: int,
) -> int:
    """Publish a job per ``job_size`` pending messages of rows ``first_row..last_row``; how many ids.

    Stops early when the campaign is no longer running (paused or cancelled): ``resume`` fans out
    again over the whole campaign.
    """
    published = 0
    for ids in store.pending_pages(ledger, campaign_id, first_row, last_row, page_size):
        campaign = store.get_campaign(ledger, campaign_id)
        if campaign is None or campaign.status != RUNNING:
            break
        publish([ids[start : start + job_size] for start in range(0, len(ids), job_size)])
        published += len(ids)
    return published


def celery_publisher() -> Publish:
    """Publishes ``wadispatch.send_batch`` jobs through one pooled producer connection per page."""
    from wadispatch.celery import SEND_BATCH_TASK, app

    def publish(jobs: list[list[str]]) -> None:
        with app.producer_or_acquire() as producer:
            for ids in jobs:
                app.send_task(SEND_BATCH_TASK, args=[ids], producer=producer)

    return publish
