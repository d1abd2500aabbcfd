"""The reconciler's periodic task (scheduled by Celery beat; see :mod:`wadispatch.reconcile`)."""

from __future__ import annotations

from typing import Any

from wadispatch.celery import RECONCILE_TASK, app
from wadispatch.ledger import get_ledger
from wadispatch.publishing import publish_many
from wadispatch.reconciler import run_once
from wadispatch.settings import get_settings


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> dict[str, Any]:
    """Republish lost ``pending`` messages and settle stuck ``sending`` ones, one run at a time
    (a run finding another under way returns at once); return the report."""
    return run_once(get_ledger(), get_settings(), publish_many).as_dict()
