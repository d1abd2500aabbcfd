"""The Celery app. The only module of the engine that imports Celery."""

from __future__ import annotations

from celery import Celery

app = Celery("wadispatch", include=["tasks.send"])
app.config_from_object("celeryconfig")

SEND_TASK = "wadispatch.send_message"
