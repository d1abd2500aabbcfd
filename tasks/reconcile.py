"""The reconciler's periodic task (scheduled by Celery beat; see :mod:`wadispatch.reconcile`)."""

from __future__ import annotations

from wadispatch.celery import RECONCILE_TASK, app
from wadispatch.ledger import get_ledger
from wadispatch.publishing import publish_many
from wadispatch.reconcile import reconcile
from wadispatch.settings import get_settings


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> dict[str, int | bool]:
    """Republish lost ``pending`` messages and settle stuck ``sending`` ones; return the counts."""
    return reconcile(get_ledger(), get_settings(), publish_many).as_dict()
