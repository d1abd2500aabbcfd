"""Publishing a campaign's send jobs from the ledger: pages of pending ids, jobs of ids only.

Run by the ``wadispatch.campaign_fanout`` task (:mod:`wadispatch.tasks.campaigns`), so that the caller of
:func:`wadispatch.campaigns.api.create_campaign` never waits for the broker; :func:`fan_out` is the
task's whole body, callable directly (the benchmark times it that way).
"""

from __future__ import annotations

from wadispatch.campaigns import store
from wadispatch.ledger import RUNNING, Ledger
from wadispatch.publishing import publish_batches


def fan_out(
    ledger: Ledger,
    campaign_id: str,
    first_row: int,
    last_row: int | None,
    *,
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
        # Raises PublishError when the broker is down, so that the fan-out task is retried.
        publish_batches(ids, job_size, raise_on_failure=True)
        published += len(ids)
    return published
