"""Publishing a campaign's send jobs from the ledger: pages of pending ids, jobs of ids only.

Run by the ``wadispatch.campaign_fanout`` task (:mod:`wadispatch.tasks.campaigns`), so that the caller of
:func:`wadispatch.campaigns.api.create_campaign` never waits for the broker; :func:`fan_out` is the
task's whole body, callable directly (the benchmark times it that way).
"""

from __future__ import annotations

from collections.abc import Callable

from wadispatch.campaigns import store
from wadispatch.ledger import RUNNING, Ledger
from wadispatch.publishing import publish_batches

Publish = Callable[[list[str], int], object]
"""Publishes a page of pending ids as send jobs of at most ``job_size`` ids; raises if it cannot."""


def publish_page(ids: list[str], job_size: int) -> None:
    """Publish ``wadispatch.send_batch`` jobs for a page of ids over one pooled broker connection.

    Raises :class:`~wadispatch.publishing.PublishError` when the broker is down, so that the
    fan-out task fails and Celery retries it.
    """
    publish_batches(ids, job_size, raise_on_failure=True)


def fan_out(
    ledger: Ledger,
    campaign_id: str,
    first_row: int,
    last_row: int | None,
    *,
    job_size: int,
    page_size: int,
    publish: Publish = publish_page,
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
        publish(ids, job_size)
        published += len(ids)
    return published
