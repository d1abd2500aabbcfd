"""The reconciler's periodic task (scheduled by Celery beat; see :mod:`workers.reconcile`)."""

from __future__ import annotations

from workers.app import RECONCILE_TASK, app
from workers.ledger import get_ledger
from workers.producer import publish_many
from workers.reconcile import reconcile
from workers.settings import get_settings


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> dict[str, int | bool]:
    """Republish lost ``pending`` messages and settle stuck ``sending`` ones; return the counts."""
    return reconcile(get_ledger(), get_settings(), publish_many).as_dict()
