"""The prune's periodic task (scheduled by Celery beat; see :mod:`wadispatch.prune`)."""

from __future__ import annotations

from wadispatch.celery import PRUNE_TASK, app
from wadispatch.ledger import get_ledger
from wadispatch.prune import prune
from wadispatch.settings import get_settings

#: A first prune of a ledger that grew for months may take longer than a send's time limit; what
#: it deleted stays deleted if it is cut off anyway (each batch commits), and the next run goes on.
SOFT_TIME_LIMIT_SECONDS = 3600


@app.task(
    name=PRUNE_TASK,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
    time_limit=SOFT_TIME_LIMIT_SECONDS + 60,
)
def prune_task() -> dict[str, bool | int | None]:
    """Delete what is past its retention, batch by batch; return the counts per kind."""
    return prune(get_ledger(), get_settings()).as_dict()
