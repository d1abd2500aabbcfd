"""The Celery app of wadispatch: ``celery -A wadispatch worker`` finds it here.

Its settings come from :mod:`wadispatch.celery_settings` (the package's defaults, the module that
``WADISPATCH_CELERY_CONFIG`` names, then ``WADISPATCH_CELERY_*``), read when the app is first
configured, never from whatever ``celeryconfig`` the current folder holds.
"""

from __future__ import annotations

from celery import Celery

app = Celery(
    "wadispatch",
    include=["wadispatch.tasks.send", "wadispatch.tasks.reconcile", "wadispatch.tasks.campaigns"],
)
app.config_from_object("wadispatch.celery_settings:CONFIG")

SEND_TASK = "wadispatch.send_message"
SEND_BATCH_TASK = "wadispatch.send_batch"
RECONCILE_TASK = "wadispatch.reconcile"
CAMPAIGN_FANOUT_TASK = "wadispatch.campaign_fanout"


def point_app_at(broker_url: str, queue: str) -> None:
    """Re-aim this process's producer at another broker and queue (tests, demo, benchmarks)."""
    app.conf.update(
        broker_url=broker_url,
        task_default_queue=queue,
        task_routes={"wadispatch.*": {"queue": queue}},
    )
    # Celery's own reset of its connection and producer pools (as after a fork), so that the
    # next publish connects to the new broker.
    app._after_fork()
