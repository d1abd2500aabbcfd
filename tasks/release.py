"""The periodic release of held campaign messages (scheduled by Celery beat; see
:mod:`wadispatch.campaigns.holding`)."""

from __future__ import annotations

from wadispatch.campaigns.holding import release_due
from wadispatch.celery import RELEASE_TASK, app
from wadispatch.ledger import get_ledger
from wadispatch.publishing import publish_many


@app.task(name=RELEASE_TASK, ignore_result=True)
def release_held_task() -> int:
    """Queue the jobs of the held messages whose time has come; how many were released."""
    return release_due(get_ledger(), publish_many)
