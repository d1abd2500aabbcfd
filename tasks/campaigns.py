"""The campaign fan-out task: publish a campaign's send jobs, reading its pending ids from the ledger."""

from __future__ import annotations

import logging

from celery import Task
from wadispatch.campaigns.fanout import fan_out
from wadispatch.celery import CAMPAIGN_FANOUT_TASK, app
from wadispatch.ledger import get_ledger
from wadispatch.publishing import PublishError
from wadispatch.settings import get_settings

log = logging.getLogger("wadispatch.tasks")


@app.task(name=CAMPAIGN_FANOUT_TASK, bind=True, acks_late=True, max_retries=20)
def campaign_fanout(self: Task, campaign_id: str, first_row: int, last_row: int | None) -> str:
    """Publish send jobs for the campaign's pending messages in rows ``first_row..last_row``.

    Publishing twice is harmless (the claim sends a message once), so a retry starts over.
    """
    settings = get_settings()
    try:
        count = fan_out(
            get_ledger(),
            campaign_id,
            first_row,
            last_row,
            job_size=settings.send_batch_size,
            page_size=settings.campaign_fanout_page_size,
        )
    except PublishError as exc:  # the broker is down (logged where it was published): try again shortly
        raise self.retry(countdown=5, exc=exc) from None
    except Exception as exc:  # the ledger stumbled: try again shortly
        log.warning("campaign %s fan-out failed, retrying: %s", campaign_id, type(exc).__name__)
        raise self.retry(countdown=5, exc=exc) from None
    return f"published {count} message(s) of campaign {campaign_id}"
